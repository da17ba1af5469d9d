import { HttpStatus } from '@nestjs/common';

import { itemBillingStatus } from '../billing/billing.service';
import { billability } from '../billing/billability';
import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { AppConfig } from '../config/app-config';
import { ENDED_STAGES } from '../domain/deal-stage';
import { monthlyChangesOf } from '../domain/monthly-fee';
import { Prisma } from '../generated/prisma/client';
import { JobName } from '../queue/job-name.enum';
import { dbAmount } from '../prisma/db-amount';
import { PrismaService } from '../prisma/prisma.service';
import { attentionPage } from './attention';
import { INVOICE_FIELDS, LIST_FIELDS, billingSummary, customerOf, invoiceView } from './deal-views';
import { DealsQuery } from './deals.dto';
import { EVENT_SUMMARY_FIELDS } from './event-fields';
import { page } from './pagination';

type Db = Prisma.TransactionClient;

/** A deal's co-sell request as the admin API and the dashboard show it (see cosellOf). */
export type CosellView =
  | {
      state: 'created';
      requestedAt: Date | null;
      platform: string;
      referralId: string;
      createdAt: Date;
    }
  | {
      state: 'failed';
      requestedAt: Date;
      reason: string;
      deadLetterId: string;
      failedAt: Date;
    }
  | { state: 'requested'; requestedAt: Date }
  | { state: 'not_requested'; reason: string };

/** A deal's detail shows its newest timeline entries and events, oldest first, up to these. */
const DETAIL_TIMELINE = 500;
const DETAIL_EVENTS = 200;

/** The deals API's reads: the list (or the attention list) and a deal's detail. */
export class DealQueries {
  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
  ) {}

  async list(q: DealsQuery) {
    if (q.attention) return this.attentionList(q);
    const and: Prisma.DealWhereInput[] = [];
    if (q.stage) and.push({ stage: q.stage });
    if (q.crmDealId) and.push({ crmDealId: q.crmDealId });
    if (q.referralId) and.push({ referralId: q.referralId });
    if (q.cursor) and.push({ id: { lt: q.cursor } });
    if (q.q) {
      const v = q.q;
      and.push({
        OR: [
          { id: v },
          { crmDealId: v },
          { referralId: v },
          { contract: { is: { envelopeId: v } } },
          { invoices: { some: { OR: [{ providerInvoiceId: v }, { invoiceNumber: v }] } } },
        ],
      });
    }
    const rows = await this.prisma.deal.findMany({
      where: and.length ? { AND: and } : {},
      select: LIST_FIELDS,
      orderBy: { id: 'desc' },
      take: q.limit + 1,
    });
    const { items, nextCursor } = page(rows, q.limit);
    return { items: await this.listItems(items), nextCursor };
  }

  /**
   * The deals that need a person (CONTRACT §6), newest first, each with `attention`: its reasons
   * (src/admin/attention.ts). `stage` narrows it; the id filters (q, crmDealId, referralId) name
   * one deal and do not combine with it.
   */
  private async attentionList(q: DealsQuery) {
    if (q.q || q.crmDealId || q.referralId) {
      throw new DomainException(
        HttpStatus.BAD_REQUEST,
        CommonErrorCode.ValidationFailed,
        'attention: lists every deal that needs a person; it combines with stage, limit and cursor only (not q, crmDealId or referralId)',
      );
    }
    const { dealIds, nextCursor, entries } = await attentionPage(this.prisma, q, {
      graceMs: this.config.env.RECOVERY_GRACE_MS,
    });
    const rows = await this.prisma.deal.findMany({
      where: { id: { in: dealIds } },
      select: LIST_FIELDS,
      orderBy: { id: 'desc' },
    });
    const items = await this.listItems(rows);
    return {
      items: items.map((d) => ({ ...d, attention: entries.get(d.id) ?? [] })),
      nextCursor,
    };
  }

  /** List items with their billing summaries, in the order given. */
  private async listItems(items: Prisma.DealGetPayload<{ select: typeof LIST_FIELDS }>[]) {
    const invoices = items.length
      ? await this.prisma.invoice.findMany({
          where: { dealId: { in: items.map((d) => d.id) } },
          select: { dealId: true, state: true, amount: true, amountPaid: true },
        })
      : [];
    return items.map((d) => ({
      id: d.id,
      name: d.name,
      stage: d.stage,
      source: d.source,
      crmDealId: d.crmDealId,
      referral: d.referralId ? { platform: d.referralPlatform, id: d.referralId } : null,
      currency: d.currency,
      amount: dbAmount(d.amount),
      customer: customerOf(d),
      createdAt: d.createdAt,
      updatedAt: d.updatedAt,
      billing: billingSummary(invoices.filter((i) => i.dealId === d.id)),
    }));
  }

  /** The deal with its plan, items (billing status, invoices), contract, timeline and events. */
  async detail(db: Db, id: string) {
    const deal = await db.deal.findUnique({
      where: { id },
      include: {
        items: { orderBy: [{ position: 'asc' }, { createdAt: 'asc' }] },
        invoices: {
          select: INVOICE_FIELDS,
          orderBy: [{ createdAt: 'asc' }, { billingKey: 'asc' }],
        },
        contract: true,
        // A deal under a burst can have thousands: the newest are shown, the totals say so.
        timeline: { orderBy: { id: 'desc' }, take: DETAIL_TIMELINE },
        _count: { select: { timeline: true } },
        referral: true,
        reports: { orderBy: [{ occurredAt: 'asc' }, { id: 'asc' }] },
      },
    });
    if (!deal) return undefined;
    const [newestEvents, eventsTotal] = await Promise.all([
      db.webhookEvent.findMany({
        where: { dealId: id },
        select: EVENT_SUMMARY_FIELDS,
        orderBy: { id: 'desc' },
        take: DETAIL_EVENTS,
      }),
      db.webhookEvent.count({ where: { dealId: id } }),
    ]);
    const events = newestEvents.reverse();
    const cosell = await this.cosellOf(db, deal);
    const items = deal.items
      // Placeholders for facts about keys no plan has named yet are kept but are not plan items.
      .filter((i) => !(i.removed && i.addedBy === 'event'))
      .map((i) => {
        const mine = deal.invoices.filter((inv) => inv.itemKey === i.key);
        return {
          key: i.key,
          label: i.label,
          trigger: i.trigger,
          amount: dbAmount(i.amount),
          percent: i.percent,
          taxRatePercent: i.taxRatePercent,
          expectedInvoiceDate: i.expectedInvoiceDate,
          startOn: i.startOn,
          months: i.months,
          monthlyChanges: monthlyChangesOf(i.monthlyChanges) ?? null,
          endMonth: i.endMonth,
          addedBy: i.addedBy,
          silentApproval: i.silentApproval,
          acceptanceDays: i.acceptanceDays,
          submittedAt: i.submittedAt,
          acceptanceDueAt: i.acceptanceDueAt,
          acceptedAt: i.acceptedAt,
          acceptedBy: i.acceptedBy,
          rejectedAt: i.rejectedAt,
          rejectionReason: i.rejectionReason,
          progressPercent: i.progressPercent,
          billedPercent: i.billedPercent,
          removed: i.removed,
          billingStatus: itemBillingStatus(mine),
          invoices: mine.map(invoiceView),
        };
      });
    return {
      id: deal.id,
      name: deal.name,
      stage: deal.stage,
      version: deal.version,
      source: deal.source,
      crmDealId: deal.crmDealId,
      crmPipeline: deal.crmPipeline,
      crmStage: deal.crmStage,
      referral: deal.referralId
        ? {
            platform: deal.referralPlatform,
            id: deal.referralId,
            ...(deal.referral
              ? {
                  referralId: deal.referral.id,
                  state: deal.referral.state,
                  title: deal.referral.title,
                  respondBy: deal.referral.respondBy,
                  clockRule: deal.referral.clockRule,
                  platformStatus: deal.referral.platformStatus,
                  platformSubstatus: deal.referral.platformSubstatus,
                }
              : {}),
          }
        : null,
      cosell,
      reports: deal.reports.map((r) => ({
        id: r.id,
        kind: r.kind,
        platform: r.platform,
        channel: r.channel,
        status: r.status,
        occurredAt: r.occurredAt,
        dueAt: r.dueAt,
        deliveredAt: r.deliveredAt,
        attempts: r.attempts,
        lastError: r.lastError,
        billingKey: r.billingKey,
        amountExTax: dbAmount(r.amountExTax),
        fields: r.fields,
      })),
      customer: customerOf(deal),
      currency: deal.currency,
      amount: dbAmount(deal.amount),
      timeZone: deal.timeZone,
      stripeCustomerId: deal.billingCustomerId,
      wonAt: deal.wonAt,
      deliveredAt: deal.deliveredAt,
      deliveredOn: deal.deliveredOn,
      closedAt: deal.closedAt,
      lostAt: deal.lostAt,
      /** A loss proposed from the manual queue (まだ未定: 失注), waiting for POST …/loss/confirm or …/dismiss. */
      lossProposal: deal.lossProposedAt
        ? { proposedAt: deal.lossProposedAt, reason: deal.lossProposal }
        : null,
      createdAt: deal.createdAt,
      updatedAt: deal.updatedAt,
      plan: deal.billingPlan,
      planError: deal.planError,
      /** Whether a valid plan is in force; else why not ("plan refused (…)", "no billing plan"). */
      billable: billability(deal),
      billing: billingSummary(deal.invoices),
      items,
      contract: deal.contract
        ? {
            envelopeId: deal.contract.envelopeId,
            status: deal.contract.status,
            attempts: deal.contract.attempts,
            lastError: deal.contract.lastError,
            sentAt: deal.contract.sentAt,
            completedAt: deal.contract.completedAt,
            endedAt: deal.contract.endedAt,
          }
        : null,
      jobAttempts: await this.jobAttemptsOf(
        db,
        id,
        events.map((e) => e.id),
      ),
      timelineTotal: deal._count.timeline,
      eventsTotal,
      timeline: [...deal.timeline].reverse().map((t) => ({
        at: t.at,
        kind: t.kind,
        message: t.message,
        cause: t.cause,
        eventId: t.eventId,
        fromStage: t.fromStage,
        toStage: t.toStage,
        details: t.details,
      })),
      events,
    };
  }

  /**
   * Where the deal's co-sell request stands (CONTRACT §5; docs/decisions/0014); null when the CRM
   * never asked for one:
   * - `created`: the outbound referral exists (its platform id);
   * - `failed`: its creation gave up (the open dead letter and its reason; replay after the fix);
   * - `requested`: queued or being retried (see jobAttempts);
   * - `not_requested`: asked for, but the hub cannot act (the reason: Partner Center not
   *   configured, the deal ended, or it already has a referral of its own).
   */
  private async cosellOf(
    db: Db,
    deal: Prisma.DealGetPayload<{ include: { referral: true } }>,
  ): Promise<CosellView | null> {
    if (deal.referral?.direction === 'outbound') {
      return {
        state: 'created',
        requestedAt: deal.cosellRequestedAt,
        platform: deal.referral.platform,
        referralId: deal.referral.externalId,
        createdAt: deal.referral.platformCreatedAt ?? deal.referral.createdAt,
      };
    }
    if (!deal.cosell && !deal.cosellRequestedAt) return null;
    if (deal.referralId) {
      return { state: 'not_requested', reason: 'the deal already has a referral' };
    }
    if (deal.cosellRequestedAt) {
      const dl = await db.deadLetter.findFirst({
        where: {
          jobName: JobName.ReferralCosellCreate,
          status: 'OPEN',
          data: { path: ['dealId'], equals: deal.id },
        },
        orderBy: { createdAt: 'desc' },
        select: { id: true, error: true, createdAt: true },
      });
      if (dl) {
        return {
          state: 'failed',
          requestedAt: deal.cosellRequestedAt,
          reason: dl.error,
          deadLetterId: dl.id,
          failedAt: dl.createdAt,
        };
      }
      return { state: 'requested', requestedAt: deal.cosellRequestedAt };
    }
    return {
      state: 'not_requested',
      reason: ENDED_STAGES.includes(deal.stage)
        ? `the deal is ${deal.stage}`
        : !deal.crmDealId
          ? 'the deal has no CRM deal'
          : !this.config.partnerCenterConfigured
            ? 'Partner Center is not configured'
            : 'waiting for the next change of the deal',
    };
  }

  /**
   * Every job run for the deal, newest last: its events' processing and the jobs whose data name
   * the deal (invoices, envelope, CRM write-back, report deliveries) — with outcome and error, so
   * a failing provider call shows on the deal even while it is still being retried.
   */
  private async jobAttemptsOf(db: Db, dealId: string, eventIds: string[]) {
    const rows = await db.jobAttempt.findMany({
      where: { OR: [{ eventId: { in: eventIds } }, { dealId }] },
      orderBy: { id: 'desc' },
      take: 200,
    });
    return rows.reverse().map((a) => ({
      at: a.finishedAt,
      queue: a.queue,
      jobName: a.jobName,
      jobId: a.jobId,
      eventId: a.eventId,
      attempt: a.attempt,
      outcome: a.outcome,
      error: a.error,
      durationMs: a.durationMs,
    }));
  }
}
