import { HttpStatus, Injectable } from '@nestjs/common';

import { contractedAmount, parseBillingPlan } from '../billing/billing-plan';
import { formatMoney } from '../billing/money';
import { DomainException } from '../common/domain.exception';
import { PermanentError } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { StripeClient } from '../connectors/stripe/stripe.client';
import { StripeInvoiceView } from '../connectors/stripe/stripe.types';
import { Invoice, InvoiceState, Prisma } from '../generated/prisma/client';
import { PrismaService } from '../prisma/prisma.service';
import { toCsv } from './csv';
import { INVOICED_STATES } from './deals.service';

export type MismatchKind =
  'missing_invoice' | 'duplicate_invoice' | 'amount_differs' | 'unknown_invoice' | 'status_differs';

export interface Mismatch {
  kind: MismatchKind;
  billingKey?: string;
  stripeInvoiceId?: string;
  message: string;
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

export interface ReconciliationReport {
  generatedAt: string;
  summary: { deals: number; dealsWithMismatches: number; mismatches: number };
  deals: ReconciledDeal[];
}

type HubInvoice = Pick<
  Invoice,
  | 'billingKey'
  | 'itemKey'
  | 'period'
  | 'state'
  | 'amount'
  | 'stripeInvoiceId'
  | 'stripeNumber'
  | 'stripeCustomerId'
  | 'lastError'
>;

export interface DealInput {
  id: string;
  name: string;
  crmDealId: string | null;
  stage: string;
  currency: string;
  amount: number | null;
  billingPlan: unknown;
}

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

/**
 * Compares one deal's hub invoices with the Stripe invoices that belong to it. Pure: the caller
 * reads Stripe and passes what it found, plus the hub's Stripe ids that Stripe does not know.
 */
export function reconcileDeal(
  deal: DealInput,
  hub: readonly HubInvoice[],
  stripe: readonly StripeInvoiceView[],
  missingStripeIds: ReadonlySet<string> = new Set(),
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
] as const;

export function reconciliationCsv(report: ReconciliationReport): string {
  return toCsv([
    [...CSV_HEADER],
    ...report.deals.map((d) => [
      d.dealId,
      d.dealName,
      d.crmDealId,
      d.currency,
      d.contracted,
      d.invoicedHub,
      d.invoicedStripe,
      d.paid,
      d.mismatches.map((m) => `${m.kind}: ${m.message}`).join(' | '),
    ]),
  ]);
}

/** Deals whose Stripe side is read at once (each read also waits for the shared rate limiter). */
const PARALLEL_DEALS = 4;

/**
 * Reconciliation (CONTRACT §6): per deal with a plan or invoices, what was contracted, invoiced in
 * the hub, invoiced and paid in Stripe — read from Stripe itself — and every mismatch named.
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
  ) {}

  async report(opts: { dealId?: string }): Promise<ReconciliationReport> {
    if (!this.config.stripeConfigured) {
      throw new DomainException(
        HttpStatus.SERVICE_UNAVAILABLE,
        'STRIPE_NOT_CONFIGURED',
        'reconciliation reads Stripe: set STRIPE_SECRET_KEY',
      );
    }
    const generatedAt = new Date().toISOString();
    const where: Prisma.DealWhereInput = opts.dealId
      ? { id: opts.dealId }
      : { OR: [{ billingPlan: { not: Prisma.DbNull } }, { invoices: { some: {} } }] };
    const deals = await this.prisma.deal.findMany({
      where,
      orderBy: { id: 'desc' },
      select: {
        id: true,
        name: true,
        crmDealId: true,
        stage: true,
        currency: true,
        amount: true,
        billingPlan: true,
        stripeCustomerId: true,
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
          },
        },
      },
    });
    if (opts.dealId && deals.length === 0) {
      throw new DomainException(HttpStatus.NOT_FOUND, 'NOT_FOUND', `deal ${opts.dealId} not found`);
    }

    const byCustomer = new Map<string, Promise<StripeInvoiceView[]>>();
    const listCustomer = (customer: string) => {
      let pending = byCustomer.get(customer);
      if (!pending) {
        pending = this.stripe.listInvoicesForCustomer(customer);
        byCustomer.set(customer, pending);
      }
      return pending;
    };

    const out: ReconciledDeal[] = [];
    for (let i = 0; i < deals.length; i += PARALLEL_DEALS) {
      const batch = deals.slice(i, i + PARALLEL_DEALS);
      out.push(
        ...(await Promise.all(
          batch.map(async (deal) => {
            const { invoices, missing } = await this.stripeSide(deal, listCustomer);
            return reconcileDeal(deal, deal.invoices, invoices, missing);
          }),
        ).catch((err: unknown) => {
          throw new DomainException(
            HttpStatus.BAD_GATEWAY,
            'STRIPE_UNAVAILABLE',
            `could not read Stripe: ${err instanceof Error ? err.message : String(err)}`,
          );
        })),
      );
    }
    // Deals with mismatches first; otherwise newest first (the query's order, kept by the stable sort).
    out.sort((a, b) => Number(b.mismatches.length > 0) - Number(a.mismatches.length > 0));
    return {
      generatedAt,
      summary: {
        deals: out.length,
        dealsWithMismatches: out.filter((d) => d.mismatches.length > 0).length,
        mismatches: out.reduce((n, d) => n + d.mismatches.length, 0),
      },
      deals: out,
    };
  }

  async csv(opts: { dealId?: string }): Promise<{ generatedAt: string; body: string }> {
    const report = await this.report(opts);
    return { generatedAt: report.generatedAt, body: reconciliationCsv(report) };
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
      this.stripe.searchInvoicesByDeal(deal.id),
    ]);
    for (const inv of listed.flat()) consider(inv);
    for (const inv of searched) consider(inv);

    const missing = new Set<string>();
    for (const id of hubIds) {
      if (found.has(id)) continue;
      try {
        found.set(id, await this.stripe.retrieveInvoice(id));
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
