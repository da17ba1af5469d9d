import { contractedAmount, parseBillingPlan } from '../billing/billing-plan';
import { dueNotIssuedText, isDueNotIssued } from '../billing/due-not-issued';
import { CONFIRMED_STATES, INVOICED_STATES } from '../domain/invoice-state';
import { formatMoney } from '../domain/money';
import { InvoiceView } from '../ports/invoicing.port';
import { InvoiceState, ReportStatus } from '../generated/prisma/client';
import { DELIVERED_STATUSES } from '../reporting/manual-report.transitions';
import {
  DealInput,
  DueFacts,
  HubInvoice,
  Mismatch,
  ReconciledDeal,
  ReportRow,
} from './reconciliation.types';

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
const label = (s: InvoiceView) => (s.number ? `${s.number} (${s.id})` : s.id);

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
  stripe: readonly InvoiceView[],
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
    if (h.providerInvoiceId && missingStripeIds.has(h.providerInvoiceId)) {
      mismatches.push({
        kind: 'missing_invoice',
        billingKey: h.billingKey,
        stripeInvoiceId: h.providerInvoiceId,
        message: `the hub's invoice ${h.invoiceNumber ?? h.providerInvoiceId} for ${h.itemKey} (${h.state}) does not exist in Stripe`,
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
  const groups = new Map<string, InvoiceView[]>();
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
    const ownIds = new Set(hub.map((h) => h.providerInvoiceId).filter(Boolean));
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
    if (hub.some((h) => h.providerInvoiceId === s.id)) continue;
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
    const s = h.providerInvoiceId ? byStripeId.get(h.providerInvoiceId) : undefined;
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
 * NOT_APPLICABLE confirmed report of an invoice on the deal, e.g. Partner Center) is owed none.
 */
function reconcileReported(
  deal: DealInput,
  hub: readonly HubInvoice[],
  byStripeId: ReadonlyMap<string, InvoiceView>,
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
  // A report made for an invoice and NOT_APPLICABLE: the platform takes none. A task closed
  // without its invoice (the deal was lost: まだ未定 → 失注) says nothing of the platform.
  const platformTakesNone = confirmed.some(
    (r) => r.status === 'NOT_APPLICABLE' && r.billingKey !== null,
  );
  const platform = deal.referralPlatform ?? 'the referral platform';
  const invoiceName = (h: HubInvoice) => h.invoiceNumber ?? h.providerInvoiceId ?? h.billingKey;

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
        ...(h.providerInvoiceId ? { stripeInvoiceId: h.providerInvoiceId } : {}),
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
      ...(h.providerInvoiceId ? { stripeInvoiceId: h.providerInvoiceId } : {}),
      reportId: report.id,
      message: `${what} is not reported to ${platform}: its confirmed-amount report ${report.id} is still ${state}`,
    });
  }

  // reported_but_voided and reported_amount_differs, per report the platform has.
  for (const r of delivered) {
    const key = linkedKey(deal.id, r);
    const h = key ? hub.find((i) => i.billingKey === key) : undefined;
    if (!h) continue;
    const s = h.providerInvoiceId ? byStripeId.get(h.providerInvoiceId) : undefined;
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
        ...(h.providerInvoiceId ? { stripeInvoiceId: h.providerInvoiceId } : {}),
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
        ...(h.providerInvoiceId ? { stripeInvoiceId: h.providerInvoiceId } : {}),
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
  if (!r.factKey.startsWith(prefix)) return null;
  // A billing key starts with the deal id; a monthly fee's change or end (`…|<item>|change|<month>`) names none.
  const key = r.factKey.slice(prefix.length);
  return key.startsWith(`${dealId}|`) ? key : null;
}

/** The contracted amount (the domain's one rule): the deal amount, else what its plan adds up to. */
function contractedOf(deal: DealInput): number | null {
  if (deal.amount !== null && deal.amount > 0) return contractedAmount(deal.amount, []);
  if (!deal.billingPlan) return null;
  const parsed = parseBillingPlan(deal.billingPlan, { currency: deal.currency });
  return parsed.ok ? contractedAmount(null, parsed.items) : null;
}
