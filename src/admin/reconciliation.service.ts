import { Readable } from 'node:stream';

import { HttpStatus, Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { z } from 'zod';

import { contractedAmount, parseBillingPlan } from '../billing/billing-plan';
import {
  OPEN_INVOICE_STATES,
  PARKED_BILLING_SQL,
  dueNotIssuedText,
  isDueNotIssued,
} from '../billing/due-not-issued';
import { CONFIRMED_STATES, INVOICED_STATES } from '../domain/invoice-state';
import { formatMoney } from '../domain/money';
import { DomainException } from '../common/domain.exception';
import { PermanentError } from '../common/errors';
import { Semaphore } from '../common/semaphore';
import { AppConfig } from '../config/app-config';
import { StripeClient } from '../connectors/stripe/stripe.client';
import { StripeInvoiceView } from '../connectors/stripe/stripe.types';
import { Invoice, InvoiceState, Prisma, Report, ReportStatus } from '../generated/prisma/client';
import { dbAmount } from '../prisma/db-amount';
import { PrismaService } from '../prisma/prisma.service';
import { DELIVERED_STATUSES } from '../reporting/manual-report.transitions';
import { toCsv } from './csv';
import { page, pageQuery } from './pagination';

export type MismatchKind =
  | 'missing_invoice'
  | 'duplicate_invoice'
  | 'amount_differs'
  | 'unknown_invoice'
  | 'status_differs'
  /** An invoice posted or paid that the referral platform was not told about (確定報告 missing or still owed). */
  | 'invoiced_not_reported'
  /** A delivered confirmed report states another amount than the hub's invoice or Stripe's subtotal. */
  | 'reported_amount_differs'
  /** A delivered confirmed report whose invoice is void in the hub or in Stripe. */
  | 'reported_but_voided'
  /**
   * An invoice the hub owes that Stripe has not received: open (PENDING, CREATING, CREATED) and
   * untouched for longer than RECOVERY_GRACE_MS, or its billing job parked as an open dead letter
   * (the attention list's definition, src/billing/due-not-issued.ts).
   */
  | 'due_not_issued';

export interface Mismatch {
  kind: MismatchKind;
  billingKey?: string;
  stripeInvoiceId?: string;
  reportId?: string;
  message: string;
}

/** One confirmed-amount report as reconciliation lists it. */
export interface ReconciledReport {
  id: string;
  status: ReportStatus;
  billingKey: string | null;
  itemKey: string | null;
  amountExTax: number | null;
  reportedAmount: number | null;
  dueAt: Date | null;
  deliveredAt: Date | null;
}

export interface ReconciledDeal {
  dealId: string;
  dealName: string;
  crmDealId: string | null;
  stage: string;
  currency: string;
  /** Contracted amount excl. tax: the deal amount, else what the plan adds up to. */
  contracted: number | null;
  /** Hub invoices in CREATED, POSTED or PAID: amount excl. tax. */
  invoicedHub: number;
  /** Stripe invoices of the deal that are neither draft nor void: subtotal (excl. tax). */
  invoicedStripe: number;
  /** Stripe amount_paid over the deal's invoices (incl. tax). */
  paid: number;
  /** The referral platform the deal reports to; null for a deal that came from no referral. */
  referralPlatform: string | null;
  /**
   * Reported to the referral platform, excl. tax: the confirmed-amount reports the platform has
   * (REPORTED, UNDER_REVIEW, CORRECTION_REQUESTED, FEE_ONGOING), each with the amount entered there
   * (reportedAmount) or else the amount it states. Null when the deal owes no reports.
   */
  reported: number | null;
  /** The deal's reports: how many in each status, and its confirmed-amount reports one by one. */
  reports: {
    total: number;
    byStatus: Partial<Record<ReportStatus, number>>;
    confirmed: ReconciledReport[];
  };
  hubInvoices: number;
  stripeInvoices: {
    id: string;
    number: string | null;
    status: string;
    customer: string;
    subtotal: number;
    total: number;
    amountPaid: number;
    billingKey: string | null;
  }[];
  mismatches: Mismatch[];
}

/** One page of the reconciliation: its deals newest first, and the cursor of the next page. */
export interface ReconciliationReport {
  /** When this page's Stripe reads began. */
  generatedAt: string;
  /** Of this page's deals. */
  summary: { deals: number; dealsWithMismatches: number; mismatches: number };
  /** Newest first (as every admin list). */
  deals: ReconciledDeal[];
  /** Pass as `cursor` for the next (older) page; null on the last page and with `dealId`. */
  nextCursor: string | null;
}

/**
 * `limit` (1–200, default 50) deals per page, `cursor` (opaque: the `nextCursor` of the page
 * before), `dealId` (that deal alone, whatever its plan and invoices; no paging).
 */
export const reconciliationPageQuery = pageQuery.extend({
  dealId: z.string().trim().min(1).optional(),
});
export type ReconciliationPageQuery = Partial<z.output<typeof reconciliationPageQuery>>;

/** A hub invoice as reconciliation reads it (amounts as numbers: dbAmount). */
type HubInvoice = Pick<
  Invoice,
  | 'billingKey'
  | 'itemKey'
  | 'period'
  | 'state'
  | 'stripeInvoiceId'
  | 'stripeNumber'
  | 'stripeCustomerId'
  | 'lastError'
> & { amount: number; updatedAt?: Date };

/** What due_not_issued is judged by: the database's time, the grace, the parked billing keys. */
export interface DueFacts {
  now: Date;
  graceMs: number;
  /** Billing keys whose billing job is an OPEN dead letter. */
  parked: ReadonlySet<string>;
}

export interface DealInput {
  id: string;
  name: string;
  crmDealId: string | null;
  stage: string;
  currency: string;
  amount: number | null;
  billingPlan: unknown;
  /** The deal's referral platform (absent or null: the deal owes no reports). */
  referralPlatform?: string | null;
}

/** A report of the deal as reconciliation needs it (amounts as numbers: dbAmount). */
export type ReportRow = Pick<
  Report,
  | 'id'
  | 'kind'
  | 'status'
  | 'factKey'
  | 'billingKey'
  | 'dueAt'
  | 'deliveredAt'
  | 'lastError'
  | 'data'
> & { amountExTax: number | null; reportedAmount: number | null };

/** Hub states that agree with each Stripe invoice status (a state may trail Stripe by a webhook). */
const AGREEING: Record<string, readonly InvoiceState[]> = {
  draft: ['PENDING', 'CREATING', 'CREATED'],
  open: ['CREATED', 'POSTED'],
  paid: ['PAID'],
  void: ['VOID'],
  uncollectible: ['UNCOLLECTIBLE'],
};

/** deal|item[|period][|rN] → deal|item[|period]: one item's invoice, whatever the re-bill. */
const baseKey = (billingKey: string) => billingKey.replace(/\|r\d+$/, '');
const label = (s: StripeInvoiceView) => (s.number ? `${s.number} (${s.id})` : s.id);

const YEAR_MONTH = /^\d{4}-\d{2}$/;

const reportData = (r: ReportRow) => (r.data ?? {}) as { billingCount?: string; itemKey?: string };

/**
 * Compares one deal's hub invoices with the Stripe invoices that belong to it, and both with what
 * was reported to the referral platform (issue item 4). Pure: the caller reads Stripe and passes
 * what it found, plus the hub's Stripe ids that Stripe does not know, and the deal's reports.
 */
export function reconcileDeal(
  deal: DealInput,
  hub: readonly HubInvoice[],
  stripe: readonly StripeInvoiceView[],
  missingStripeIds: ReadonlySet<string> = new Set(),
  reports: readonly ReportRow[] = [],
  due?: DueFacts,
): ReconciledDeal {
  const mismatches: Mismatch[] = [];
  const money = (n: number) => formatMoney(n, deal.currency);
  const byKey = new Map(hub.map((h) => [h.billingKey, h]));
  const byStripeId = new Map(stripe.map((s) => [s.id, s]));

  // missing_invoice
  for (const h of hub) {
    if (h.stripeInvoiceId && missingStripeIds.has(h.stripeInvoiceId)) {
      mismatches.push({
        kind: 'missing_invoice',
        billingKey: h.billingKey,
        stripeInvoiceId: h.stripeInvoiceId,
        message: `the hub's invoice ${h.stripeNumber ?? h.stripeInvoiceId} for ${h.itemKey} (${h.state}) does not exist in Stripe`,
      });
    } else if ((h.state === 'PENDING' || h.state === 'CREATING') && h.lastError) {
      mismatches.push({
        kind: 'missing_invoice',
        billingKey: h.billingKey,
        message: `the invoice for ${h.itemKey} (${money(h.amount)} excl. tax) is due but was not created in Stripe: ${h.lastError}`,
      });
    }
  }

  // duplicate_invoice: more than one live Stripe invoice for one item (+ period), re-bills included.
  const live = stripe.filter((s) => s.status !== 'void');
  const groups = new Map<string, StripeInvoiceView[]>();
  for (const s of live) {
    const key = s.metadata.closeloop_billing_key;
    if (!key) continue;
    const group = groups.get(baseKey(key)) ?? [];
    group.push(s);
    groups.set(baseKey(key), group);
  }
  for (const [base, group] of groups) {
    if (group.length < 2) continue;
    const keys = [...new Set(group.map((s) => s.metadata.closeloop_billing_key))];
    const ownIds = new Set(hub.map((h) => h.stripeInvoiceId).filter(Boolean));
    const extra = group.find((s) => !ownIds.has(s.id)) ?? group[group.length - 1];
    mismatches.push({
      kind: 'duplicate_invoice',
      billingKey: keys.length === 1 ? keys[0] : base,
      stripeInvoiceId: extra.id,
      message:
        keys.length === 1
          ? `${group.length} Stripe invoices that are not void carry billing key ${keys[0]}: ${group.map(label).join(', ')}`
          : `${group.length} Stripe invoices that are not void bill ${base} (re-bills ${keys.join(', ')}): ${group.map(label).join(', ')}`,
    });
  }

  // unknown_invoice: Stripe invoices of the deal that the hub did not make.
  for (const s of live) {
    const key = s.metadata.closeloop_billing_key;
    if (key && byKey.has(key)) continue;
    if (hub.some((h) => h.stripeInvoiceId === s.id)) continue;
    mismatches.push({
      kind: 'unknown_invoice',
      ...(key ? { billingKey: key } : {}),
      stripeInvoiceId: s.id,
      message: key
        ? `Stripe invoice ${label(s)} (${s.status}, ${money(s.subtotal)} excl. tax) carries billing key ${key}, which the hub does not have`
        : `Stripe invoice ${label(s)} (${s.status}, ${money(s.subtotal)} excl. tax) of the deal's customer was not made by the hub`,
    });
  }

  // amount_differs and status_differs, per hub invoice and its Stripe invoice.
  for (const h of hub) {
    const s = h.stripeInvoiceId ? byStripeId.get(h.stripeInvoiceId) : undefined;
    if (!s) continue;
    if (s.status !== 'draft' && s.status !== 'void' && s.subtotal !== h.amount) {
      mismatches.push({
        kind: 'amount_differs',
        billingKey: h.billingKey,
        stripeInvoiceId: s.id,
        message: `Stripe invoice ${label(s)} is for ${money(s.subtotal)} excl. tax, the hub billed ${money(h.amount)} for ${h.itemKey}`,
      });
    }
    const agreeing = AGREEING[s.status];
    if (agreeing && !agreeing.includes(h.state)) {
      mismatches.push({
        kind: 'status_differs',
        billingKey: h.billingKey,
        stripeInvoiceId: s.id,
        message: `Stripe invoice ${label(s)} is ${s.status}, the hub has it as ${h.state}`,
      });
    }
  }

  // due_not_issued: work the hub owes Stripe and has not done (stuck, or waiting for a replay).
  for (const h of due ? hub : []) {
    if (h.updatedAt === undefined) continue;
    const parked = due!.parked.has(h.billingKey);
    const facts = { state: h.state, updatedAt: h.updatedAt, parked };
    if (!isDueNotIssued(facts, due!.now, due!.graceMs)) continue;
    mismatches.push({
      kind: 'due_not_issued',
      billingKey: h.billingKey,
      message: `${dueNotIssuedText({ ...h, updatedAt: h.updatedAt, deadLetterId: null })}${parked ? ' (its billing job is a dead letter: replay it after fixing the cause)' : ''} — ${money(h.amount)} excl. tax`,
    });
  }

  const reportedLeg = reconcileReported(deal, hub, byStripeId, reports);
  mismatches.push(...reportedLeg.mismatches);

  const invoicedHub = hub
    .filter((h) => INVOICED_STATES.includes(h.state))
    .reduce((sum, h) => sum + h.amount, 0);
  const invoicedStripe = stripe
    .filter((s) => s.status !== 'void' && s.status !== 'draft')
    .reduce((sum, s) => sum + s.subtotal, 0);
  const paid = stripe.reduce((sum, s) => sum + s.amountPaid, 0);

  return {
    dealId: deal.id,
    dealName: deal.name,
    crmDealId: deal.crmDealId,
    stage: deal.stage,
    currency: deal.currency,
    contracted: contractedOf(deal),
    invoicedHub,
    invoicedStripe,
    paid,
    referralPlatform: deal.referralPlatform ?? null,
    reported: reportedLeg.reported,
    reports: reportedLeg.summary,
    hubInvoices: hub.length,
    stripeInvoices: [...stripe]
      .sort((a, b) => a.created - b.created || a.id.localeCompare(b.id))
      .map((s) => ({
        id: s.id,
        number: s.number,
        status: s.status,
        customer: s.customer,
        subtotal: s.subtotal,
        total: s.total,
        amountPaid: s.amountPaid,
        billingKey: s.metadata.closeloop_billing_key ?? null,
      })),
    mismatches,
  };
}

/**
 * The reported leg: each invoice posted or paid against the confirmed-amount report (確定報告)
 * that covers it, and each report the platform has against its invoice in the hub and in Stripe.
 *
 * A report covers an invoice when it names the invoice's billing key (its billingKey column, or
 * its fact key `<deal>|confirmed_amount|<billingKey>` for a task marked reported before its
 * invoice came); for a monthly_fixed plan one report per item covers every month (the platform
 * bills its fee monthly from the one report). A platform that takes no confirmed amounts (a
 * NOT_APPLICABLE confirmed report on the deal, e.g. Partner Center) is owed none.
 */
function reconcileReported(
  deal: DealInput,
  hub: readonly HubInvoice[],
  byStripeId: ReadonlyMap<string, StripeInvoiceView>,
  reports: readonly ReportRow[],
): {
  mismatches: Mismatch[];
  reported: number | null;
  summary: ReconciledDeal['reports'];
} {
  const mismatches: Mismatch[] = [];
  const money = (n: number) => formatMoney(n, deal.currency);
  const byStatus: Partial<Record<ReportStatus, number>> = {};
  for (const r of reports) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  const confirmed = reports.filter((r) => r.kind === 'confirmed_amount');
  const summary = {
    total: reports.length,
    byStatus,
    confirmed: confirmed.map((r) => ({
      id: r.id,
      status: r.status,
      billingKey: linkedKey(deal.id, r),
      itemKey: reportData(r).itemKey ?? null,
      amountExTax: r.amountExTax,
      reportedAmount: r.reportedAmount,
      dueAt: r.dueAt,
      deliveredAt: r.deliveredAt,
    })),
  };
  const owesReports = Boolean(deal.referralPlatform) || reports.length > 0;
  if (!owesReports) return { mismatches, reported: null, summary };

  const delivered = confirmed.filter((r) => DELIVERED_STATUSES.includes(r.status));
  const stated = (r: ReportRow) => r.reportedAmount ?? r.amountExTax;
  const reported = delivered.reduce((sum, r) => sum + (stated(r) ?? 0), 0);
  const platformTakesNone = confirmed.some((r) => r.status === 'NOT_APPLICABLE');
  const platform = deal.referralPlatform ?? 'the referral platform';
  const invoiceName = (h: HubInvoice) => h.stripeNumber ?? h.stripeInvoiceId ?? h.billingKey;

  // invoiced_not_reported
  for (const h of hub) {
    if (!CONFIRMED_STATES.includes(h.state)) continue;
    const report =
      confirmed.find((r) => linkedKey(deal.id, r) === h.billingKey) ??
      (h.period && YEAR_MONTH.test(h.period)
        ? confirmed.find(
            (r) =>
              reportData(r).billingCount === 'monthly_fixed' && reportData(r).itemKey === h.itemKey,
          )
        : undefined);
    const what = `invoice ${invoiceName(h)} for ${h.itemKey}${h.period ? ` (${h.period})` : ''} (${money(h.amount)} excl. tax, ${h.state})`;
    if (!report) {
      if (platformTakesNone) continue;
      mismatches.push({
        kind: 'invoiced_not_reported',
        billingKey: h.billingKey,
        ...(h.stripeInvoiceId ? { stripeInvoiceId: h.stripeInvoiceId } : {}),
        message: `${what} is not reported to ${platform}: no confirmed-amount report (確定報告) exists for it`,
      });
      continue;
    }
    if (report.status === 'NOT_APPLICABLE' || DELIVERED_STATUSES.includes(report.status)) continue;
    const state =
      report.status === 'FAILED' || report.status === 'DEAD'
        ? `${report.status}${report.lastError ? ` (${report.lastError})` : ''}`
        : `${report.status}${report.dueAt ? ` (due ${report.dueAt.toISOString()})` : ''}`;
    mismatches.push({
      kind: 'invoiced_not_reported',
      billingKey: h.billingKey,
      ...(h.stripeInvoiceId ? { stripeInvoiceId: h.stripeInvoiceId } : {}),
      reportId: report.id,
      message: `${what} is not reported to ${platform}: its confirmed-amount report ${report.id} is still ${state}`,
    });
  }

  // reported_but_voided and reported_amount_differs, per report the platform has.
  for (const r of delivered) {
    const key = linkedKey(deal.id, r);
    const h = key ? hub.find((i) => i.billingKey === key) : undefined;
    if (!h) continue;
    const s = h.stripeInvoiceId ? byStripeId.get(h.stripeInvoiceId) : undefined;
    const amount = stated(r);
    const what = `confirmed-amount report ${r.id} (${r.status}${amount !== null ? `, ${money(amount)} excl. tax` : ''})`;
    if (h.state === 'VOID' || s?.status === 'void') {
      const where = [
        h.state === 'VOID' ? 'in the hub' : '',
        s?.status === 'void' ? 'in Stripe' : '',
      ]
        .filter(Boolean)
        .join(' and ');
      mismatches.push({
        kind: 'reported_but_voided',
        billingKey: h.billingKey,
        ...(h.stripeInvoiceId ? { stripeInvoiceId: h.stripeInvoiceId } : {}),
        reportId: r.id,
        message: `${what} reports invoice ${invoiceName(h)} for ${h.itemKey} to ${platform}, but that invoice is void ${where}`,
      });
      continue;
    }
    if (amount === null) continue;
    const differences: string[] = [];
    if (h.amount !== amount) differences.push(`the hub invoiced ${money(h.amount)}`);
    if (s && s.status !== 'draft' && s.subtotal !== amount) {
      differences.push(`Stripe invoice ${label(s)} is for ${money(s.subtotal)}`);
    }
    if (differences.length > 0) {
      mismatches.push({
        kind: 'reported_amount_differs',
        billingKey: h.billingKey,
        ...(h.stripeInvoiceId ? { stripeInvoiceId: h.stripeInvoiceId } : {}),
        reportId: r.id,
        message: `${what} told ${platform} ${money(amount)} for ${h.itemKey}, but ${differences.join(' and ')} excl. tax`,
      });
    }
  }
  return { mismatches, reported, summary };
}

/** The billing key a confirmed report is about: its column, else the one its fact key names. */
function linkedKey(dealId: string, r: Pick<ReportRow, 'billingKey' | 'factKey'>): string | null {
  if (r.billingKey) return r.billingKey;
  const prefix = `${dealId}|confirmed_amount|`;
  return r.factKey.startsWith(prefix) ? r.factKey.slice(prefix.length) : null;
}

function contractedOf(deal: DealInput): number | null {
  if (deal.amount !== null && deal.amount > 0) return deal.amount;
  if (!deal.billingPlan) return null;
  const parsed = parseBillingPlan(deal.billingPlan, { currency: deal.currency });
  return parsed.ok ? contractedAmount(parsed.plan, parsed.items) : null;
}

export const CSV_HEADER = [
  'deal_id',
  'deal_name',
  'crm_deal_id',
  'currency',
  'contracted',
  'invoiced_hub',
  'invoiced_stripe',
  'paid',
  'mismatches',
  // Appended (not next to paid) so readers that take columns by position keep working.
  'referral_platform',
  'reported',
  'reports',
  'reports_not_reported',
] as const;

/** Reports the platform does not have yet (still owed, or an automatic delivery gave up). */
const NOT_YET_REPORTED: readonly ReportStatus[] = ['PENDING', 'OVERDUE', 'FAILED', 'DEAD'];

/** One deal's CSV record, in CSV_HEADER's order. */
function csvRecord(d: ReconciledDeal) {
  return [
    d.dealId,
    d.dealName,
    d.crmDealId,
    d.currency,
    d.contracted,
    d.invoicedHub,
    d.invoicedStripe,
    d.paid,
    d.mismatches.map((m) => `${m.kind}: ${m.message}`).join(' | '),
    d.referralPlatform,
    d.reported,
    d.reports.total,
    NOT_YET_REPORTED.reduce((n, s) => n + (d.reports.byStatus[s] ?? 0), 0),
  ];
}

/** The header row and one record per deal of the page(s), in their order. */
export function reconciliationCsv(...pages: Pick<ReconciliationReport, 'deals'>[]): string {
  return toCsv([[...CSV_HEADER], ...pages.flatMap((p) => p.deals.map(csvRecord))]);
}

const DEFAULT_RECONCILIATION_LIMIT = 50;

/**
 * Deals whose Stripe side is read at once in this process, across every request (API, dashboard,
 * CSV downloads): the work one process takes on stays bounded however many pages are open, while
 * reconciliation's own rate limiter (STRIPE_RECONCILIATION_RATE_PER_SEC) bounds the calls per
 * second across processes. Module-level because the admin and dashboard modules each have an
 * instance of the service.
 */
const PARALLEL_DEALS = 4;
const stripeReads = new Semaphore(PARALLEL_DEALS);

/** A deal reconciliation lists: it has a billing plan or invoices. */
const RECONCILABLE: Prisma.DealWhereInput = {
  OR: [{ billingPlan: { not: Prisma.DbNull } }, { invoices: { some: {} } }],
};

const DEAL_FIELDS = {
  id: true,
  name: true,
  crmDealId: true,
  stage: true,
  currency: true,
  amount: true,
  billingPlan: true,
  referralPlatform: true,
  stripeCustomerId: true,
  reports: {
    orderBy: { id: 'asc' },
    select: {
      id: true,
      kind: true,
      status: true,
      factKey: true,
      billingKey: true,
      amountExTax: true,
      reportedAmount: true,
      dueAt: true,
      deliveredAt: true,
      lastError: true,
      data: true,
    },
  },
  invoices: {
    orderBy: { createdAt: 'asc' },
    select: {
      billingKey: true,
      itemKey: true,
      period: true,
      state: true,
      amount: true,
      stripeInvoiceId: true,
      stripeNumber: true,
      stripeCustomerId: true,
      lastError: true,
      updatedAt: true,
    },
  },
} satisfies Prisma.DealSelect;

type DealRow = Prisma.DealGetPayload<{ select: typeof DEAL_FIELDS }>;

/**
 * Reconciliation (CONTRACT §6): per deal with a plan or invoices, what was contracted, invoiced in
 * the hub, invoiced and paid in Stripe — read from Stripe itself — reported to the referral
 * platform (confirmed amounts), and every mismatch named.
 *
 * Bounded work: one page of deals (newest first, `limit` at most 200) per request, and only that
 * page's deals are read from Stripe, on reconciliation's own Stripe budget (StripeBudget
 * 'reconciliation': its own rate, inside the shared one billing uses).
 *
 * A deal's Stripe invoices are every invoice of its Stripe customer(s) (listing: consistent) plus
 * those carrying its closeloop_deal_id metadata elsewhere (search: may lag ~1 minute), plus any
 * invoice the hub recorded that neither returned (retrieved by id, so "missing" is certain).
 */
@Injectable()
export class ReconciliationService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly stripe: StripeClient,
    private readonly config: AppConfig,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(ReconciliationService.name);
  }

  /** One page: its deals newest first, the page's summary and the next page's cursor. */
  async report(q: ReconciliationPageQuery = {}): Promise<ReconciliationReport> {
    if (!this.config.stripeConfigured) {
      throw new DomainException(
        HttpStatus.SERVICE_UNAVAILABLE,
        'STRIPE_NOT_CONFIGURED',
        'reconciliation reads Stripe: set STRIPE_SECRET_KEY',
      );
    }
    const generatedAt = new Date().toISOString();
    const limit = q.limit ?? DEFAULT_RECONCILIATION_LIMIT;
    let rows: DealRow[];
    let nextCursor: string | null = null;
    if (q.dealId) {
      rows = await this.prisma.deal.findMany({ where: { id: q.dealId }, select: DEAL_FIELDS });
      if (rows.length === 0) {
        throw new DomainException(HttpStatus.NOT_FOUND, 'NOT_FOUND', `deal ${q.dealId} not found`);
      }
    } else {
      // Deal ids sort by creation time (UUIDv7), so `id < cursor` newest first walks the primary
      // key, as the other admin lists do; the cursor is the last id of the page before.
      const found = await this.prisma.deal.findMany({
        where: q.cursor ? { AND: [RECONCILABLE, { id: { lt: q.cursor } }] } : RECONCILABLE,
        orderBy: { id: 'desc' },
        take: limit + 1,
        select: DEAL_FIELDS,
      });
      ({ items: rows, nextCursor } = page(found, limit));
    }
    const deals = await this.reconcile(rows);
    return {
      generatedAt,
      summary: {
        deals: deals.length,
        dealsWithMismatches: deals.filter((d) => d.mismatches.length > 0).length,
        mismatches: deals.reduce((n, d) => n + d.mismatches.length, 0),
      },
      deals,
      nextCursor,
    };
  }

  /**
   * The CSV of every deal from `cursor` on (or of `dealId`), streamed page by page.
   *
   * Streamed rather than paged by cursor: finance downloads one file (from the API or the
   * dashboard's link) and opens it in a spreadsheet, and a paged CSV would make every client
   * stitch files together. The stream holds one page at a time: Readable.from pulls the next page
   * (and its Stripe reads) only when the response has taken the previous one (backpressure). The
   * first page is read before anything is sent, so a missing deal (404) or an unavailable Stripe
   * (502, 503) still answers as an error; a failure on a later page aborts the response without
   * its end, so a download that broke off is never mistaken for a whole file. The records are the
   * pages' deals in the pages' order: newest first.
   */
  async csv(q: ReconciliationPageQuery = {}): Promise<{ generatedAt: string; body: Readable }> {
    const first = await this.report(q);
    const next = (cursor: string) => this.report({ ...q, cursor });
    const logger = this.logger;
    async function* chunks(): AsyncGenerator<string> {
      yield toCsv([[...CSV_HEADER]]);
      let current = first;
      for (;;) {
        if (current.deals.length > 0) yield toCsv(current.deals.map(csvRecord));
        if (!current.nextCursor) return;
        const cursor = current.nextCursor;
        try {
          current = await next(cursor);
        } catch (err) {
          logger.warn(
            { cursor, err: err instanceof Error ? err.message : String(err) },
            'reconciliation CSV aborted: a page could not be read',
          );
          throw err;
        }
      }
    }
    return {
      generatedAt: first.generatedAt,
      body: Readable.from(chunks(), { objectMode: false }),
    };
  }

  /** Reads the deals' Stripe side (a bounded number at once) and reconciles each, in their order. */
  private async reconcile(deals: readonly DealRow[]): Promise<ReconciledDeal[]> {
    const due = await this.dueFacts(deals);
    // A customer's invoices are listed once per page, however many of its deals the page holds.
    const byCustomer = new Map<string, Promise<StripeInvoiceView[]>>();
    const listCustomer = (customer: string) => {
      let pending = byCustomer.get(customer);
      if (!pending) {
        pending = this.stripe.listInvoicesForCustomer(customer, 'reconciliation');
        byCustomer.set(customer, pending);
      }
      return pending;
    };
    let failed = false;
    const results = await Promise.all(
      deals.map((deal) =>
        stripeReads.run(async () => {
          // The page failed already: spend no more of the Stripe budget on it.
          if (failed) return undefined;
          try {
            const { invoices, missing } = await this.stripeSide(deal, listCustomer);
            return reconcileDeal(
              { ...deal, amount: dbAmount(deal.amount) },
              deal.invoices.map((i) => ({ ...i, amount: dbAmount(i.amount) })),
              invoices,
              missing,
              deal.reports.map((r) => ({
                ...r,
                amountExTax: dbAmount(r.amountExTax),
                reportedAmount: dbAmount(r.reportedAmount),
              })),
              due,
            );
          } catch (err) {
            failed = true;
            throw err;
          }
        }),
      ),
    ).catch((err: unknown) => {
      throw new DomainException(
        HttpStatus.BAD_GATEWAY,
        'STRIPE_UNAVAILABLE',
        `could not read Stripe: ${err instanceof Error ? err.message : String(err)}`,
      );
    });
    return results.filter((d): d is ReconciledDeal => d !== undefined);
  }

  /**
   * What due_not_issued needs for the page: the database's time (the invoice rows' updated_at is
   * its time, as the recovery sweep reads it) and which of the page's open invoices have their
   * billing job parked as an OPEN dead letter. A page without open invoices reads nothing.
   */
  private async dueFacts(deals: readonly DealRow[]): Promise<DueFacts> {
    const graceMs = this.config.env.RECOVERY_GRACE_MS;
    const keys = deals.flatMap((d) =>
      d.invoices.filter((i) => OPEN_INVOICE_STATES.includes(i.state)).map((i) => i.billingKey),
    );
    if (keys.length === 0) return { now: new Date(), graceMs, parked: new Set() };
    const [row] = await this.prisma.$queryRaw<{ now: Date; parked: string[] }[]>`
      SELECT now() AS now, ARRAY(
        SELECT DISTINCT i.billing_key FROM invoice i JOIN dead_letter d ON ${PARKED_BILLING_SQL}
         WHERE i.billing_key = ANY(${keys})) AS parked`;
    return { now: row.now, graceMs, parked: new Set(row.parked) };
  }

  /** The Stripe invoices that belong to the deal, and the hub's Stripe ids Stripe does not know. */
  private async stripeSide(
    deal: {
      id: string;
      stripeCustomerId: string | null;
      invoices: { stripeInvoiceId: string | null; stripeCustomerId: string | null }[];
    },
    listCustomer: (customer: string) => Promise<StripeInvoiceView[]>,
  ): Promise<{ invoices: StripeInvoiceView[]; missing: Set<string> }> {
    const customers = new Set<string>();
    if (deal.stripeCustomerId) customers.add(deal.stripeCustomerId);
    for (const inv of deal.invoices) if (inv.stripeCustomerId) customers.add(inv.stripeCustomerId);
    const hubIds = new Set(
      deal.invoices.map((i) => i.stripeInvoiceId).filter((id): id is string => id !== null),
    );

    const found = new Map<string, StripeInvoiceView>();
    const consider = (inv: StripeInvoiceView) => {
      const owner = inv.metadata.closeloop_deal_id;
      // An invoice made for another hub deal is reconciled with that deal.
      if (owner && owner !== deal.id && !hubIds.has(inv.id)) return;
      if (owner === deal.id || hubIds.has(inv.id) || customers.has(inv.customer)) {
        found.set(inv.id, inv);
      }
    };
    const [listed, searched] = await Promise.all([
      Promise.all([...customers].map(listCustomer)),
      this.stripe.searchInvoicesByDeal(deal.id, 'reconciliation'),
    ]);
    for (const inv of listed.flat()) consider(inv);
    for (const inv of searched) consider(inv);

    const missing = new Set<string>();
    for (const id of hubIds) {
      if (found.has(id)) continue;
      try {
        found.set(id, await this.stripe.retrieveInvoice(id, 'reconciliation'));
      } catch (err) {
        if (!isNotFound(err)) throw err;
        missing.add(id);
      }
    }
    return { invoices: [...found.values()], missing };
  }
}

function isNotFound(err: unknown): boolean {
  if (!(err instanceof PermanentError)) return false;
  const cause = err.cause as { statusCode?: number } | undefined;
  return cause?.statusCode === 404;
}
