import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';

import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { AlertService } from '../alerts/alert.service';
import { Clock } from '../common/clock';
import { billability } from '../billing/billability';
import { parseBillingPlan } from '../billing/billing-plan';
import { BillingPlanService, PLAN_REFUSED_MESSAGE } from '../billing/billing-plan.service';
import { BillingService } from '../billing/billing.service';
import { MoneyError, toAmount } from '../domain/money';
import { addDaysInZone } from '../domain/calendar';
import { PermanentError, TransientError } from '../common/errors';
import { newId } from '../common/ids';
import { AppConfig } from '../config/app-config';
import { CrmDealSnapshot } from '../connectors/hubspot/hubspot.types';
import { BillingItem, Contract, ContractStatus, Deal, Prisma } from '../generated/prisma/client';
import { dbAmount } from '../prisma/db-amount';
import { DEAL_COLUMNS } from '../prisma/model-columns';
import { PrismaService } from '../prisma/prisma.service';
import { JobName } from '../queue/job-name.enum';
import { OutboxService } from '../queue/outbox/outbox.service';
import { stageFacts } from '../reporting/report-facts';
import { ReportService } from '../reporting/report.service';
import { SETTLED_STATES } from '../domain/invoice-state';
import { NormalizedEvent } from '../domain/normalized-event';
import {
  CrmTarget,
  DealStage,
  LifecycleTrigger,
  TimedTrigger,
  deriveStage,
  foldStage,
  isContractSentOrLater,
  isWonOrLater,
} from '../domain/deal-stage';
import { mapCrmStage } from '../connectors/hubspot/hubspot-stages';
import { TimelineInput, addTimeline, flushTimeline } from '../timeline/timeline';

type Tx = Prisma.TransactionClient;

export interface LifecycleContext {
  cause: string;
  correlationId: string;
  eventId?: string | null;
  now?: Date;
}

/** Event kinds the lifecycle acts on (the rest stay with their own modules or are ignored). */
const KINDS = new Set([
  'crm.deal_created',
  'crm.deal_stage_changed',
  'crm.deal_deleted',
  'envelope.sent',
  'envelope.delivered',
  'envelope.completed',
  'envelope.declined',
  'envelope.voided',
  'milestone.accepted',
  'milestone.rejected',
  'milestone.progress',
  'order.additional',
  'delivery.completed',
  'invoice.finalized',
  'invoice.sent',
  'invoice.paid',
  'invoice.payment_failed',
  'invoice.voided',
  'invoice.marked_uncollectible',
  'charge.dispute_created',
]);

const CONTRACT_RANK: Record<ContractStatus, number> = {
  PENDING: 0,
  CREATING: 1,
  SENT: 2,
  DELIVERED: 3,
  COMPLETED: 4,
  DECLINED: 4,
  VOIDED: 4,
};

/** How long an envelope event for an envelope the hub cannot place yet is retried. */
const UNPLACED_ENVELOPE_GRACE_MS = 10 * 60_000;

/** Which deal an event concerned, or why it was ignored. */
export type EventOutcome = { dealId?: string; ignored?: string };
type Outcome = EventOutcome;

/**
 * The one deal lifecycle (CONTRACT §4). Every change to a deal happens in one transaction with the
 * deal's row locked (FOR UPDATE), so one deal's events are applied one at a time whatever the
 * number of workers; the stage is the fold of the transition table over the deal's stage triggers
 * in occurrence order, so late, duplicate and reordered events converge (docs/decisions/0004).
 */
@Injectable()
export class LifecycleService {
  private readonly pipelineOverrides: Record<string, Record<string, CrmTarget>>;

  constructor(
    private readonly prisma: PrismaService,
    private readonly billing: BillingService,
    private readonly plans: BillingPlanService,
    private readonly outbox: OutboxService,
    private readonly reports: ReportService,
    private readonly alerts: AlertService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(LifecycleService.name);
    this.pipelineOverrides = config.env.HUBSPOT_PIPELINE_STAGES ?? {};
  }

  handles(kind: string): boolean {
    return KINDS.has(kind);
  }

  /**
   * Applies one normalized event inside the caller's transaction (the event pipeline's lane
   * transaction, which claims and marks the event): says which deal it concerned, or why it was
   * ignored. Throws to fail the event (its savepoint is rolled back).
   */
  apply(
    tx: Tx,
    ev: NormalizedEvent,
    ctx: LifecycleContext,
    snapshot?: CrmDealSnapshot | null,
  ): Promise<EventOutcome> {
    return this.dispatch(tx, ev, ctx, snapshot);
  }

  private async dispatch(
    tx: Tx,
    ev: NormalizedEvent,
    ctx: LifecycleContext,
    snapshot?: CrmDealSnapshot | null,
  ): Promise<Outcome> {
    const at = new Date(ev.occurredAt);
    const d = ev.data;
    switch (ev.kind) {
      case 'crm.deal_created':
      case 'crm.deal_stage_changed': {
        const crmDealId = ev.subject.crmDealId;
        if (!crmDealId) throw new PermanentError('HubSpot event without objectId');
        if (snapshot === null) return { ignored: `HubSpot deal ${crmDealId} no longer exists` };
        const deal = await this.lockOrCreateCrmDeal(tx, crmDealId, snapshot, ctx);
        if (snapshot) await this.applySnapshot(tx, deal, snapshot, ctx);
        const stageId =
          ev.kind === 'crm.deal_stage_changed'
            ? (d.stage as string | undefined)
            : (snapshot?.properties.dealstage ?? undefined);
        if (stageId) {
          const pipeline = snapshot?.properties.pipeline ?? deal.crmPipeline;
          const target = mapCrmStage(pipeline, stageId, this.pipelineOverrides);
          if (target) {
            await this.addTrigger(tx, deal.id, { type: 'crm.stage', target }, at, ctx);
          } else {
            await addTimeline(tx, {
              dealId: deal.id,
              kind: 'refused',
              message: `HubSpot stage "${stageId}" of pipeline "${pipeline ?? 'default'}" is not mapped to a hub stage (set HUBSPOT_PIPELINE_STAGES)`,
              cause: ctx.cause,
              eventId: ctx.eventId,
            });
          }
        }
        await this.settle(tx, deal.id, ctx);
        return { dealId: deal.id };
      }
      case 'crm.deal_deleted': {
        const deal = await this.findDeal(tx, { crmDealId: ev.subject.crmDealId });
        if (!deal) return { ignored: `no hub deal for HubSpot deal ${ev.subject.crmDealId}` };
        await addTimeline(tx, {
          dealId: deal.id,
          kind: 'crm',
          message: 'the deal was deleted in HubSpot; the hub keeps its record and invoices',
          cause: ctx.cause,
          eventId: ctx.eventId,
        });
        return { dealId: deal.id };
      }
      case 'envelope.sent':
      case 'envelope.delivered':
      case 'envelope.completed':
      case 'envelope.declined':
      case 'envelope.voided':
        return this.applyEnvelope(tx, ev, at, ctx);
      case 'milestone.accepted':
      case 'milestone.rejected':
      case 'milestone.progress':
      case 'order.additional':
      case 'delivery.completed': {
        const deal = await this.findDeal(tx, ev.subject);
        if (!deal) {
          throw new PermanentError(
            `no deal ${ev.subject.dealId ?? `with CRM id ${ev.subject.crmDealId}`}: create it (or fix the id) and replay`,
          );
        }
        // A fact that changed nothing (a duplicate acceptance, say) needs no new fold.
        if (await this.applyDealFact(tx, deal, ev, at, ctx)) await this.settle(tx, deal.id, ctx);
        return { dealId: deal.id };
      }
      case 'invoice.finalized':
      case 'invoice.sent':
      case 'invoice.paid':
      case 'invoice.payment_failed':
      case 'invoice.voided':
      case 'invoice.marked_uncollectible':
      case 'charge.dispute_created':
        return this.applyStripe(tx, ev, ctx);
      default:
        return { ignored: `${ev.kind} is not used by the lifecycle` };
    }
  }

  // ---- deals ------------------------------------------------------------------------------

  /** Locks a deal row for the rest of the transaction and returns it. */
  async lockDeal(tx: Tx, dealId: string): Promise<Deal> {
    // No such deal: Prisma's own not-found error, as before.
    return (
      (await this.tryLockDeal(tx, dealId)) ?? tx.deal.findUniqueOrThrow({ where: { id: dealId } })
    );
  }

  /** The deal, locked for the rest of the transaction, in one statement; undefined if there is none. */
  private async tryLockDeal(tx: Tx, dealId: string): Promise<Deal | undefined> {
    const [deal] = await tx.$queryRaw<Deal[]>`
      SELECT ${DEAL_COLUMNS} FROM deal WHERE id = ${dealId} FOR UPDATE`;
    return deal;
  }

  private async findDeal(
    tx: Tx,
    subject: { dealId?: string; crmDealId?: string },
  ): Promise<Deal | undefined> {
    if (subject.dealId) return this.tryLockDeal(tx, subject.dealId);
    const found = subject.crmDealId
      ? await tx.deal.findUnique({ where: { crmDealId: subject.crmDealId }, select: { id: true } })
      : null;
    return found ? this.lockDeal(tx, found.id) : undefined;
  }

  /** The hub deal of a HubSpot deal, created (or linked to its referral deal) on first sight. */
  private async lockOrCreateCrmDeal(
    tx: Tx,
    crmDealId: string,
    snapshot: CrmDealSnapshot | undefined,
    ctx: LifecycleContext,
  ): Promise<Deal> {
    const existing = await tx.deal.findUnique({ where: { crmDealId }, select: { id: true } });
    if (existing) return this.lockDeal(tx, existing.id);
    const platform = snapshot?.properties.closeloop_referral_platform;
    const referralId = snapshot?.properties.closeloop_referral_id;
    if (platform && referralId) {
      const referral = await tx.deal.findUnique({
        where: { referralPlatform_referralId: { referralPlatform: platform, referralId } },
        select: { id: true, crmDealId: true },
      });
      if (referral && !referral.crmDealId) {
        const linked = await tx.deal.updateMany({
          where: { id: referral.id, crmDealId: null },
          data: { crmDealId },
        });
        if (linked.count === 1) {
          await addTimeline(tx, {
            dealId: referral.id,
            kind: 'crm',
            message: `linked to HubSpot deal ${crmDealId}`,
            cause: ctx.cause,
            eventId: ctx.eventId,
          });
          return this.lockDeal(tx, referral.id);
        }
      }
    }
    const id = newId('cl_deal');
    const inserted = await tx.$queryRaw<{ id: string }[]>`
      INSERT INTO deal (id, name, stage, source, crm_deal_id, currency, updated_at)
      VALUES (${id}, ${snapshot?.properties.dealname ?? `HubSpot deal ${crmDealId}`},
              'REFERRED', 'hubspot', ${crmDealId}, 'jpy', now())
      ON CONFLICT (crm_deal_id) DO NOTHING RETURNING id`;
    if (inserted.length === 1) {
      await addTimeline(tx, {
        dealId: id,
        kind: 'crm',
        message: `deal created from HubSpot deal ${crmDealId}`,
        cause: ctx.cause,
        eventId: ctx.eventId,
      });
    }
    const row = await tx.deal.findUniqueOrThrow({ where: { crmDealId }, select: { id: true } });
    return this.lockDeal(tx, row.id);
  }

  private async applySnapshot(
    tx: Tx,
    deal: Deal,
    s: CrmDealSnapshot,
    ctx: LifecycleContext,
  ): Promise<void> {
    const p = s.properties;
    const contactName = [s.contact?.firstname, s.contact?.lastname].filter(Boolean).join(' ');
    const currency = (p.deal_currency_code ?? deal.currency).toLowerCase();
    const data: Prisma.DealUpdateInput = {
      name: p.dealname ?? deal.name,
      crmPipeline: p.pipeline ?? deal.crmPipeline,
      crmStage: p.dealstage ?? deal.crmStage,
      customerEmail: s.contact?.email ?? deal.customerEmail,
      contactName: contactName || deal.contactName,
      companyName: s.company?.name ?? deal.companyName,
      customerName: s.company?.name ?? (contactName || deal.customerName),
      currency,
    };
    const platform = p.closeloop_referral_platform;
    const referralId = p.closeloop_referral_id;
    if (!deal.referralId && platform && referralId) {
      // A referral belongs to one deal: a second CRM deal naming it is told, not linked.
      const owner = await tx.deal.findUnique({
        where: { referralPlatform_referralId: { referralPlatform: platform, referralId } },
        select: { id: true },
      });
      if (!owner) {
        data.referralPlatform = platform;
        data.referralId = referralId;
      } else if (owner.id !== deal.id) {
        await addTimeline(tx, {
          dealId: deal.id,
          kind: 'refused',
          message: `HubSpot names referral ${platform} ${referralId}, which belongs to deal ${owner.id}: not linked`,
          cause: ctx.cause,
          eventId: ctx.eventId,
        });
      }
    }
    if (p.amount) {
      try {
        data.amount = toAmount(p.amount, currency);
      } catch (err) {
        if (!(err instanceof MoneyError)) throw err;
        await addTimeline(tx, {
          dealId: deal.id,
          kind: 'refused',
          message: `HubSpot amount "${p.amount}" refused: ${err.message}`,
          cause: ctx.cause,
          eventId: ctx.eventId,
        });
      }
    }
    const updated = await tx.deal.update({ where: { id: deal.id }, data });
    const rawPlan = p.closeloop_billing_plan;
    if (rawPlan && rawPlan.trim() !== '' && !samePlan(rawPlan, updated)) {
      await this.plans.applyPlan(tx, updated, rawPlan, ctx);
    }
  }

  // ---- DocuSign ------------------------------------------------------------------------------

  private async applyEnvelope(
    tx: Tx,
    ev: NormalizedEvent,
    at: Date,
    ctx: LifecycleContext,
  ): Promise<Outcome> {
    const envelopeId = ev.subject.envelopeId;
    if (!envelopeId) throw new PermanentError('DocuSign event without an envelope id');
    type ContractRef = Pick<Contract, 'id' | 'dealId' | 'envelopeId' | 'status'>;
    let [contract]: (ContractRef | undefined)[] = await tx.$queryRaw<ContractRef[]>`
      SELECT id, deal_id AS "dealId", envelope_id AS "envelopeId", status::text AS status
        FROM contract WHERE envelope_id = ${envelopeId}`;
    if (!contract && ev.subject.dealId) {
      contract =
        (await tx.contract.findUnique({ where: { dealId: ev.subject.dealId } })) ?? undefined;
      if (contract && contract.envelopeId && contract.envelopeId !== envelopeId) {
        return {
          dealId: contract.dealId,
          ignored: `envelope ${envelopeId} is not the deal's envelope ${contract.envelopeId}`,
        };
      }
    }
    const dealId = contract?.dealId ?? ev.subject.dealId;
    const deal = dealId ? await this.findDeal(tx, { dealId }) : undefined;
    if (!deal) {
      // Connect can call before the transaction recording a new envelope id commits: while an
      // envelope creation is in flight, an unplaced envelope is retried for a while.
      const inFlight = await tx.contract.count({
        where: { envelopeId: null, status: { in: ['PENDING', 'CREATING'] } },
      });
      if (inFlight > 0 && this.clock.nowMs() - at.getTime() < UNPLACED_ENVELOPE_GRACE_MS) {
        throw new TransientError(`no deal known yet for envelope ${envelopeId}`);
      }
      return { ignored: `envelope ${envelopeId} does not belong to a hub deal` };
    }
    const next: Partial<Record<string, ContractStatus>> = {
      'envelope.sent': 'SENT',
      'envelope.delivered': 'DELIVERED',
      'envelope.completed': 'COMPLETED',
      'envelope.declined': 'DECLINED',
      'envelope.voided': 'VOIDED',
    };
    const status = next[ev.kind] as ContractStatus;
    if (!contract) {
      await tx.contract.create({
        data: { id: newId('ctr'), dealId: deal.id, envelopeId, status },
      });
    } else if (CONTRACT_RANK[status] > CONTRACT_RANK[contract.status] || !contract.envelopeId) {
      const moves = CONTRACT_RANK[status] > CONTRACT_RANK[contract.status];
      await tx.$executeRaw`
        UPDATE contract
           SET envelope_id = ${envelopeId}, updated_at = clock_timestamp(),
               status = CASE WHEN ${moves}::boolean THEN ${status}::"ContractStatus" ELSE status END,
               sent_at = CASE WHEN ${status === 'SENT'}::boolean THEN ${at}::timestamptz ELSE sent_at END,
               completed_at = CASE WHEN ${status === 'COMPLETED'}::boolean THEN ${at}::timestamptz
                                   ELSE completed_at END,
               ended_at = CASE WHEN ${status === 'DECLINED' || status === 'VOIDED'}::boolean
                               THEN ${at}::timestamptz ELSE ended_at END
         WHERE id = ${contract.id}`;
    }
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'contract',
      message: `envelope ${envelopeId} ${ev.kind.slice('envelope.'.length)}`,
      cause: ctx.cause,
      eventId: ctx.eventId,
      at,
    });
    // Nothing above changed the deal row: settle starts from the locked read, and records the
    // envelope's trigger in the statement that reads the deal's triggers.
    await this.settle(tx, deal.id, ctx, {
      locked: deal,
      add:
        ev.kind !== 'envelope.delivered'
          ? { trigger: { type: ev.kind } as LifecycleTrigger, at }
          : undefined,
    });
    return { dealId: deal.id };
  }

  // ---- milestones, additional orders, delivery ------------------------------------------------

  private async applyDealFact(
    tx: Tx,
    deal: Deal,
    ev: NormalizedEvent,
    at: Date,
    ctx: LifecycleContext,
  ): Promise<boolean> {
    const d = ev.data;
    const note = (kind: TimelineInput['kind'], message: string) =>
      addTimeline(tx, { dealId: deal.id, kind, message, cause: ctx.cause, eventId: ctx.eventId });
    /** A fact that changes nothing: said on the timeline, and the deal needs no new fold. */
    const unchanged = async (kind: TimelineInput['kind'], message: string) => {
      await note(kind, message);
      return false;
    };
    const changed = async (kind: TimelineInput['kind'], message: string) => {
      await note(kind, message);
      return true;
    };
    if (ev.kind === 'delivery.completed') {
      if (deal.deliveredOn)
        return unchanged('event', `delivery already recorded on ${deal.deliveredOn}`);
      await tx.deal.update({
        where: { id: deal.id },
        data: { deliveredOn: String(d.deliveredOn) },
      });
      await this.openSilentWindows(tx, deal, at, ctx);
      return changed('item', `delivery completed on ${String(d.deliveredOn)}`);
    }
    if (ev.kind === 'order.additional') {
      const result = await this.plans.addItems(
        tx,
        deal,
        String(d.description),
        d.items as unknown[],
        ctx,
      );
      if (!result.ok) {
        throw new PermanentError(`additional order refused: ${result.errors.join('; ')}`);
      }
      await this.reports.additionalOrder(
        tx,
        deal,
        String(d.description),
        result.keys ?? [],
        at,
        ctx,
      );
      return true;
    }
    const itemKey = String(d.itemKey);
    const item = await this.plans.itemForEvent(tx, deal.id, itemKey);
    const label = item.removed ? `${itemKey} (not in the plan yet)` : `${item.label} (${itemKey})`;
    switch (ev.kind) {
      case 'milestone.accepted': {
        if (item.acceptedAt)
          return unchanged('event', `${label} was already accepted; duplicate ignored`);
        const acceptedAt = d.acceptedAt ? new Date(String(d.acceptedAt)) : at;
        await tx.billingItem.update({
          where: { id: item.id },
          data: {
            acceptedAt,
            acceptedBy: (d.acceptedBy as string | undefined) ?? 'milestone webhook',
            acceptanceDueAt: null,
          },
        });
        return changed(
          'item',
          `${label} accepted${d.acceptedBy ? ` by ${String(d.acceptedBy)}` : ''}${isWonOrLater(deal.stage) ? '' : ` — billed once the deal is WON (now ${deal.stage})`}`,
        );
      }
      case 'milestone.rejected': {
        if (item.acceptedAt) {
          return unchanged('refused', `${label} rejection ignored: it was already accepted`);
        }
        await tx.billingItem.update({
          where: { id: item.id },
          data: {
            rejectedAt: d.rejectedAt ? new Date(String(d.rejectedAt)) : at,
            rejectionReason: (d.reason as string | undefined) ?? null,
            acceptanceDueAt: null,
          },
        });
        return changed('item', `${label} rejected${d.reason ? `: ${String(d.reason)}` : ''}`);
      }
      case 'milestone.progress': {
        const pct = Math.round(Number(d.progressPercent));
        if (pct <= item.progressPercent) {
          return unchanged(
            'event',
            `${label} progress ${pct}% is not beyond ${item.progressPercent}%`,
          );
        }
        await tx.billingItem.update({ where: { id: item.id }, data: { progressPercent: pct } });
        await note('item', `${label} progress ${item.progressPercent}% → ${pct}%`);
        if (pct >= 100) await this.openSilentWindows(tx, deal, at, ctx, item.id);
        return true;
      }
    }
    return true;
  }

  /**
   * Starts the acceptance window of silent-approval items once the work is submitted (progress
   * 100 % on the item, or delivery of the deal): without a rejection within acceptanceDays
   * (calendar days in the deal's time zone) the item is accepted by the timer.
   */
  private async openSilentWindows(
    tx: Tx,
    deal: Deal,
    at: Date,
    ctx: LifecycleContext,
    itemId?: string,
  ): Promise<void> {
    const items = await tx.billingItem.findMany({
      where: {
        dealId: deal.id,
        silentApproval: true,
        acceptedAt: null,
        acceptanceDueAt: null,
        ...(itemId ? { id: itemId } : {}),
      },
    });
    for (const item of items) {
      if (!item.acceptanceDays) continue;
      if (item.rejectedAt && item.rejectedAt > at) continue;
      const due = addDaysInZone(at, item.acceptanceDays, this.config.timeZoneOf(deal));
      await tx.billingItem.update({
        where: { id: item.id },
        data: { submittedAt: at, acceptanceDueAt: due },
      });
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'item',
        message: `${item.label} (${item.key}) submitted for acceptance: silent approval on ${due.toISOString()} unless rejected`,
        cause: ctx.cause,
        eventId: ctx.eventId,
      });
    }
  }

  /** Timer: accepts a silent-approval item whose window passed (once: acceptedAt is set once). */
  async silentApprove(dealId: string, itemId: string, now: Date): Promise<boolean> {
    return this.prisma.$transaction(async (tx) => {
      const deal = await this.lockDeal(tx, dealId);
      const item = await tx.billingItem.findUnique({ where: { id: itemId } });
      if (
        !item ||
        item.acceptedAt ||
        !item.acceptanceDueAt ||
        item.acceptanceDueAt > now ||
        item.removed
      ) {
        return false;
      }
      await tx.billingItem.update({
        where: { id: item.id },
        data: { acceptedAt: item.acceptanceDueAt, acceptedBy: 'silent approval' },
      });
      const ctx: LifecycleContext = {
        cause: 'timer: silent approval',
        correlationId: `timer-${item.id}`,
        now,
      };
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'timer',
        message: `${item.label} (${item.key}) accepted by silent approval: no rejection within ${item.acceptanceDays} day(s)`,
        cause: ctx.cause,
      });
      await this.settle(tx, deal.id, ctx);
      return true;
    });
  }

  /** Timer: bills the monthly periods that became due (the billing keys make it once per month). */
  async billDue(dealId: string, now: Date): Promise<string[]> {
    return this.prisma.$transaction(async (tx) => {
      const deal = await this.lockDeal(tx, dealId);
      return this.billing.materialize(tx, deal, {
        cause: 'timer: monthly billing date',
        correlationId: `timer-${dealId}`,
        now,
      });
    });
  }

  // ---- Stripe ---------------------------------------------------------------------------------

  private async applyStripe(tx: Tx, ev: NormalizedEvent, ctx: LifecycleContext): Promise<Outcome> {
    const d = ev.data;
    const stripeInvoiceId = ev.subject.stripeInvoiceId;
    const billingKey = d.billingKey as string | undefined;
    const ref = billingKey
      ? await tx.invoice.findUnique({ where: { billingKey }, select: { id: true, dealId: true } })
      : stripeInvoiceId
        ? await tx.invoice.findUnique({
            where: { stripeInvoiceId },
            select: { id: true, dealId: true },
          })
        : null;
    if (!ref) {
      // Not one of ours. If it names a hub deal, the deal's timeline says so (finance will see it
      // as an unknown invoice in reconciliation); otherwise there is nothing to attach it to.
      const deal = ev.subject.dealId
        ? await this.findDeal(tx, { dealId: ev.subject.dealId })
        : undefined;
      if (!deal) {
        return { ignored: `Stripe invoice ${stripeInvoiceId ?? '?'} was not made by the hub` };
      }
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'billing',
        message: `Stripe ${ev.kind} for invoice ${stripeInvoiceId ?? '?'}, which the hub did not make (reconciliation names it)`,
        cause: ctx.cause,
        eventId: ctx.eventId,
      });
      return { dealId: deal.id };
    }
    const deal = await this.lockDeal(tx, ref.dealId);
    const invoice = await tx.invoice.findUniqueOrThrow({ where: { id: ref.id } });
    if (ev.kind === 'charge.dispute_created') {
      await addTimeline(tx, {
        dealId: invoice.dealId,
        kind: 'billing',
        message: `payment of invoice ${invoice.stripeNumber ?? stripeInvoiceId} disputed`,
        cause: ctx.cause,
        eventId: ctx.eventId,
      });
      await this.enqueueCrmSync(tx, deal, ctx, `dispute-${ctx.eventId}`);
      return { dealId: invoice.dealId };
    }
    if (ev.kind === 'invoice.payment_failed') {
      await addTimeline(tx, {
        dealId: invoice.dealId,
        kind: 'billing',
        message: `payment of invoice ${invoice.stripeNumber ?? stripeInvoiceId} failed`,
        cause: ctx.cause,
        eventId: ctx.eventId,
      });
      return { dealId: invoice.dealId };
    }
    if (!stripeInvoiceId) throw new PermanentError(`${ev.kind} without an invoice id`);
    const { changed } = await this.billing.applyStripeEvent(
      tx,
      invoice,
      {
        kind: ev.kind,
        stripeInvoiceId,
        status: d.status as string | undefined,
        number: d.number as string | undefined,
        amountPaid: d.amountPaid as number | undefined,
        total: d.total as number | undefined,
        hostedInvoiceUrl: d.hostedInvoiceUrl as string | undefined,
        invoicePdfUrl: d.invoicePdfUrl as string | undefined,
      },
      ctx,
    );
    if (changed && (ev.kind === 'invoice.paid' || ev.kind === 'invoice.voided')) {
      await this.enqueueCrmSync(tx, deal, ctx, `${ev.kind}-${invoice.id}`);
    }
    // Stripe confirming what the hub already recorded (its own finalize/send) changes nothing.
    if (!changed) return { dealId: invoice.dealId };
    await this.settle(tx, invoice.dealId, ctx);
    return { dealId: invoice.dealId };
  }

  // ---- the fold ---------------------------------------------------------------------------------

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
    const timed: TimedTrigger[] = rows.map((r) => ({
      trigger: (r.type === 'crm.stage'
        ? { type: 'crm.stage', target: r.target }
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
    if (current.referralId) {
      const delivered =
        stage === 'DELIVERED' || stage === 'CLOSED'
          ? (current.deliveredAt ?? ctx.now ?? this.clock.now())
          : undefined;
      await this.reports.fromHistory(tx, current, stageFacts(folded.steps, delivered), items, ctx);
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
      if (item.trigger === 'monthly') return mine.length >= (item.months ?? 0);
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
        message: 'contract sent: DocuSign is not configured, so the hub creates no envelope',
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
      message: 'contract sent: creating the DocuSign envelope from the template',
      cause: ctx.cause,
      eventId: ctx.eventId,
    });
  }

  /** Whether the CRM sync creates the HubSpot deal of this referral deal (REFERRAL_CREATE_CRM_DEALS). */
  createsCrmDeal(deal: Pick<Deal, 'crmDealId' | 'referralId' | 'stage'>): boolean {
    return (
      this.config.env.REFERRAL_CREATE_CRM_DEALS &&
      !deal.crmDealId &&
      deal.referralId !== null &&
      ['APPOINTMENT', 'NEGOTIATING', 'CONTRACT_SENT', 'WON', 'DELIVERED', 'CLOSED'].includes(
        deal.stage,
      )
    );
  }

  /** CRM write-back, when there is a CRM deal to write to (or one to create for a referral). */
  async enqueueCrmSync(
    tx: Tx,
    deal: Pick<Deal, 'id' | 'crmDealId' | 'referralId' | 'stage'>,
    ctx: LifecycleContext,
    why: string,
  ): Promise<void> {
    if (!this.config.hubspotConfigured) return;
    if (!deal.crmDealId && !this.createsCrmDeal(deal)) return;
    await this.outbox.enqueue(tx, JobName.CrmDealSync, `crm-sync|${deal.id}|${why}`, {
      correlationId: ctx.correlationId,
      dealId: deal.id,
    });
  }
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

/** Whether the CRM's plan property says what the deal already has (or was already refused for). */
function samePlan(raw: string, deal: Deal): boolean {
  const parsed = parseBillingPlan(raw, {
    dealAmount: dbAmount(deal.amount),
    currency: deal.currency,
  });
  if (!parsed.ok) return deal.planError === parsed.errors.join('; ');
  // Postgres jsonb does not keep key order: compare values, not serialisations.
  return isDeepStrictEqual(JSON.parse(JSON.stringify(parsed.plan)), deal.billingPlan);
}
