import { Injectable } from '@nestjs/common';

import { Clock } from '../common/clock';
import { billingKeyFor } from '../domain/billing-key';
import { isWonOrLater } from '../domain/deal-stage';
import {
  addDaysInZone,
  localDate,
  monthlySchedule,
  nextMonthlyDate,
  startOfLocalDay,
} from '../domain/calendar';
import { contractedAmount, itemTotal as planItemTotal } from '../domain/contracted-amount';
import { CONFIRMED_STATES } from '../domain/invoice-state';
import { taxOf } from '../domain/money';
import { monthlyTermsOf } from '../domain/monthly-fee';
import { newId } from '../common/ids';
import { AppConfig } from '../config/app-config';
import { BillingItem, Deal, Prisma, ReportStatus } from '../generated/prisma/client';
import { addTimeline } from '../timeline/timeline';
import { dbAmount } from '../prisma/db-amount';
import { JobName } from '../queue/job-name.enum';
import { OutboxService } from '../queue/outbox/outbox.service';
import { feeFactPrefix, owedFeeReports, toldFeeFacts } from './monthly-fee-reports';
import { StageFact } from './report-facts';
import { reportFields } from './report-fields';
import { canonicalPlatform, platformProfile } from '../domain/platforms';
import { BillingCount, ReportChannel, ReportData, ReportKind } from '../domain/report';

type Tx = Prisma.TransactionClient;

export interface ReportContext {
  cause: string;
  correlationId: string;
  eventId?: string | null;
  now?: Date;
}

/** Calendar days a manual task has before it is overdue, when the platform sets no date. */
export const MANUAL_REPORT_DAYS = 3;

/** Manual tasks whose content may still be replaced by the invoice they wait for. */
const OPEN_MANUAL: readonly ReportStatus[] = ['PENDING', 'OVERDUE', 'CORRECTION_REQUESTED'];

interface NewReport {
  kind: ReportKind;
  /** Unique for ever: the fact reported. */
  factKey: string;
  occurredAt: Date;
  data: Partial<ReportData>;
  billingKey?: string;
  amountExTax?: number;
  /** Manual queue deadline; default MANUAL_REPORT_DAYS after the fact. */
  dueAt?: Date | null;
}

const TIMING_JA: Record<string, string> = {
  'contract.signed': '契約締結時',
  'milestone.accepted': '検収後',
  'milestone.progress': '進捗に応じて',
};

/**
 * Derives the reports a referral deal owes its platform, once per fact (the report row's unique
 * fact key), inside the transaction that records the fact (the lifecycle's, with the deal row
 * locked, or the issuer's when an invoice is posted). Automatic channels get a ReportDeliver job
 * through the outbox; the manual queue gets a task with its deadline (docs/decisions/0005).
 */
@Injectable()
export class ReportService {
  constructor(
    private readonly outbox: OutboxService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  /** How a platform takes reports: its API, the generic signed webhook, or the manual queue. */
  channelFor(platform: string): ReportChannel {
    const profile = platformProfile(platform);
    if (profile.channel === 'partner-center' && this.config.partnerCenterConfigured)
      return 'partner-center';
    if (this.config.env.REFERRAL_MANUAL_PLATFORMS.some((p) => canonicalPlatform(p) === profile.id))
      return 'manual';
    if (this.config.env.REFERRAL_REPORT_WEBHOOK_URL) return 'webhook';
    return 'manual';
  }

  /**
   * The stage reports of the deal's history that were not recorded yet (a referral deal only),
   * and — for the manual queue, once won — the confirmed-amount tasks of items with an expected
   * invoice date, whose deadline is that date (報告期限).
   */
  async fromHistory(
    tx: Tx,
    deal: Deal,
    facts: readonly StageFact[],
    items: readonly BillingItem[],
    ctx: ReportContext,
  ): Promise<void> {
    if (!deal.referralPlatform || !deal.referralId || facts.length === 0) return;
    const taken = await this.takenKeys(tx, deal.id);
    for (const fact of facts) {
      const factKey = `${deal.id}|${fact.key}`;
      if (taken.has(factKey)) continue;
      await this.record(
        tx,
        deal,
        {
          kind: fact.kind,
          factKey,
          occurredAt: fact.at,
          data: await this.stageData(tx, deal, fact, items),
          amountExTax: fact.kind === 'won' ? contracted(deal, items) : undefined,
        },
        ctx,
      );
      if (fact.kind === 'won') await this.expectConfirmations(tx, deal, items, taken, ctx);
    }
  }

  /** 追加発注報告 for the items an additional order added; it starts a new confirmation cycle. */
  async additionalOrder(
    tx: Tx,
    deal: Deal,
    description: string,
    keys: readonly string[],
    at: Date,
    ctx: ReportContext,
  ): Promise<void> {
    if (!deal.referralPlatform || !deal.referralId || keys.length === 0) return;
    const items = await tx.billingItem.findMany({
      where: { dealId: deal.id, key: { in: [...keys] } },
      orderBy: { position: 'asc' },
    });
    const amount = items.reduce((sum, i) => sum + itemTotal(i), 0);
    await this.record(
      tx,
      deal,
      {
        kind: 'additional_order',
        factKey: `${deal.id}|additional_order|${[...keys].sort().join(',')}`,
        occurredAt: at,
        amountExTax: amount,
        data: {
          amountExTax: amount,
          taxAmount: taxOf(amount, items[0]?.taxRatePercent ?? 0),
          currency: deal.currency,
          orderDescription: description,
          billingTiming: billingTiming(items),
          items: items.map((i) => ({ key: i.key, label: i.label, amountExTax: itemTotal(i) })),
        },
      },
      ctx,
    );
    if (isWonOrLater(deal.stage)) {
      await this.expectConfirmations(tx, deal, items, await this.takenKeys(tx, deal.id), ctx);
    }
  }

  /**
   * 確定報告 for an invoice the hub finalized and sent (CONTRACT §5): amount excl. tax, tax, the
   * Stripe number, issue date, next expected invoice date and the hosted / PDF URLs. Once per
   * billing key; once per item for monthly_fixed plans (reported once, billed monthly).
   */
  async confirmed(tx: Tx, billingKey: string, ctx: ReportContext): Promise<void> {
    const invoice = await tx.invoice.findUnique({ where: { billingKey } });
    if (!invoice || !CONFIRMED_STATES.includes(invoice.state)) return;
    const deal = await tx.deal.findUniqueOrThrow({ where: { id: invoice.dealId } });
    if (!deal.referralPlatform || !deal.referralId) return;
    const items = await tx.billingItem.findMany({
      where: { dealId: deal.id, removed: false },
      orderBy: { position: 'asc' },
    });
    const item = items.find((i) => i.key === invoice.itemKey);
    const billingCount = billingCountOf(deal);
    const monthlyFixed = billingCount === 'monthly_fixed' && item?.trigger === 'monthly';
    const factKey = monthlyFixed
      ? `${deal.id}|confirmed_amount|${invoice.itemKey}`
      : `${deal.id}|confirmed_amount|${invoice.billingKey}`;
    const zone = this.config.timeZoneOf(deal);
    const issuedAt = invoice.postedAt ?? ctx.now ?? this.clock.now();
    const issueDate = localDate(issuedAt, zone);
    const amountExTax = dbAmount(invoice.amount);
    const data: Partial<ReportData> = {
      amountExTax,
      taxAmount: dbAmount(invoice.taxAmount),
      currency: invoice.currency,
      billingCount,
      itemKey: invoice.itemKey,
      orderDescription: invoice.description,
      invoiceNumber: invoice.invoiceNumber ?? undefined,
      issueDate,
      nextInvoiceDate: await this.nextInvoiceDate(tx, deal, items, invoice.itemKey, issuedAt),
      hostedInvoiceUrl: invoice.hostedInvoiceUrl ?? undefined,
      invoicePdfUrl: invoice.invoicePdfUrl ?? undefined,
    };
    const expected = await tx.report.findUnique({ where: { factKey } });
    if (expected) {
      // A manual task created when the deal was won (waiting for this invoice) gets its content.
      if (expected.billingKey || !OPEN_MANUAL.includes(expected.status)) return;
      const full = { ...(expected.data as unknown as ReportData), ...definedOnly(data) };
      await tx.report.update({
        where: { id: expected.id },
        data: {
          billingKey: invoice.billingKey,
          amountExTax,
          data: full as unknown as Prisma.InputJsonValue,
          fields: reportFields(full, zone) as unknown as Prisma.InputJsonValue,
        },
      });
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'report',
        message: `confirmed_amount task ${expected.id} now carries invoice ${invoice.invoiceNumber ?? invoice.billingKey}: ready to report`,
        cause: ctx.cause,
        eventId: ctx.eventId,
        details: { reportId: expected.id, billingKey: invoice.billingKey },
      });
      return;
    }
    await this.record(
      tx,
      deal,
      {
        kind: 'confirmed_amount',
        factKey,
        occurredAt: issuedAt,
        data,
        billingKey: invoice.billingKey,
        amountExTax,
      },
      ctx,
    );
  }

  /**
   * A monthly_fixed fee's changes and early end (CONTRACT §4, §5): one confirmed-amount report per
   * change — the new monthly amount and the month it applies from (`effectiveMonth`) — and one per
   * end — the last month billed (`endMonth`) — once each, from the fee's first confirmed amount on
   * (its first month invoiced and sent: the platform knows the fee). Recorded in the transaction
   * that applies the plan (the settle step after it) or that confirms the fee's first invoice. The
   * same plan again reports nothing; a change whose month is given another amount (or dropped:
   * the month then bills the amount in force before it), or an end moved or withdrawn, is reported
   * again, under the next sequence number (`…|change|2027-03|2`).
   * Fact keys: `<dealId>|confirmed_amount|<itemKey>|change|<fromMonth>[|n]` and `…|end|<endMonth>[|n]`.
   */
  async monthlyFeeChanges(
    tx: Tx,
    dealOrId: Deal | string,
    items: readonly BillingItem[] | undefined,
    ctx: ReportContext,
  ): Promise<void> {
    if (typeof dealOrId !== 'string' && (!dealOrId.referralId || !dealOrId.referralPlatform)) {
      return;
    }
    if (typeof dealOrId !== 'string' && billingCountOf(dealOrId) !== 'monthly_fixed') return;
    const dealId = typeof dealOrId === 'string' ? dealOrId : dealOrId.id;
    const fees = (
      items ??
      (await tx.billingItem.findMany({
        where: { dealId, trigger: 'monthly', removed: false },
        orderBy: { position: 'asc' },
      }))
    ).filter((i) => i.trigger === 'monthly' && !i.removed);
    if (fees.length === 0) return;
    const deal =
      typeof dealOrId === 'string'
        ? await tx.deal.findUniqueOrThrow({ where: { id: dealId } })
        : dealOrId;
    if (!deal.referralPlatform || !deal.referralId || billingCountOf(deal) !== 'monthly_fixed') {
      return;
    }
    const confirmed = new Set(
      (
        await tx.invoice.findMany({
          where: {
            dealId,
            itemKey: { in: fees.map((f) => f.key) },
            state: { in: [...CONFIRMED_STATES] },
          },
          select: { itemKey: true },
        })
      ).map((i) => i.itemKey),
    );
    if (confirmed.size === 0) return;
    const reported = (
      await tx.report.findMany({
        where: { dealId, factKey: { startsWith: `${dealId}|confirmed_amount|` } },
        select: { factKey: true, amountExTax: true },
      })
    ).map((r) => ({ factKey: r.factKey, amountExTax: dbAmount(r.amountExTax) }));
    const zone = this.config.timeZoneOf(deal);
    for (const item of fees.filter((f) => confirmed.has(f.key))) {
      const terms = monthlyTermsOf({ ...item, amount: dbAmount(item.amount) });
      if (!terms) continue;
      const prefix = feeFactPrefix(dealId, item.key);
      const owed = owedFeeReports(terms, toldFeeFacts(prefix, reported));
      const schedule = monthlySchedule({ startOn: terms.startOn, months: terms.months }, zone);
      for (const r of owed) {
        await this.record(
          tx,
          deal,
          {
            kind: 'confirmed_amount',
            factKey: `${prefix}${r.key}`,
            occurredAt: ctx.now ?? this.clock.now(),
            // A change states a new amount (reconciliation's reported leg); an end states none.
            amountExTax: r.kind === 'change' ? r.amount : undefined,
            data: {
              amountExTax: r.amount,
              taxAmount: taxOf(r.amount, item.taxRatePercent),
              currency: deal.currency,
              billingCount: 'monthly_fixed',
              itemKey: item.key,
              orderDescription: `${item.label} — ${deal.name}`,
              // The billing day of the first invoice at the new amount, or of the last invoice.
              issueDate: schedule.find((p) => p.period === r.month)?.billingDate,
              ...(r.kind === 'change' ? { effectiveMonth: r.month } : { endMonth: r.month }),
            },
          },
          ctx,
        );
      }
    }
  }

  // ---- internals ------------------------------------------------------------------------------

  private async takenKeys(tx: Tx, dealId: string): Promise<Set<string>> {
    const rows = await tx.report.findMany({ where: { dealId }, select: { factKey: true } });
    return new Set(rows.map((r) => r.factKey));
  }

  /**
   * Manual queue only: one confirmed-amount task per one-off item with an expected invoice date,
   * due that day, keyed like the report its invoice will produce (so the invoice fills it in).
   */
  private async expectConfirmations(
    tx: Tx,
    deal: Deal,
    items: readonly BillingItem[],
    taken: Set<string>,
    ctx: ReportContext,
  ): Promise<void> {
    if (this.channelFor(deal.referralPlatform!) !== 'manual') return;
    const zone = this.config.timeZoneOf(deal);
    for (const item of items) {
      const amount = dbAmount(item.amount);
      if (!item.expectedInvoiceDate || item.removed || amount <= 0) continue;
      if (item.trigger !== 'contract.signed' && item.trigger !== 'milestone.accepted') continue;
      const factKey = `${deal.id}|confirmed_amount|${billingKeyFor(deal.id, item.key)}`;
      if (taken.has(factKey)) continue;
      const due = startOfLocalDay(item.expectedInvoiceDate, zone);
      await this.record(
        tx,
        deal,
        {
          kind: 'confirmed_amount',
          factKey,
          occurredAt: ctx.now ?? this.clock.now(),
          amountExTax: amount,
          dueAt: addDaysInZone(due, 1, zone),
          data: {
            amountExTax: amount,
            taxAmount: taxOf(amount, item.taxRatePercent),
            currency: deal.currency,
            billingCount: billingCountOf(deal),
            itemKey: item.key,
            orderDescription: `${item.label} — ${deal.name}`,
            issueDate: item.expectedInvoiceDate,
          },
        },
        ctx,
      );
    }
  }

  private async stageData(
    tx: Tx,
    deal: Deal,
    fact: StageFact,
    items: readonly BillingItem[],
  ): Promise<Partial<ReportData>> {
    const date = localDate(fact.at, this.config.timeZoneOf(deal));
    switch (fact.kind) {
      case 'appointment':
        return { appointmentDate: date };
      case 'won': {
        const amount = contracted(deal, items);
        return {
          amountExTax: amount,
          taxAmount: taxOf(amount, taxRateOf(deal, items)),
          currency: deal.currency,
          billingCount: billingCountOf(deal),
          orderDescription: orderDescription(deal, items),
          billingTiming: billingTiming(items),
        };
      }
      case 'lost':
        return { date, reason: LOSS_REASON[fact.cause ?? ''] ?? fact.cause };
      case 'lost_withdrawn':
        return { date, reason: RESUME_REASON[fact.cause ?? ''] ?? fact.cause };
      case 'declined': {
        const referral = await tx.referral.findUnique({ where: { dealId: deal.id } });
        return { date, reason: referral?.declineReason ?? undefined };
      }
      case 'delivered':
        return { deliveredOn: deal.deliveredOn ?? date };
    }
  }

  /** 次回請求書発行日: the earliest expected date of what the plan still has to bill. */
  private async nextInvoiceDate(
    tx: Tx,
    deal: Deal,
    items: readonly BillingItem[],
    itemKey: string,
    after: Date,
  ): Promise<string | undefined> {
    const zone = this.config.timeZoneOf(deal);
    const today = localDate(after, zone);
    const billed = new Set(
      (
        await tx.invoice.findMany({
          where: { dealId: deal.id, period: null },
          select: { itemKey: true },
        })
      ).map((i) => i.itemKey),
    );
    const dates: string[] = [];
    for (const item of items) {
      if (item.trigger === 'monthly' && item.startOn && item.months) {
        const next = nextMonthlyDate(
          { startOn: item.startOn, months: item.months, endMonth: item.endMonth },
          after,
          zone,
        );
        if (next) dates.push(next.billingDate);
      } else if (
        item.key !== itemKey &&
        item.expectedInvoiceDate &&
        item.expectedInvoiceDate >= today &&
        !billed.has(item.key)
      ) {
        dates.push(item.expectedInvoiceDate);
      }
    }
    return dates.sort()[0];
  }

  /** Inserts the report unless its fact was reported before; queues its delivery. */
  private async record(tx: Tx, deal: Deal, r: NewReport, ctx: ReportContext): Promise<boolean> {
    const platform = deal.referralPlatform!;
    const channel = this.channelFor(platform);
    const zone = this.config.timeZoneOf(deal);
    const id = newId('rpt');
    const data = definedOnly({
      reportId: id,
      kind: r.kind,
      platform,
      referralId: deal.referralId ?? undefined,
      dealId: deal.id,
      crmDealId: deal.crmDealId ?? undefined,
      occurredAt: r.occurredAt.toISOString(),
      dealName: deal.name,
      customerName: deal.companyName ?? deal.customerName ?? undefined,
      ...r.data,
    }) as ReportData;
    const dueAt =
      channel !== 'manual'
        ? null
        : r.dueAt !== undefined
          ? r.dueAt
          : startOfLocalDay(
              localDate(addDaysInZone(r.occurredAt, MANUAL_REPORT_DAYS + 1, zone), zone),
              zone,
            );
    const { count } = await tx.report.createMany({
      data: [
        {
          id,
          factKey: r.factKey,
          dealId: deal.id,
          kind: r.kind,
          platform,
          referralId: deal.referralId,
          channel,
          data: data as unknown as Prisma.InputJsonValue,
          fields: reportFields(data, zone) as unknown as Prisma.InputJsonValue,
          occurredAt: r.occurredAt,
          dueAt,
          billingKey: r.billingKey ?? null,
          amountExTax: r.amountExTax ?? null,
        },
      ],
      skipDuplicates: true,
    });
    if (count === 0) return false;
    if (channel !== 'manual') {
      await this.outbox.enqueue(tx, JobName.ReportDeliver, `report|${id}`, {
        correlationId: ctx.correlationId,
        reportId: id,
        dealId: deal.id,
      });
    }
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'report',
      message:
        channel === 'manual'
          ? `${r.kind} report for ${platform} added to the manual queue${dueAt ? `, due ${dueAt.toISOString()}` : ''}`
          : `${r.kind} report for ${platform} queued (${channel})`,
      cause: ctx.cause,
      eventId: ctx.eventId,
      details: { reportId: id, factKey: r.factKey, channel },
    });
    return true;
  }
}

const LOSS_REASON: Record<string, string> = {
  'crm.stage': 'CRM stage set to lost',
  'envelope.declined': 'the customer declined the contract (DocuSign)',
  'envelope.voided': 'the contract envelope was voided (DocuSign)',
};

const RESUME_REASON: Record<string, string> = {
  'crm.stage': 'talks resumed (CRM stage reopened)',
  'envelope.completed': 'the customer signed the contract',
  'envelope.sent': 'a contract was sent',
};

function billingCountOf(deal: Pick<Deal, 'billingPlan'>): BillingCount {
  const count = (deal.billingPlan as { billingCount?: BillingCount } | null)?.billingCount;
  return count ?? 'one_time';
}

function taxRateOf(deal: Pick<Deal, 'billingPlan'>, items: readonly BillingItem[]): number {
  const rate = (deal.billingPlan as { taxRatePercent?: number } | null)?.taxRatePercent;
  return rate ?? items[0]?.taxRatePercent ?? 0;
}

/** What an item bills in total (a monthly item: every month, changes and an early end included). */
function itemTotal(
  item: Pick<
    BillingItem,
    'trigger' | 'amount' | 'startOn' | 'months' | 'monthlyChanges' | 'endMonth'
  >,
): number {
  return planItemTotal({ ...item, amount: dbAmount(item.amount) });
}

/** The contracted amount excl. tax (the domain's one rule): the deal amount, else what the plan adds up to. */
function contracted(deal: Pick<Deal, 'amount'>, items: readonly BillingItem[]): number {
  return contractedAmount(
    dbAmount(deal.amount),
    items.map((i) => ({ ...i, amount: dbAmount(i.amount) })),
  );
}

function orderDescription(deal: Pick<Deal, 'name'>, items: readonly BillingItem[]): string {
  const labels = items.filter((i) => i.addedBy !== 'order.additional').map((i) => i.label);
  return labels.length > 0 ? `${deal.name}（${labels.join('、')}）` : deal.name;
}

/** 請求タイミング in the platform's words, item by item. */
function billingTiming(items: readonly BillingItem[]): string {
  return items
    .map((i) => {
      if (i.trigger === 'monthly') return `${i.label}: 毎月（${i.startOn} から ${i.months} か月）`;
      const when = TIMING_JA[i.trigger] ?? i.trigger;
      return `${i.label}: ${when}${i.expectedInvoiceDate ? `（${i.expectedInvoiceDate} 予定）` : ''}`;
    })
    .join(' / ');
}

function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
