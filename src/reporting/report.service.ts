import { Injectable } from '@nestjs/common';

import { Clock } from '../common/clock';
import { PlannedItem, invoiceCount } from '../domain/billing-count';
import { WON_STAGES, isWonOrLater } from '../domain/deal-stage';
import { addDaysInZone, localDate, monthlySchedule, startOfLocalDay } from '../domain/calendar';
import { contractedAmount, itemTotal as planItemTotal } from '../domain/contracted-amount';
import { CONFIRMED_STATES, missingInvoiceFacts } from '../domain/invoice-state';
import { taxOf } from '../domain/money';
import { monthlyTermsOf } from '../domain/monthly-fee';
import { newId } from '../common/ids';
import { AppConfig } from '../config/app-config';
import {
  BillingItem,
  Deal,
  Invoice,
  Prisma,
  Referral,
  Report,
  ReportStatus,
} from '../generated/prisma/client';
import { addTimeline } from '../timeline/timeline';
import { dbAmount } from '../prisma/db-amount';
import { JobName } from '../queue/job-name.enum';
import { OutboxService } from '../queue/outbox/outbox.service';
import {
  ConfirmationSlot,
  SlotContext,
  SlotInvoice,
  SlotItem,
  firstSlot,
  nextSlot,
  plannedDate,
  progressStepKey,
  progressStepOf,
} from './confirmation-cycle';
import { DELIVERED_STATUSES } from './manual-report.transitions';
import { feeFactPrefix, owedFeeReports, toldFeeFacts } from './monthly-fee-reports';
import { StageFact } from './report-facts';
import { reportFields } from './report-fields';
import { canonicalPlatform, platformProfile } from '../domain/platforms';
import {
  BillingCount,
  CLOSING_REPORT,
  REFERRAL_ANSWER_KINDS,
  REFERRAL_CLOSED_STATES,
  ReportChannel,
  ReportData,
  ReportKind,
} from '../domain/report';

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
   * and — for the manual queue, once won — the confirmed-amount task of every billable item, due
   * on its planned invoice date (報告期限; see confirmation-cycle.ts). A platform that takes 納品報告
   * only after a 確定報告 gets the delivered report once one is in its hands (see reviewed()).
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
      if (fact.kind === 'delivered' && !(await this.deliveryReportable(tx, deal))) continue;
      await this.recordFact(tx, deal, fact, items, ctx);
      if (fact.kind === 'won') await this.expectConfirmations(tx, deal, items, ctx);
    }
  }

  /**
   * A confirmed-amount report of the manual queue changed status by hand (the platform's review):
   * approved (報告済み), the next cycle's task of what is still planned (confirmation-cycle.ts);
   * in the platform's hands and the deal delivered, the 納品報告 it was waiting for.
   */
  async reviewed(
    tx: Tx,
    deal: Deal,
    report: Pick<Report, 'kind' | 'factKey' | 'billingKey' | 'data'>,
    change: { from: ReportStatus; to: ReportStatus },
    ctx: ReportContext,
  ): Promise<void> {
    if (report.kind !== 'confirmed_amount' || !deal.referralPlatform || !deal.referralId) return;
    if (change.to === 'REPORTED' && change.from !== 'REPORTED') {
      await this.nextCycle(tx, deal, report, ctx);
    }
    if (
      DELIVERED_STATUSES.includes(change.to) &&
      (deal.stage === 'DELIVERED' || deal.stage === 'CLOSED') &&
      platformProfile(deal.referralPlatform).deliveredAfterConfirmed &&
      this.channelFor(deal.referralPlatform) === 'manual'
    ) {
      const at = deal.deliveredAt ?? ctx.now ?? this.clock.now();
      await this.recordFact(tx, deal, { kind: 'delivered', key: 'delivered', at }, [], ctx);
    }
  }

  /**
   * The operator moved a confirmed-amount item's expected invoice date (まだ未定: 請求予定日が変更):
   * the dates derived from the plan follow — the planned issue date of the tasks still waiting
   * for their invoice, and 次回請求書発行日 of the confirmed reports not entered yet.
   */
  async plannedDatesChanged(tx: Tx, deal: Deal): Promise<void> {
    const zone = this.config.timeZoneOf(deal);
    const open = await tx.report.findMany({
      where: { dealId: deal.id, kind: 'confirmed_amount', status: { in: [...OPEN_MANUAL] } },
    });
    if (open.length === 0) return;
    const items = await tx.billingItem.findMany({
      where: { dealId: deal.id, removed: false },
      orderBy: { position: 'asc' },
    });
    const invoices = await tx.invoice.findMany({
      where: { dealId: deal.id },
      select: {
        id: true,
        billingKey: true,
        itemKey: true,
        period: true,
        rebill: true,
        postedAt: true,
        createdAt: true,
      },
    });
    for (const report of open) {
      const data = report.data as unknown as ReportData;
      const item = items.find((i) => i.key === data.itemKey);
      let next: ReportData;
      if (!report.billingKey) {
        if (!item || item.trigger === 'monthly') continue;
        const mine = invoices.filter((i) => i.itemKey === item.key);
        const date = plannedDate(slotItem(item), mine, zone);
        if (date === data.issueDate) continue;
        next = { ...data, issueDate: date };
      } else {
        const invoice = invoices.find((i) => i.billingKey === report.billingKey);
        const date = invoiceCount({
          plan: billingCountOf(deal),
          items: items.map(plannedItem),
          invoices,
          itemKey: data.itemKey ?? '',
          invoice,
          today: localDate(invoice?.postedAt ?? report.occurredAt, zone),
          timeZone: zone,
        }).nextInvoiceDate;
        if (date === data.nextInvoiceDate) continue;
        next = { ...data, nextInvoiceDate: date };
      }
      const clean = definedOnly(next);
      await tx.report.update({
        where: { id: report.id },
        data: {
          data: clean as unknown as Prisma.InputJsonValue,
          fields: reportFields(clean, zone) as unknown as Prisma.InputJsonValue,
        },
      });
    }
  }

  /**
   * A proposed loss was confirmed and the deal is LOST: the manual tasks it made moot leave the
   * queue as NOT_APPLICABLE — the confirmed-amount tasks still waiting for an invoice (none will
   * come: no amount is confirmed and nothing is entered on the platform; the platform heard of
   * the loss through まだ未定 and hears it again in the lost report) and any task postponed as
   * lost. Returns their ids.
   */
  async lossConfirmed(tx: Tx, deal: Deal, ctx: ReportContext): Promise<string[]> {
    const now = ctx.now ?? this.clock.now();
    const owed: ReportStatus[] = ['PENDING', 'OVERDUE'];
    const where: Prisma.ReportWhereInput = {
      dealId: deal.id,
      channel: 'manual',
      status: { in: owed },
      OR: [{ kind: 'confirmed_amount', billingKey: null }, { postponeReason: 'lost' }],
    };
    const tasks = await tx.report.findMany({ where, select: { id: true }, orderBy: { id: 'asc' } });
    if (tasks.length === 0) return [];
    await tx.report.updateMany({
      where: { ...where, id: { in: tasks.map((t) => t.id) } },
      data: { status: 'NOT_APPLICABLE', dueAt: null, updatedAt: now },
    });
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'report',
      message: `the deal is lost: ${tasks.length} manual task(s) waiting for an invoice or postponed as lost are not owed any more (NOT_APPLICABLE)`,
      cause: ctx.cause,
      eventId: ctx.eventId,
      details: { reportIds: tasks.map((t) => t.id) },
    });
    return tasks.map((t) => t.id);
  }

  /**
   * A proposed loss was dismissed: the tasks postponed as lost (まだ未定 → 失注) are owed again,
   * due as before (their planned invoice date, else MANUAL_REPORT_DAYS after the fact). Returns
   * their ids.
   */
  async lossDismissed(tx: Tx, deal: Deal, now: Date): Promise<string[]> {
    const zone = this.config.timeZoneOf(deal);
    const waiting = await tx.report.findMany({
      where: { dealId: deal.id, channel: 'manual', status: 'PENDING', postponeReason: 'lost' },
    });
    for (const report of waiting) {
      const data = report.data as unknown as ReportData;
      const dueAt =
        report.kind === 'confirmed_amount' && !report.billingKey
          ? data.issueDate
            ? addDaysInZone(startOfLocalDay(data.issueDate, zone), 1, zone)
            : null
          : defaultDue(
              data.issueDate ? startOfLocalDay(data.issueDate, zone) : report.occurredAt,
              zone,
            );
      await tx.report.update({
        where: { id: report.id },
        data: { dueAt, postponeReason: null, updatedAt: now },
      });
    }
    return waiting.map((r) => r.id);
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
    if (isWonOrLater(deal.stage)) await this.expectConfirmations(tx, deal, items, ctx);
  }

  /**
   * The vendor is evaluating the referral (Partner Center's "interested": New/Received), once per
   * deal; recorded only for a platform that takes it (its profile's reportKinds).
   */
  async inEvaluation(tx: Tx, deal: Deal, at: Date, ctx: ReportContext): Promise<void> {
    if (!deal.referralPlatform || !deal.referralId) return;
    await this.record(
      tx,
      deal,
      {
        kind: 'in_evaluation',
        factKey: `${deal.id}|in_evaluation`,
        occurredAt: at,
        data: { date: localDate(at, this.config.timeZoneOf(deal)) },
      },
      ctx,
    );
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
    const data = await this.confirmedData(tx, invoice, deal, items, ctx.now ?? this.clock.now());
    // A fixed monthly fee is reported once per item (its changes and end on their own).
    const factKey =
      data.billingCount === 'monthly_fixed'
        ? `${deal.id}|confirmed_amount|${invoice.itemKey}`
        : `${deal.id}|confirmed_amount|${invoice.billingKey}`;
    const zone = this.config.timeZoneOf(deal);
    const issuedAt = invoice.postedAt ?? ctx.now ?? this.clock.now();
    const amountExTax = dbAmount(invoice.amount);
    const fill = { invoice, data, amountExTax, issuedAt, zone };
    const expected =
      (await tx.report.findUnique({ where: { factKey } })) ??
      (item?.trigger === 'milestone.progress' ? await this.progressSlot(tx, deal, invoice) : null);
    if (expected) {
      await this.fillTask(tx, deal, expected, fill, ctx);
      return this.completeLater(tx, expected.id, invoice, ctx);
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
    const row = await tx.report.findUnique({ where: { factKey } });
    // The next cycle's task for this invoice was created meanwhile (an approval): fill it in.
    if (!recorded && row) await this.fillTask(tx, deal, row, fill, ctx);
    if (row) await this.completeLater(tx, row.id, invoice, ctx);
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
   * A manual task now carrying an invoice that still lacks its number, URLs or own tax (the
   * invoicing system's answer was lost and an event told the hub instead): a ReportDeliver job
   * completes the invoice row from the invoicing system and rebuilds the task
   * (ReportDeliverHandler, ReportRefresher). Automatic channels rebuild at delivery anyway.
   */
  private async completeLater(
    tx: Tx,
    reportId: string,
    invoice: Invoice,
    ctx: ReportContext,
  ): Promise<void> {
    if (missingInvoiceFacts(invoice).length === 0) return;
    const report = await tx.report.findUnique({
      where: { id: reportId },
      select: { channel: true, status: true, billingKey: true, dealId: true },
    });
    if (
      report?.channel !== 'manual' ||
      report.billingKey !== invoice.billingKey ||
      !(['PENDING', 'OVERDUE'] as ReportStatus[]).includes(report.status)
    ) {
      return;
    }
    await this.outbox.enqueue(tx, JobName.ReportDeliver, `report|${reportId}`, {
      correlationId: ctx.correlationId,
      reportId,
      dealId: report.dealId,
    });
  }

  /**
   * A manual task created ahead of its invoice (from WON, or the next cycle's) gets the invoice's
   * content; a task without a deadline is due MANUAL_REPORT_DAYS after the invoice (CONTRACT §5).
   * A task the platform already has (entered before its invoice came) is only linked to it.
   */
  private async fillTask(
    tx: Tx,
    deal: Deal,
    expected: Report,
    fill: {
      invoice: { billingKey: string; invoiceNumber: string | null };
      data: Partial<ReportData>;
      amountExTax: number;
      issuedAt: Date;
      zone: string;
    },
    ctx: ReportContext,
  ): Promise<void> {
    const { invoice, zone } = fill;
    if (expected.billingKey) return;
    if (!OPEN_MANUAL.includes(expected.status)) {
      if (!DELIVERED_STATUSES.includes(expected.status)) return;
      await tx.report.update({
        where: { id: expected.id },
        data: { billingKey: invoice.billingKey },
      });
      // Approved before its invoice came: a progress item's next step is known only now.
      if (expected.status === 'REPORTED') {
        await this.nextCycle(tx, deal, { ...expected, billingKey: invoice.billingKey }, ctx);
      }
      return;
    }
    const full = withConfirmed(expected.data as unknown as ReportData, fill.data);
    await tx.report.update({
      where: { id: expected.id },
      data: {
        billingKey: invoice.billingKey,
        amountExTax: fill.amountExTax,
        dueAt: expected.dueAt ?? defaultDue(fill.issuedAt, zone),
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
  }

  /** The task of a progress item's step that this invoice bills (the n-th step fills the n-th). */
  private async progressSlot(
    tx: Tx,
    deal: Deal,
    invoice: SlotInvoice & { itemKey: string },
  ): Promise<Report | null> {
    const invoices = await tx.invoice.findMany({
      where: { dealId: deal.id, itemKey: invoice.itemKey },
      select: { billingKey: true, period: true, rebill: true, postedAt: true },
    });
    const step = progressStepOf(invoice, invoices);
    if (step === undefined) return null;
    const slot = await tx.report.findUnique({
      where: { factKey: progressStepKey(deal.id, invoice.itemKey, step) },
    });
    return slot && (slot.billingKey === null || slot.billingKey === invoice.billingKey)
      ? slot
      : null;
  }

  /** Whether the deal's platform runs PRONI's confirmation cycle for it (manual queue). */
  private runsCycle(deal: Deal): boolean {
    const platform = deal.referralPlatform;
    if (!platform || !deal.referralId) return false;
    return platformProfile(platform).confirmationCycle && this.channelFor(platform) === 'manual';
  }

  /**
   * 納品報告 may be recorded: always, unless the platform takes it only after a 確定報告 (manual
   * queue) and no confirmed-amount report of the deal is in the platform's hands yet.
   */
  private async deliveryReportable(tx: Tx, deal: Deal): Promise<boolean> {
    const platform = deal.referralPlatform!;
    if (!platformProfile(platform).deliveredAfterConfirmed) return true;
    if (this.channelFor(platform) !== 'manual') return true;
    const confirmed = await tx.report.count({
      where: {
        dealId: deal.id,
        kind: 'confirmed_amount',
        status: { in: [...DELIVERED_STATUSES] },
      },
    });
    return confirmed > 0;
  }

  private slotContext(deal: Deal): SlotContext {
    return {
      dealId: deal.id,
      dealName: deal.name,
      zone: this.config.timeZoneOf(deal),
      monthlyFixed: billingCountOf(deal) === 'monthly_fixed',
    };
  }

  /**
   * The confirmation cycle's first tasks (報告期限前): one per billable item that has no
   * confirmed-amount report yet, keyed like the report its first invoice will produce (so the
   * invoice fills it in) and due on its planned invoice date (confirmation-cycle.ts).
   */
  private async expectConfirmations(
    tx: Tx,
    deal: Deal,
    items: readonly BillingItem[],
    ctx: ReportContext,
  ): Promise<void> {
    if (!this.runsCycle(deal) || !isWonOrLater(deal.stage)) return;
    const reported = await this.itemsWithReports(tx, deal.id);
    const slots = items
      .filter((item) => !reported.has(item.key))
      .map((item) => firstSlot(this.slotContext(deal), slotItem(item)))
      .filter((slot): slot is ConfirmationSlot => slot !== undefined);
    for (const slot of slots) {
      await this.recordSlot(
        tx,
        deal,
        slot,
        items.find((i) => i.key === slot.itemKey)!,
        ctx,
      );
    }
  }

  /**
   * The next cycle after an approved confirmed report (報告済み): the task of the item's next
   * invoice still planned (a month, a progress step), and the first task of any billable item
   * that has none yet. Idempotent: a task exists once per fact key.
   */
  private async nextCycle(
    tx: Tx,
    deal: Deal,
    approved: Pick<Report, 'factKey' | 'billingKey' | 'data'>,
    ctx: ReportContext,
  ): Promise<void> {
    if (!this.runsCycle(deal) || !WON_STAGES.includes(deal.stage)) return;
    const items = await tx.billingItem.findMany({
      where: { dealId: deal.id, removed: false },
      orderBy: { position: 'asc' },
    });
    const itemKey = (approved.data as { itemKey?: string } | null)?.itemKey;
    const item = items.find((i) => i.key === itemKey);
    if (item) {
      const invoices = await tx.invoice.findMany({
        where: { dealId: deal.id, itemKey: item.key },
        select: { billingKey: true, period: true, rebill: true, postedAt: true },
      });
      const slot = nextSlot(this.slotContext(deal), slotItem(item), approved, invoices);
      if (slot) await this.recordSlot(tx, deal, slot, item, ctx);
    }
    await this.expectConfirmations(tx, deal, items, ctx);
  }

  /** The item keys that have a confirmed-amount report (or task) of the deal. */
  private async itemsWithReports(tx: Tx, dealId: string): Promise<Set<string>> {
    const rows = await tx.$queryRaw<{ itemKey: string | null }[]>`
      SELECT DISTINCT data->>'itemKey' AS "itemKey" FROM report
       WHERE deal_id = ${dealId} AND kind = 'confirmed_amount'`;
    return new Set(rows.map((r) => r.itemKey).filter((k): k is string => k !== null));
  }

  /** One confirmed-amount task of the cycle, waiting for its invoice. */
  private async recordSlot(
    tx: Tx,
    deal: Deal,
    slot: ConfirmationSlot,
    item: Pick<BillingItem, 'taxRatePercent'>,
    ctx: ReportContext,
  ): Promise<boolean> {
    const zone = this.config.timeZoneOf(deal);
    const amount = slot.amountExTax;
    const now = ctx.now ?? this.clock.now();
    // Decided from the plan's remaining items until the invoice exists (it refreshes the task).
    const count = invoiceCount({
      plan: billingCountOf(deal),
      items: (
        await tx.billingItem.findMany({
          where: { dealId: deal.id, removed: false },
          orderBy: { position: 'asc' },
        })
      ).map(plannedItem),
      invoices: await this.placedInvoices(tx, deal.id),
      itemKey: slot.itemKey,
      period: slot.period,
      today: localDate(now, zone),
      timeZone: zone,
    });
    return this.record(
      tx,
      deal,
      {
        kind: 'confirmed_amount',
        factKey: slot.factKey,
        occurredAt: now,
        amountExTax: amount,
        dueAt: slot.date ? addDaysInZone(startOfLocalDay(slot.date, zone), 1, zone) : null,
        data: {
          amountExTax: amount,
          taxAmount: amount !== undefined ? taxOf(amount, item.taxRatePercent) : undefined,
          currency: deal.currency,
          billingCount: count.billingCount,
          itemKey: slot.itemKey,
          orderDescription: slot.description,
          issueDate: slot.date,
          nextInvoiceDate: count.nextInvoiceDate,
          ...(await this.contractUrls(tx, deal.id)),
        },
      },
      ctx,
    );
  }

  /** Records one stage fact's report (fromHistory's, or a delivery waiting for a 確定報告). */
  private async recordFact(
    tx: Tx,
    deal: Deal,
    fact: StageFact,
    items: readonly BillingItem[],
    ctx: ReportContext,
  ): Promise<boolean> {
    return this.record(
      tx,
      deal,
      {
        kind: fact.kind,
        factKey: `${deal.id}|${fact.key}`,
        occurredAt: fact.at,
        data: await this.stageData(tx, deal, fact, items),
        amountExTax: fact.kind === 'won' ? contracted(deal, items) : undefined,
      },
      ctx,
    );
  }

  private async stageData(
    tx: Tx,
    deal: Deal,
    fact: StageFact,
    items: readonly BillingItem[],
  ): Promise<Partial<ReportData>> {
    const date = localDate(fact.at, this.config.timeZoneOf(deal));
    switch (fact.kind) {
      case 'appointment': {
        // Accepting (or engaging) tells the platform what the deal is worth and when it should
        // close, as known then (Partner Center asks for both, CONTRACT §5).
        const referral = await this.referralOf(tx, deal.id);
        const amount = dbAmount(deal.amount);
        const estimate = dbAmount(referral?.estimatedValue ?? null);
        const value =
          amount !== null && amount > 0
            ? { dealValue: amount, currency: deal.currency }
            : estimate !== null && estimate > 0
              ? { dealValue: estimate, currency: referral?.currency ?? deal.currency }
              : {};
        return {
          appointmentDate: date,
          ...value,
          ...(deal.closeDate ? { closingDate: deal.closeDate } : {}),
        };
      }
      case 'won': {
        const amount = contracted(deal, items);
        return {
          amountExTax: amount,
          taxAmount: taxOf(amount, taxRateOf(deal, items)),
          currency: deal.currency,
          billingCount: billingCountOf(deal),
          orderDescription: orderDescription(deal, items),
          billingTiming: billingTiming(items),
          // The deal closed the day it was won, unless the CRM says otherwise.
          closingDate: deal.closeDate ?? date,
        };
      }
      case 'lost':
        return {
          date,
          reason:
            (fact.cause === 'loss.confirmed' ? deal.lossProposal : null) ??
            LOSS_REASON[fact.cause ?? ''] ??
            fact.cause,
          lostStage: fact.lostStage,
        };
      case 'lost_withdrawn':
        return { date, reason: RESUME_REASON[fact.cause ?? ''] ?? fact.cause };
      case 'declined': {
        const referral = await this.referralOf(tx, deal.id);
        return { date, reason: referral?.statusReason ?? referral?.declineReason ?? undefined };
      }
      case 'expired': {
        const referral = await this.referralOf(tx, deal.id);
        return { date, reason: referral?.statusReason ?? EXPIRED_REASON };
      }
      case 'delivered':
        return { deliveredOn: deal.deliveredOn ?? date };
    }
  }

  private referralOf(tx: Tx, dealId: string): Promise<Referral | null> {
    return tx.referral.findUnique({ where: { dealId } });
  }

  /**
   * Inserts the report unless its fact was reported before, or the platform takes nothing of the
   * kind, or the platform closed the referral (CONTRACT §3.5: nothing more is reported after the
   * close's own report); queues its delivery — a won report the platform makes wait (Partner
   * Center's deal registration) is queued by the report timer when its time comes.
   */
  private async record(tx: Tx, deal: Deal, r: NewReport, ctx: ReportContext): Promise<boolean> {
    const platform = deal.referralPlatform!;
    const profile = platformProfile(platform);
    if (REFERRAL_ANSWER_KINDS.includes(r.kind) && !profile.reportKinds.includes(r.kind)) {
      return false;
    }
    const referral = await this.referralOf(tx, deal.id);
    const closedAs = REFERRAL_CLOSED_STATES.find((s) => s === referral?.state);
    if (closedAs && CLOSING_REPORT[closedAs] !== r.kind) return false;
    const now = ctx.now ?? this.clock.now();
    const waitUntil =
      r.kind === 'won' && referral && profile.wonNotBefore
        ? profile.wonNotBefore({
            direction: referral.direction,
            platformCreatedAt: referral.platformCreatedAt,
          })
        : null;
    const notBefore = waitUntil && waitUntil > now ? waitUntil : null;
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
          : defaultDue(r.occurredAt, zone);
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
          notBefore,
          // A held report is released by the report timer once (its release stamps updatedAt with
          // the business clock's instant): recorded on that clock too.
          ...(notBefore ? { updatedAt: now } : {}),
        },
      ],
      skipDuplicates: true,
    });
    if (count === 0) return false;
    if (notBefore) {
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'report',
        message: `${r.kind} report for ${platform} held until ${notBefore.toISOString()}: ${profile.label.en} rejects a deal registration marked won sooner than 72 hours after the deal was created`,
        cause: ctx.cause,
        eventId: ctx.eventId,
        details: { reportId: id, factKey: r.factKey, channel, notBefore: notBefore.toISOString() },
      });
    }
    if (channel !== 'manual' && !notBefore) {
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

/** Partner Center's statusReason for an expiry the hub did not time itself. */
const EXPIRED_REASON = 'No response within the response window';

const LOSS_REASON: Record<string, string> = {
  'crm.stage': 'CRM stage set to lost',
  'envelope.declined': 'the customer declined the contract (DocuSign)',
  'envelope.voided': 'the contract envelope was voided (DocuSign)',
  'loss.confirmed': 'the loss proposed from the manual queue (まだ未定: 失注) was confirmed',
};

const RESUME_REASON: Record<string, string> = {
  'crm.stage': 'talks resumed (CRM stage reopened)',
  'envelope.completed': 'the customer signed the contract',
  'envelope.sent': 'a contract was sent',
};

/** A manual task's deadline when the platform sets none: the end of the MANUAL_REPORT_DAYS-th local day after. */
function defaultDue(after: Date, zone: string): Date {
  return startOfLocalDay(localDate(addDaysInZone(after, MANUAL_REPORT_DAYS + 1, zone), zone), zone);
}

/** A billing item as the confirmation cycle reads it. */
function slotItem(item: BillingItem): SlotItem {
  return { ...item, amount: dbAmount(item.amount) };
}

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
