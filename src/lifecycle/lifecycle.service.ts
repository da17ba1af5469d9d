import { Injectable } from '@nestjs/common';

import { BillingService } from '../billing/billing.service';
import { NormalizedEvent } from '../domain/normalized-event';
import { LifecycleTrigger } from '../domain/deal-stage';
import { Deal } from '../generated/prisma/client';
import { PrismaService } from '../prisma/prisma.service';
import { CrmDeal } from '../ports/crm.port';
import { lockDeal } from './deal-rows';
import { CrmDealHandler } from './handlers/crm-deal.handler';
import { DealFactHandler } from './handlers/deal-fact.handler';
import { EnvelopeHandler } from './handlers/envelope.handler';
import { InvoiceEventHandler } from './handlers/invoice.handler';
import { EventHandler, EventOutcome, LifecycleContext, Tx } from './lifecycle.types';
import { SettleService } from './settle.service';

export type { EventOutcome, LifecycleContext } from './lifecycle.types';

/**
 * The one deal lifecycle (CONTRACT §4; docs/architecture.md). A small core: each event kind has
 * its handler (CRM deals, envelopes, deal facts, invoices), which records the event's facts with
 * the deal's row locked (FOR UPDATE) inside the caller's transaction; the settle step
 * (SettleService) then derives the stage, billing, reports and CRM sync from all the facts, so
 * late, duplicate and reordered events converge (docs/decisions/0004). The admin API, referrals
 * and the timers drive the same core.
 */
@Injectable()
export class LifecycleService {
  private readonly byKind = new Map<string, EventHandler>();

  constructor(
    private readonly prisma: PrismaService,
    private readonly billing: BillingService,
    private readonly settler: SettleService,
    private readonly deals: DealFactHandler,
    crm: CrmDealHandler,
    envelopes: EnvelopeHandler,
    invoices: InvoiceEventHandler,
  ) {
    for (const handler of [crm, envelopes, deals, invoices]) {
      for (const kind of handler.kinds) this.byKind.set(kind, handler);
    }
  }

  /** Whether the lifecycle acts on this event kind (the rest stay with their own modules). */
  handles(kind: string): boolean {
    return this.byKind.has(kind);
  }

  /**
   * Applies one normalized event inside the caller's transaction (the event pipeline's lane
   * transaction, which claims and marks the event): says which deal it concerned, or why it was
   * ignored. Throws to fail the event (its savepoint is rolled back). `remote`: the CRM deal as
   * the pipeline read it before the transaction (null: it no longer exists).
   */
  apply(
    tx: Tx,
    ev: NormalizedEvent,
    ctx: LifecycleContext,
    remote?: CrmDeal | null,
  ): Promise<EventOutcome> {
    const handler = this.byKind.get(ev.kind);
    if (!handler) return Promise.resolve({ ignored: `${ev.kind} is not used by the lifecycle` });
    return handler.apply(tx, ev, ctx, remote);
  }

  /** Locks a deal row for the rest of the transaction and returns it. */
  lockDeal(tx: Tx, dealId: string): Promise<Deal> {
    return lockDeal(tx, dealId);
  }

  /** Records a stage-changing fact (once per event and type). */
  addTrigger(
    tx: Tx,
    dealId: string,
    trigger: LifecycleTrigger,
    at: Date,
    ctx: LifecycleContext,
  ): Promise<void> {
    return this.settler.addTrigger(tx, dealId, trigger, at, ctx);
  }

  /** The settle step: see SettleService.settle. */
  settle(
    tx: Tx,
    dealId: string,
    ctx: LifecycleContext,
    opts?: Parameters<SettleService['settle']>[3],
  ): Promise<Deal> {
    return this.settler.settle(tx, dealId, ctx, opts);
  }

  /** Timer: accepts a silent-approval item whose window passed (once: acceptedAt is set once). */
  silentApprove(dealId: string, itemId: string, now: Date): Promise<boolean> {
    return this.deals.silentApprove(dealId, itemId, now);
  }

  /** Timer: bills the monthly periods that became due (the billing keys make it once per month). */
  async billDue(dealId: string, now: Date): Promise<string[]> {
    return this.prisma.$transaction(async (tx) => {
      const deal = await lockDeal(tx, dealId);
      return this.billing.materialize(tx, deal, {
        cause: 'timer: monthly billing date',
        correlationId: `timer-${dealId}`,
        now,
      });
    });
  }

  /** Queues the CRM write-back of a deal: see SettleService.enqueueCrmSync. */
  enqueueCrmSync(
    tx: Tx,
    deal: Pick<Deal, 'id' | 'crmDealId' | 'referralId' | 'stage'>,
    ctx: LifecycleContext,
    why: string,
  ): Promise<void> {
    return this.settler.enqueueCrmSync(tx, deal, ctx, why);
  }

  /** Whether the CRM sync creates the CRM deal of this referral deal (REFERRAL_CREATE_CRM_DEALS). */
  createsCrmDeal(deal: Pick<Deal, 'crmDealId' | 'referralId' | 'stage'>): boolean {
    return this.settler.createsCrmDeal(deal);
  }
}
