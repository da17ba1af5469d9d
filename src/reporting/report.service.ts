import { Injectable } from '@nestjs/common';

import { Clock } from '../common/clock';
import { billingKeyFor } from '../domain/billing-key';
import { PlannedItem, invoiceCount } from '../domain/billing-count';
import { isWonOrLater } from '../domain/deal-stage';
import { addDaysInZone, localDate, startOfLocalDay } from '../domain/calendar';
import { CONFIRMED_STATES, missingInvoiceFacts } from '../domain/invoice-state';
import { taxOf } from '../domain/money';
import { newId } from '../common/ids';
import { AppConfig } from '../config/app-config';
import { BillingItem, Deal, Invoice, Prisma, ReportStatus } from '../generated/prisma/client';
import { addTimeline } from '../timeline/timeline';
import { dbAmount } from '../prisma/db-amount';
import { JobName } from '../queue/job-name.enum';
import { OutboxService } from '../queue/outbox/outbox.service';
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
    const zone = this.config.timeZoneOf(deal);
    const data = await this.confirmedData(tx, invoice, deal, items, ctx.now ?? this.clock.now());
    const issuedAt = invoice.postedAt ?? ctx.now ?? this.clock.now();
    const amountExTax = dbAmount(invoice.amount);
    // A fixed monthly fee is reported once per item (its changes and end on their own).
    const factKey =
      data.billingCount === 'monthly_fixed'
        ? `${deal.id}|confirmed_amount|${invoice.itemKey}`
        : `${deal.id}|confirmed_amount|${invoice.billingKey}`;
    const expected = await tx.report.findUnique({ where: { factKey } });
    if (expected) {
      // A manual task created when the deal was won (waiting for this invoice) gets its content.
      if (expected.billingKey || !OPEN_MANUAL.includes(expected.status)) return;
      const full = withConfirmed(expected.data as unknown as ReportData, data);
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
      await this.completeLater(tx, expected.id, deal.id, invoice, ctx);
      return;
    }
    const recorded = await this.record(
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
    if (recorded && this.channelFor(deal.referralPlatform) === 'manual') {
      const row = await tx.report.findUniqueOrThrow({ where: { factKey }, select: { id: true } });
      await this.completeLater(tx, row.id, deal.id, invoice, ctx);
    }
  }

  /**
   * A confirmed amount's content from its invoice as the hub knows it now (CONTRACT §5): amount
   * excl. tax and the invoice's tax (its own once the invoicing system gave it), the number, issue
   * date, URLs, order description; 請求回数 and 次回請求書発行日 decided for this invoice from the
   * deal's items and invoices (src/domain/billing-count.ts); the signed contract's URLs when the
   * contract is completed. Built when the invoice is confirmed and again when the report is
   * delivered (ReportRefresher), so it states the facts known then.
   */
  async confirmedData(
    tx: Tx,
    invoice: Invoice,
    deal: Deal,
    items: readonly BillingItem[],
    now: Date,
  ): Promise<Partial<ReportData>> {
    const zone = this.config.timeZoneOf(deal);
    const issueDate = localDate(invoice.postedAt ?? now, zone);
    const count = invoiceCount({
      plan: billingCountOf(deal),
      items: items.map(plannedItem),
      invoices: await this.placedInvoices(tx, deal.id),
      itemKey: invoice.itemKey,
      invoice,
      today: issueDate,
      timeZone: zone,
    });
    return {
      amountExTax: dbAmount(invoice.amount),
      taxAmount: dbAmount(invoice.taxAmount),
      currency: invoice.currency,
      billingCount: count.billingCount,
      itemKey: invoice.itemKey,
      orderDescription: invoice.description,
      invoiceNumber: invoice.invoiceNumber ?? undefined,
      issueDate,
      nextInvoiceDate: count.nextInvoiceDate,
      hostedInvoiceUrl: invoice.hostedInvoiceUrl ?? undefined,
      invoicePdfUrl: invoice.invoicePdfUrl ?? undefined,
      ...(await this.contractUrls(tx, deal.id)),
    };
  }

  // ---- internals ------------------------------------------------------------------------------

  private async takenKeys(tx: Tx, dealId: string): Promise<Set<string>> {
    const rows = await tx.report.findMany({ where: { dealId }, select: { factKey: true } });
    return new Set(rows.map((r) => r.factKey));
  }

  private placedInvoices(tx: Tx, dealId: string) {
    return tx.invoice.findMany({
      where: { dealId },
      select: { id: true, itemKey: true, period: true, createdAt: true },
    });
  }

  /**
   * The signed contract as PRONI アイミツ takes it in place of an invoice: the hub's URLs of the
   * DocuSign combined PDF (with its certificate of completion) and of the certificate, once the
   * contract is completed.
   */
  private async contractUrls(
    tx: Tx,
    dealId: string,
  ): Promise<Pick<ReportData, 'contractDocumentUrl' | 'contractCertificateUrl'>> {
    const contract = await tx.contract.findUnique({
      where: { dealId },
      select: { status: true },
    });
    if (contract?.status !== 'COMPLETED') return {};
    const deal = `${this.config.publicBaseUrl}/api/deals/${encodeURIComponent(dealId)}/contract`;
    return {
      contractDocumentUrl: `${deal}/document`,
      contractCertificateUrl: `${deal}/certificate`,
    };
  }

  /**
   * A manual task whose invoice still lacks its number, URLs or own tax (its invoicing system's
   * answer was lost and an event told the hub instead): a ReportDeliver job completes the invoice
   * row from the invoicing system and rebuilds the task (ReportDeliverHandler, ReportRefresher).
   */
  private async completeLater(
    tx: Tx,
    reportId: string,
    dealId: string,
    invoice: Invoice,
    ctx: ReportContext,
  ): Promise<void> {
    if (missingInvoiceFacts(invoice).length === 0) return;
    await this.outbox.enqueue(tx, JobName.ReportDeliver, `report|${reportId}`, {
      correlationId: ctx.correlationId,
      reportId,
      dealId,
    });
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
    const invoices = await this.placedInvoices(tx, deal.id);
    const contract = await this.contractUrls(tx, deal.id);
    for (const item of items) {
      const amount = dbAmount(item.amount);
      if (!item.expectedInvoiceDate || item.removed || amount <= 0) continue;
      if (item.trigger !== 'contract.signed' && item.trigger !== 'milestone.accepted') continue;
      const factKey = `${deal.id}|confirmed_amount|${billingKeyFor(deal.id, item.key)}`;
      if (taken.has(factKey)) continue;
      const due = startOfLocalDay(item.expectedInvoiceDate, zone);
      const now = ctx.now ?? this.clock.now();
      // Decided from the plan's remaining items until the invoice exists (it refreshes the task).
      const count = invoiceCount({
        plan: billingCountOf(deal),
        items: items.map(plannedItem),
        invoices,
        itemKey: item.key,
        today: localDate(now, zone),
        timeZone: zone,
      });
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
            billingCount: count.billingCount,
            itemKey: item.key,
            orderDescription: `${item.label} — ${deal.name}`,
            issueDate: item.expectedInvoiceDate,
            nextInvoiceDate: count.nextInvoiceDate,
            ...contract,
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
        return {
          date,
          reason: LOSS_REASON[fact.cause ?? ''] ?? fact.cause,
          lostStage: fact.lostStage,
        };
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

/** The plan's billingCount (CONTRACT §4): the won report's, and whether monthly items are fixed. */
function billingCountOf(deal: Pick<Deal, 'billingPlan'>): BillingCount {
  const count = (deal.billingPlan as { billingCount?: BillingCount } | null)?.billingCount;
  return count ?? 'one_time';
}

function plannedItem(item: BillingItem): PlannedItem {
  return {
    key: item.key,
    trigger: item.trigger,
    amount: dbAmount(item.amount),
    removed: item.removed,
    expectedInvoiceDate: item.expectedInvoiceDate,
    startOn: item.startOn,
    months: item.months,
    endMonth: item.endMonth,
  };
}

function taxRateOf(deal: Pick<Deal, 'billingPlan'>, items: readonly BillingItem[]): number {
  const rate = (deal.billingPlan as { taxRatePercent?: number } | null)?.taxRatePercent;
  return rate ?? items[0]?.taxRatePercent ?? 0;
}

/** What an item bills in total (a monthly item: every month). */
function itemTotal(item: Pick<BillingItem, 'trigger' | 'amount' | 'months'>): number {
  const amount = dbAmount(item.amount);
  return item.trigger === 'monthly' ? amount * (item.months ?? 0) : amount;
}

/** The contracted amount excl. tax: the deal amount, else what the original plan adds up to. */
function contracted(deal: Pick<Deal, 'amount'>, items: readonly BillingItem[]): number {
  const amount = dbAmount(deal.amount);
  if (amount !== null && amount > 0) return amount;
  return items
    .filter((i) => i.addedBy !== 'order.additional')
    .reduce((s, i) => s + itemTotal(i), 0);
}

function orderDescription(deal: Pick<Deal, 'name'>, items: readonly BillingItem[]): string {
  const labels = items.filter((i) => i.addedBy !== 'order.additional').map((i) => i.label);
  return labels.length > 0 ? `${deal.name}（${labels.join('、')}）` : deal.name;
}

/** 請求時期 in the platform's words, item by item. */
function billingTiming(items: readonly BillingItem[]): string {
  return items
    .map((i) => {
      if (i.trigger === 'monthly') return `${i.label}: 毎月（${i.startOn} から ${i.months} か月）`;
      const when = TIMING_JA[i.trigger] ?? i.trigger;
      return `${i.label}: ${when}${i.expectedInvoiceDate ? `（${i.expectedInvoiceDate} 予定）` : ''}`;
    })
    .join(' / ');
}

/** What confirmedData builds: replaced as a whole when a confirmed amount is rebuilt. */
const CONFIRMED_CONTENT: readonly (keyof ReportData)[] = [
  'amountExTax',
  'taxAmount',
  'currency',
  'billingCount',
  'itemKey',
  'orderDescription',
  'invoiceNumber',
  'issueDate',
  'nextInvoiceDate',
  'hostedInvoiceUrl',
  'invoicePdfUrl',
  'contractDocumentUrl',
  'contractCertificateUrl',
];

/** A confirmed amount's data with its content rebuilt (a value no longer known is dropped). */
export function withConfirmed(data: ReportData, content: Partial<ReportData>): ReportData {
  const base = Object.fromEntries(
    Object.entries(data).filter(([k]) => !CONFIRMED_CONTENT.includes(k as keyof ReportData)),
  );
  return definedOnly({ ...base, ...content }) as ReportData;
}

function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
