import { Readable } from 'node:stream';

import { HttpStatus, Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { z } from 'zod';

import { OPEN_INVOICE_STATES, PARKED_BILLING_SQL } from '../billing/due-not-issued';
import { DomainException } from '../common/domain.exception';
import { AdminErrorCode } from './admin-error-code';
import { CommonErrorCode } from '../common/error-code';
import { PermanentError } from '../common/errors';
import { Semaphore } from '../common/semaphore';
import { AppConfig } from '../config/app-config';
import { Prisma } from '../generated/prisma/client';
import { dbAmount } from '../prisma/db-amount';
import { PrismaService } from '../prisma/prisma.service';
import { InvoiceView, InvoicingPort } from '../ports/invoicing.port';
import { toCsv } from './csv';
import { page, pageQuery } from './pagination';
import { reconcileDeal } from './reconcile-deal';
import { CSV_HEADER, csvRecord } from './reconciliation-csv';
import { DueFacts, ReconciledDeal, ReconciliationReport } from './reconciliation.types';

export { reconcileDeal } from './reconcile-deal';
export { CSV_HEADER, reconciliationCsv } from './reconciliation-csv';
export type * from './reconciliation.types';

/**
 * `limit` (1–200, default 50) deals per page, `cursor` (opaque: the `nextCursor` of the page
 * before), `dealId` (that deal alone, whatever its plan and invoices; no paging).
 */
export const reconciliationPageQuery = pageQuery.extend({
  dealId: z.string().trim().min(1).optional(),
});
export type ReconciliationPageQuery = Partial<z.output<typeof reconciliationPageQuery>>;

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
  billingCustomerId: true,
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
      providerInvoiceId: true,
      invoiceNumber: true,
      billingCustomerId: true,
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
    private readonly stripe: InvoicingPort,
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
        AdminErrorCode.StripeNotConfigured,
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
        throw new DomainException(
          HttpStatus.NOT_FOUND,
          CommonErrorCode.NotFound,
          `deal ${q.dealId} not found`,
        );
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
    const byCustomer = new Map<string, Promise<InvoiceView[]>>();
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
        AdminErrorCode.StripeUnavailable,
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
      billingCustomerId: string | null;
      invoices: { providerInvoiceId: string | null; billingCustomerId: string | null }[];
    },
    listCustomer: (customer: string) => Promise<InvoiceView[]>,
  ): Promise<{ invoices: InvoiceView[]; missing: Set<string> }> {
    const customers = new Set<string>();
    if (deal.billingCustomerId) customers.add(deal.billingCustomerId);
    for (const inv of deal.invoices)
      if (inv.billingCustomerId) customers.add(inv.billingCustomerId);
    const hubIds = new Set(
      deal.invoices.map((i) => i.providerInvoiceId).filter((id): id is string => id !== null),
    );

    const found = new Map<string, InvoiceView>();
    const consider = (inv: InvoiceView) => {
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
