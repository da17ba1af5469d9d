import { createHash } from 'node:crypto';

import { providerFor } from '../config/providers';
import { Injectable } from '@nestjs/common';

import { AlertService } from '../alerts/alert.service';
import { billability } from '../billing/billability';
import { PLAN_REFUSED_MESSAGE } from '../billing/billing-plan.service';
import { BillingService } from '../billing/billing.service';
import { InvoiceDealFacts, InvoiceFactsPort } from '../billing/invoice-facts.port';
import { Clock } from '../common/clock';
import { newId } from '../common/ids';
import { AppConfig } from '../config/app-config';
import {
  DealStage,
  ENDED_STAGES,
  LifecycleTrigger,
  TimedTrigger,
  deriveStage,
  foldStage,
  isContractSentOrLater,
  isInProgress,
  isWonOrLater,
} from '../domain/deal-stage';
import { SETTLED_STATES } from '../domain/invoice-state';
import { billedMonths, monthlyTermsOf } from '../domain/monthly-fee';
import { BillingItem, Deal, Prisma } from '../generated/prisma/client';
import { DEAL_COLUMNS } from '../prisma/model-columns';
import { CrmPort } from '../ports/crm.port';
import { JobName } from '../queue/job-name.enum';
import { OutboxService } from '../queue/outbox/outbox.service';
import { stageFacts } from '../reporting/report-facts';
import { ReportService } from '../reporting/report.service';
import { addTimeline, flushTimeline } from '../timeline/timeline';
import { LifecycleContext, Tx } from './lifecycle.types';

/** The e-signature tool's name in messages (the provider registry). */
const E_SIGNATURE = providerFor('e-signature').label;

/**
 * The settle step (CONTRACT §4; docs/architecture.md): the one place that derives everything
 * from a deal's facts. The stage is the fold of the transition table over the deal's stage
 * triggers in occurrence order, so late, duplicate and reordered events converge
 * (docs/decisions/0004); from the stage and the facts it starts the envelope, bills what became
 * due, raises the refused-plan alert, records the reports the referral platform is owed and
 * queues the CRM write-back. Billing records invoice facts only and tells this step through
 * InvoiceFactsPort (invoiceConfirmed).
 */
@Injectable()
export class SettleService implements InvoiceFactsPort {
  constructor(
    private readonly billing: BillingService,
    private readonly outbox: OutboxService,
    private readonly reports: ReportService,
    private readonly alerts: AlertService,
    private readonly crm: CrmPort,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  /** Records a stage-changing fact (once per event and type). */
  async addTrigger(
    tx: Tx,
    dealId: string,
    trigger: LifecycleTrigger,
    at: Date,
    ctx: LifecycleContext,
  ): Promise<void> {
    await tx.$executeRaw`${insertTrigger(dealId, trigger, at, ctx)}`;
  }

  /**
   * Recomputes the deal's stage from its triggers and state, records what the newest trigger did
   * (moved, stayed, refused and why), starts the effects of the stage (envelope, billing, CRM
   * write-back) through the outbox, and bills what became due.
   */
  async settle(
    tx: Tx,
    dealId: string,
    ctx: LifecycleContext,
    opts: {
      /** The deal as the caller locked it, when nothing changed it since (saves reading it again). */
      locked?: Deal;
      /** A trigger to record first (as addTrigger would), in the statement that reads them all. */
      add?: { trigger: LifecycleTrigger; at: Date };
    } = {},
  ): Promise<Deal> {
    const deal = opts.locked ?? (await tx.deal.findUniqueOrThrow({ where: { id: dealId } }));
    type TriggerRow = {
      id: bigint;
      type: string;
      target: DealStage | null;
      at: Date;
      eventId: string | null;
    };
    // A row a statement's own CTE inserted is not in that statement's snapshot: hence the UNION.
    const rows = opts.add
      ? await tx.$queryRaw<TriggerRow[]>`
          WITH added AS (${insertTrigger(dealId, opts.add.trigger, opts.add.at, ctx)}
                         RETURNING id, type, target, at, event_id)
          SELECT id, type, target::text AS target, at, event_id AS "eventId"
            FROM stage_trigger WHERE deal_id = ${dealId}
          UNION ALL SELECT id, type, target::text, at, event_id FROM added
          ORDER BY id`
      : await tx.$queryRaw<TriggerRow[]>`
          SELECT id, type, target::text AS target, at, event_id AS "eventId"
            FROM stage_trigger WHERE deal_id = ${dealId} ORDER BY id`;
    // A confirmed loss refuses a WON deal that had an invoice by then (created before it, not void).
    const firstInvoiceAt = rows.some((r) => r.type === 'loss.confirmed')
      ? await this.firstInvoiceAt(tx, dealId)
      : null;
    const timed: TimedTrigger[] = rows.map((r) => ({
      trigger: (r.type === 'crm.stage'
        ? { type: 'crm.stage', target: r.target }
        : r.type === 'loss.confirmed'
          ? { type: r.type, invoiced: firstInvoiceAt !== null && firstInvoiceAt <= r.at }
          : { type: r.type }) as LifecycleTrigger,
      at: r.at,
      seq: Number(r.id),
    }));
    const initial: DealStage = 'REFERRED';
    const folded = foldStage(initial, timed);
    const items = await this.billing.planItems(tx, dealId);
    const facts = await this.stageFacts(tx, deal, items);
    const derived = deriveStage(folded.stage, facts);
    const stage = derived.stage;

    // What this event's trigger did in its place in history.
    const mine = folded.steps.filter(
      (s) =>
        ctx.eventId && rows.find((r) => Number(r.id) === s.trigger.seq)?.eventId === ctx.eventId,
    );
    for (const step of mine) {
      const what =
        step.trigger.trigger.type === 'crm.stage'
          ? `CRM stage ${step.trigger.trigger.target}`
          : step.trigger.trigger.type;
      if (step.decision.kind === 'refuse') {
        await addTimeline(tx, {
          dealId,
          kind: 'refused',
          message: `${what} refused: ${step.decision.reason}`,
          cause: ctx.cause,
          eventId: ctx.eventId,
          fromStage: step.from,
        });
      } else if (step.decision.kind === 'stay' && stage === deal.stage) {
        await addTimeline(tx, {
          dealId,
          kind: 'event',
          message: `${what}: the deal already is ${step.from} (no change)`,
          cause: ctx.cause,
          eventId: ctx.eventId,
        });
      }
    }

    let current = deal;
    if (stage !== deal.stage) {
      const now = ctx.now ?? this.clock.now();
      const lossWithdrawn = deal.stage === 'LOST' && stage !== 'LOST';
      const wonAt = isWonOrLater(stage) && !deal.wonAt ? now : null;
      const deliveredAt =
        (stage === 'DELIVERED' || stage === 'CLOSED') && !deal.deliveredAt ? now : null;
      [current] = await tx.$queryRaw<Deal[]>`
        UPDATE deal
           SET stage = ${stage}::"DealStage", version = version + 1, updated_at = clock_timestamp(),
               won_at = COALESCE(${wonAt}::timestamptz, won_at),
               delivered_at = COALESCE(${deliveredAt}::timestamptz, delivered_at),
               closed_at = COALESCE(${stage === 'CLOSED' ? now : null}::timestamptz, closed_at),
               lost_at = COALESCE(${stage === 'LOST' ? now : null}::timestamptz, lost_at)
         WHERE id = ${dealId}
     RETURNING ${DEAL_COLUMNS}`;
      const why =
        derived.steps.length > 0 && derived.steps.at(-1)?.to === stage
          ? ` (${derived.steps.map((s) => s.why).join(', ')})`
          : '';
      await addTimeline(tx, {
        dealId,
        kind: 'transition',
        message: `${deal.stage} → ${stage}${why}${lossWithdrawn ? ' — loss withdrawn' : ''}`,
        cause: ctx.cause,
        eventId: ctx.eventId,
        fromStage: deal.stage,
        toStage: stage,
      });
      if (stage === 'CONTRACT_SENT') await this.ensureContract(tx, current, ctx);
      if (
        isWonOrLater(stage) !== isWonOrLater(deal.stage) ||
        stage === 'LOST' ||
        // An accepted referral without a CRM deal gets one (REFERRAL_CREATE_CRM_DEALS).
        (deal.stage === 'REFERRED' && !current.crmDealId)
      ) {
        await this.enqueueCrmSync(tx, current, ctx, `stage-${stage}-v${current.version}`);
      }
    }
    await this.billing.materialize(tx, current, ctx, items);
    await this.alertRefusedPlan(tx, current, ctx);
    current = await this.ensureCosell(tx, current, ctx);
    if (current.referralId) {
      const delivered =
        stage === 'DELIVERED' || stage === 'CLOSED'
          ? (current.deliveredAt ?? ctx.now ?? this.clock.now())
          : undefined;
      await this.reports.fromHistory(tx, current, stageFacts(folded.steps, delivered), items, ctx);
      await this.reports.monthlyFeeChanges(tx, current, items, ctx);
    }
    return current;
  }

  /**
   * plan.refused (CONTRACT §4): a deal at CONTRACT_SENT or later whose billing plan was refused
   * raises one alert, in the transaction that refused the plan or that moved the deal there. The
   * cause is the deal and the refusal (its timeline entry): the same refusal never alerts twice,
   * a later, different refusal (or the same one again after a valid plan) alerts again. A refused
   * plan only reaches here from the CRM property: the admin API refuses a plan with a 400 and
   * keeps nothing of it.
   */
  private async alertRefusedPlan(tx: Tx, deal: Deal, ctx: LifecycleContext): Promise<void> {
    if (!deal.planError || !isContractSentOrLater(deal.stage)) return;
    await flushTimeline(tx); // the refusal may still wait to be written (deferTimeline)
    const refusal = await tx.timelineEntry.findFirst({
      where: { dealId: deal.id, kind: 'refused', message: { startsWith: PLAN_REFUSED_MESSAGE } },
      orderBy: { id: 'desc' },
      select: { id: true, at: true },
    });
    const which = refusal
      ? `t${refusal.id}`
      : createHash('sha256').update(deal.planError).digest('hex').slice(0, 16);
    const billable = billability(deal);
    await this.alerts.raise(
      tx,
      {
        kind: 'plan.refused',
        cause: `plan.refused|${deal.id}|${which}`,
        dealId: deal.id,
        message: billable.ok
          ? `deal ${deal.id} (${deal.stage}): its new billing plan was refused (${deal.planError}); it bills by the plan in force`
          : `deal ${deal.id} (${deal.stage}) is not billable: ${billable.reason}`,
        details: {
          stage: deal.stage,
          planError: deal.planError,
          billable: billable.ok,
          refusedAt: refusal?.at.toISOString() ?? null,
        },
      },
      ctx.correlationId,
    );
  }

  /** When the deal's first invoice that is not void was created (null: it has none). */
  async firstInvoiceAt(tx: Tx, dealId: string): Promise<Date | null> {
    const [row] = await tx.$queryRaw<{ at: Date | null }[]>`
      SELECT min(created_at) AS at FROM invoice WHERE deal_id = ${dealId} AND state <> 'VOID'`;
    return row?.at ?? null;
  }

  private async stageFacts(
    tx: Tx,
    deal: Deal,
    items: BillingItem[],
  ): Promise<{ delivered: boolean; settled: boolean }> {
    const milestones = items.filter((i) => i.trigger === 'milestone.accepted');
    const delivered =
      deal.deliveredOn !== null ||
      (milestones.length > 0 && milestones.every((i) => i.acceptedAt !== null));
    if (!delivered || !deal.billingPlan || items.length === 0) return { delivered, settled: false };
    const invoices = await tx.invoice.findMany({
      where: { dealId: deal.id },
      select: { itemKey: true, state: true, period: true },
    });
    const allSettled = invoices.every((i) => SETTLED_STATES.includes(i.state));
    const everyItemBilled = items.every((item) => {
      const mine = invoices.filter((i) => i.itemKey === item.key);
      if (item.trigger === 'monthly') {
        // Every month it bills (up to an early end) has its invoice.
        const terms = monthlyTermsOf({ ...item, amount: 0 });
        const months = terms ? billedMonths(terms).length : (item.months ?? 0);
        return new Set(mine.map((i) => i.period)).size >= months;
      }
      if (item.trigger === 'milestone.progress') return item.billedPercent >= 100;
      return mine.length > 0;
    });
    return { delivered, settled: allSettled && everyItemBilled };
  }

  /**
   * One envelope per deal: the contract row (unique per deal) is created once, with its job.
   * Without DocuSign credentials the timeline says so and nothing is queued (no dead letter per
   * deal); the envelope is then sent outside the hub and its Connect events still drive the deal.
   */
  private async ensureContract(tx: Tx, deal: Deal, ctx: LifecycleContext): Promise<void> {
    const existing = await tx.contract.findUnique({ where: { dealId: deal.id } });
    if (existing) return;
    if (!this.config.docusignConfigured) {
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'contract',
        message: `contract sent: ${E_SIGNATURE} is not configured, so the hub creates no envelope`,
        cause: ctx.cause,
        eventId: ctx.eventId,
      });
      return;
    }
    await tx.contract.create({ data: { id: newId('ctr'), dealId: deal.id } });
    await this.outbox.enqueue(tx, JobName.ContractEnvelopeCreate, `envelope|${deal.id}`, {
      correlationId: ctx.correlationId,
      dealId: deal.id,
    });
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'contract',
      message: `contract sent: creating the ${E_SIGNATURE} envelope from the template`,
      cause: ctx.cause,
      eventId: ctx.eventId,
    });
  }

  /**
   * Co-sell out (CONTRACT §5; docs/decisions/0014): a CRM deal that asks for a Partner Center
   * co-sell referral (closeloop_cosell) and has no referral gets one, created once — here, under
   * the deal's row lock, cosell_requested_at is set in the transaction that queues the one creation
   * job (its id carries the request time, so a request withdrawn and made again is a new job). A
   * deal that ended (lost, declined, expired) asks for nothing. Without Partner Center credentials
   * the timeline says so, once, and nothing is queued; the next settle after they are set asks again.
   */
  private async ensureCosell(tx: Tx, deal: Deal, ctx: LifecycleContext): Promise<Deal> {
    if (!deal.cosell || deal.referralId || deal.cosellRequestedAt || !deal.crmDealId) return deal;
    if (ENDED_STAGES.includes(deal.stage)) return deal;
    if (!this.config.partnerCenterConfigured) {
      await flushTimeline(tx); // an earlier entry may still wait to be written (deferTimeline)
      const told = await tx.timelineEntry.findFirst({
        where: { dealId: deal.id, kind: 'referral', message: COSELL_UNCONFIGURED },
        select: { id: true },
      });
      if (!told) {
        await addTimeline(tx, {
          dealId: deal.id,
          kind: 'referral',
          message: COSELL_UNCONFIGURED,
          cause: ctx.cause,
          eventId: ctx.eventId,
        });
      }
      return deal;
    }
    const now = ctx.now ?? this.clock.now();
    const { count } = await tx.deal.updateMany({
      where: { id: deal.id, cosellRequestedAt: null },
      data: { cosellRequestedAt: now, version: { increment: 1 } },
    });
    if (count === 0) return deal;
    await this.outbox.enqueue(tx, JobName.ReferralCosellCreate, cosellJobId(deal.id, now), {
      correlationId: ctx.correlationId,
      dealId: deal.id,
    });
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'referral',
      message: `co-sell requested: creating the Partner Center referral for ${this.crm.label} deal ${deal.crmDealId}`,
      cause: ctx.cause,
      eventId: ctx.eventId,
    });
    return { ...deal, cosellRequestedAt: now, version: deal.version + 1 };
  }

  /** Whether the CRM sync creates the CRM deal of this referral deal (REFERRAL_CREATE_CRM_DEALS). */
  createsCrmDeal(deal: Pick<Deal, 'crmDealId' | 'referralId' | 'stage'>): boolean {
    return (
      this.config.env.REFERRAL_CREATE_CRM_DEALS &&
      !deal.crmDealId &&
      deal.referralId !== null &&
      isInProgress(deal.stage)
    );
  }

  /** CRM write-back, when there is a CRM deal to write to (or one to create for a referral). */
  async enqueueCrmSync(
    tx: Tx,
    deal: Pick<Deal, 'id' | 'crmDealId' | 'referralId' | 'stage'>,
    ctx: LifecycleContext,
    why: string,
  ): Promise<void> {
    if (!this.crm.configured()) return;
    if (!deal.crmDealId && !this.createsCrmDeal(deal)) return;
    await this.outbox.enqueue(tx, JobName.CrmDealSync, `crm-sync|${deal.id}|${why}`, {
      correlationId: ctx.correlationId,
      dealId: deal.id,
    });
  }

  /**
   * An invoice became a confirmed amount (sent or paid), by the issuer's own record or by the
   * invoicing system's word: the referral platform's 確定報告 and the CRM's invoiced total follow.
   * The one door for confirmed amounts.
   */
  async invoiceConfirmed(
    tx: Tx,
    billingKey: string,
    deal: InvoiceDealFacts,
    ctx: LifecycleContext,
  ): Promise<void> {
    if (deal.referralId) {
      await this.reports.confirmed(tx, billingKey, ctx);
      // A monthly fee's changes and end follow its first confirmed amount.
      await this.reports.monthlyFeeChanges(tx, deal.id, undefined, ctx);
    }
    await this.enqueueCrmSync(tx, deal, ctx, billingKey);
  }
}

/** The timeline's word for a co-sell request the hub cannot act on. */
export const COSELL_UNCONFIGURED = 'co-sell requested: Partner Center is not configured';

/** The job id of a deal's co-sell creation: one per request (the recovery sweep derives it too). */
export function cosellJobId(dealId: string, requestedAt: Date): string {
  return `cosell|${dealId}|${requestedAt.getTime()}`;
}

/** The INSERT of a stage-changing fact: once per event and type ((deal, event, type) is unique). */
function insertTrigger(
  dealId: string,
  trigger: LifecycleTrigger,
  at: Date,
  ctx: LifecycleContext,
): Prisma.Sql {
  return Prisma.sql`
    INSERT INTO stage_trigger (deal_id, at, type, target, event_id, cause)
    VALUES (${dealId}, ${at}::timestamptz, ${trigger.type},
            ${trigger.type === 'crm.stage' ? trigger.target : null}::"DealStage",
            ${ctx.eventId ?? null}, ${ctx.cause})
    ON CONFLICT DO NOTHING`;
}
