import { Injectable } from '@nestjs/common';

import { Clock } from '../common/clock';
import { newId } from '../common/ids';
import { AppConfig } from '../config/app-config';
import { BillingItem, Deal, Invoice, InvoiceState, Prisma } from '../generated/prisma/client';
import { addTimeline } from '../timeline/timeline';
import { dbAmount } from '../prisma/db-amount';
import { BILLING_ITEM_COLUMNS } from '../prisma/model-columns';
import { isWonOrLater } from '../domain/deal-stage';
import {
  CONFIRMED_STATES,
  INVOICE_STATE_RANK,
  invoiceStateForEvent,
} from '../domain/invoice-state';
import { OutboxService } from '../queue/outbox/outbox.service';
import { JobName } from '../queue/job-name.enum';
import { billingJobId, billingKeyFor } from '../domain/billing-key';
import { monthlyPeriodsDue, nextMonthlyDate } from '../domain/calendar';
import { formatMoney, percentOf, taxOf } from '../domain/money';
import { amountForMonth, monthlyTermsOf } from '../domain/monthly-fee';

/** Item billing statuses as CONTRACT §4 names them (the dashboard labels each one). */
export const BILLING_STATUSES = [
  'NOT_READY',
  'READY',
  'INVOICE_CREATED',
  'INVOICE_POSTED',
  'PAID',
  'VOID',
] as const;
export type BillingStatus = (typeof BILLING_STATUSES)[number];

const STATUS_OF: Record<InvoiceState, BillingStatus> = {
  PENDING: 'READY',
  CREATING: 'READY',
  CREATED: 'INVOICE_CREATED',
  POSTED: 'INVOICE_POSTED',
  PAID: 'PAID',
  VOID: 'VOID',
  UNCOLLECTIBLE: 'VOID',
};

export interface BillingContext {
  cause: string;
  eventId?: string | null;
  correlationId: string;
  now?: Date;
}

/** The invoicing system's view of an invoice as an invoice.* event carries it. */
export interface InvoiceEvent {
  kind: string;
  providerInvoiceId: string;
  status?: string;
  number?: string;
  amountPaid?: number;
  hostedInvoiceUrl?: string;
  invoicePdfUrl?: string;
  total?: number;
  /** The invoice's own tax (with its total): replaces the hub's estimate on the row. */
  tax?: number;
}

/**
 * The database side of billing: which invoices a deal owes (one row per billing key, created
 * under the deal's row lock) and what Stripe said about them. The Stripe calls themselves are
 * made by InvoiceIssuer, once per billing key (docs/decisions/0004).
 */
@Injectable()
export class BillingService {
  constructor(
    private readonly outbox: OutboxService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  /** A deal's current plan items, in plan order. */
  planItems(tx: Prisma.TransactionClient, dealId: string): Promise<BillingItem[]> {
    // Raw: read by every settle on the hot path (src/prisma/model-columns.ts).
    return tx.$queryRaw<BillingItem[]>`
      SELECT ${BILLING_ITEM_COLUMNS} FROM billing_item
       WHERE deal_id = ${dealId} AND NOT removed ORDER BY position`;
  }

  /**
   * Creates the invoice rows (billing keys) of every item whose trigger has fired, once the deal
   * is WON. Runs inside the lifecycle's transaction with the deal row locked; the unique billing
   * key makes a second run (duplicate event, timer, replay) insert nothing.
   */
  async materialize(
    tx: Prisma.TransactionClient,
    deal: Deal,
    ctx: BillingContext,
    /** The deal's plan items (not removed, by position) when the caller already read them. */
    planItems?: BillingItem[],
  ): Promise<string[]> {
    if (!isWonOrLater(deal.stage)) return [];
    const now = ctx.now ?? this.clock.now();
    const items = planItems ?? (await this.planItems(tx, deal.id));
    for (const item of items) {
      if (item.trigger === 'monthly') await this.recordNextDue(tx, deal, item, now);
    }
    const due = items.flatMap((item) =>
      this.dueInvoices(deal, item, now).map((d) => ({
        item,
        due: d,
        billingKey: billingKeyFor(deal.id, item.key, d.period),
      })),
    );
    if (due.length === 0) return [];
    // Only keys not taken yet are inserted: re-inserting an existing key would wait on that invoice
    // row while the issuer holds it, and the issuer then waits on this deal (lock-order deadlock).
    const taken = new Set(
      (
        await tx.$queryRaw<{ billing_key: string }[]>`
          SELECT billing_key FROM invoice WHERE deal_id = ${deal.id}`
      ).map((i) => i.billing_key),
    );
    const created: string[] = [];
    for (const { item, due: d, billingKey } of due) {
      if (taken.has(billingKey)) continue;
      const inserted = await this.insertInvoice(tx, deal, item, billingKey, d, ctx);
      if (!inserted) continue;
      created.push(billingKey);
      if (d.billedPercent !== undefined) {
        await tx.billingItem.update({
          where: { id: item.id },
          data: { billedPercent: d.billedPercent },
        });
      }
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'billing',
        message: `invoice due for ${item.label} (${item.key}${d.period ? ` ${d.period}` : ''}): ${formatMoney(d.amount, deal.currency)} + tax ${item.taxRatePercent}% — ${d.why}`,
        cause: ctx.cause,
        eventId: ctx.eventId,
        details: { billingKey, amount: d.amount, trigger: item.trigger },
      });
    }
    return created;
  }

  /**
   * A monthly item's next billing instant (its first month not yet due at `now`, in the deal's
   * time zone; null when every month is due, or it ended early and its last month is): the worker's
   * clock selects due items by this indexed column instead of looking at every monthly deal on
   * every tick.
   */
  private async recordNextDue(
    tx: Prisma.TransactionClient,
    deal: Deal,
    item: BillingItem,
    now: Date,
  ): Promise<void> {
    const next =
      item.startOn && item.months
        ? (nextMonthlyDate(
            { startOn: item.startOn, months: item.months, endMonth: item.endMonth },
            now,
            this.config.timeZoneOf(deal),
          )?.dueAt ?? null)
        : null;
    if ((item.nextDueAt?.getTime() ?? null) === (next?.getTime() ?? null)) return;
    await tx.billingItem.update({ where: { id: item.id }, data: { nextDueAt: next } });
  }

  /** The invoices an item owes now (before de-duplication by billing key). */
  private dueInvoices(
    deal: Deal,
    item: BillingItem,
    now: Date,
  ): { period?: string; amount: number; why: string; billedPercent?: number }[] {
    const itemAmount = dbAmount(item.amount);
    if (itemAmount <= 0) return [];
    switch (item.trigger) {
      case 'contract.signed':
        return [{ amount: itemAmount, why: 'the contract is signed' }];
      case 'milestone.accepted':
        if (!item.acceptedAt) return [];
        return [
          {
            amount: itemAmount,
            why:
              item.acceptedBy === 'silent approval'
                ? 'accepted by silent approval'
                : 'milestone accepted',
          },
        ];
      case 'milestone.progress': {
        const pct = Math.min(100, item.progressPercent);
        if (pct <= item.billedPercent) return [];
        const amount = percentOf(itemAmount, pct) - percentOf(itemAmount, item.billedPercent);
        if (amount <= 0) return [];
        return [
          {
            period: `p${pct}`,
            amount,
            why: `progress ${item.billedPercent}% → ${pct}%`,
            billedPercent: pct,
          },
        ];
      }
      case 'monthly': {
        // Each month at the amount in force then (changes), none after an early end.
        const terms = monthlyTermsOf({ ...item, amount: itemAmount });
        if (!terms) return [];
        return monthlyPeriodsDue(terms, now, this.config.timeZoneOf(deal)).map((p) => ({
          period: p.period,
          amount: amountForMonth(terms, p.period),
          why: `monthly billing date ${p.billingDate} (${this.config.timeZoneOf(deal)})`,
        }));
      }
      default:
        return [];
    }
  }

  /**
   * The invoice row of a billing key and its issue job, in one statement: the job is written only
   * if the row was (a key already taken inserts nothing). Says whether it was.
   */
  private async insertInvoice(
    tx: Prisma.TransactionClient,
    deal: Deal,
    item: BillingItem,
    billingKey: string,
    due: { period?: string; amount: number },
    ctx: BillingContext,
  ): Promise<boolean> {
    const id = newId('inv');
    const description = `${item.label}${due.period && !due.period.startsWith('p') ? ` (${due.period})` : ''} — ${deal.name}`;
    const rows = await tx.$queryRaw<{ billing_key: string }[]>`
      WITH inserted AS (
        INSERT INTO invoice (id, billing_key, deal_id, item_key, period, rebill, amount,
                             tax_rate_percent, tax_amount, currency, description, state, updated_at)
        VALUES (${id}, ${billingKey}, ${deal.id}, ${item.key}, ${due.period ?? null}, 0,
                ${due.amount}, ${item.taxRatePercent}, ${taxOf(due.amount, item.taxRatePercent)},
                ${deal.currency}, ${description}, 'PENDING', now())
        ON CONFLICT (billing_key) DO NOTHING
        RETURNING billing_key),
      job AS (${this.issueJob(deal.id, billingKey, ctx, 'inserted')})
      SELECT billing_key FROM inserted`;
    return rows.length === 1;
  }

  private async enqueueIssue(
    tx: Prisma.TransactionClient,
    dealId: string,
    billingKey: string,
    ctx: BillingContext,
  ): Promise<void> {
    await tx.$executeRaw`${this.issueJob(dealId, billingKey, ctx)}`;
  }

  /** The outbox row of a billing key's issue job (see OutboxService.insertSql). */
  private issueJob(
    dealId: string,
    billingKey: string,
    ctx: BillingContext,
    onRowOf?: string,
  ): Prisma.Sql {
    return this.outbox.insertSql(
      JobName.BillingInvoiceIssue,
      billingJobId(billingKey),
      { correlationId: ctx.correlationId, billingKey, dealId },
      onRowOf,
    );
  }

  /**
   * Applies an invoice.* event to the invoice row it names (by id or billing key). States only
   * move forward, so a late invoice.finalized after invoice.paid changes nothing.
   */
  async applyInvoiceEvent(
    tx: Prisma.TransactionClient,
    invoice: Invoice,
    ev: InvoiceEvent,
    ctx: BillingContext,
  ): Promise<{ changed: boolean; state: InvoiceState; confirmed: boolean }> {
    const next = invoiceStateForEvent(ev.kind);
    const data: Prisma.InvoiceUpdateInput = {};
    if (!invoice.providerInvoiceId) data.providerInvoiceId = ev.providerInvoiceId;
    if (ev.number && !invoice.invoiceNumber) data.invoiceNumber = ev.number;
    if (ev.hostedInvoiceUrl && !invoice.hostedInvoiceUrl)
      data.hostedInvoiceUrl = ev.hostedInvoiceUrl;
    if (ev.invoicePdfUrl && !invoice.invoicePdfUrl) data.invoicePdfUrl = ev.invoicePdfUrl;
    if (ev.total !== undefined && invoice.total === null) {
      data.total = ev.total;
      if (ev.tax !== undefined) data.taxAmount = ev.tax;
    }
    let state = invoice.state;
    if (next && INVOICE_STATE_RANK[next] > INVOICE_STATE_RANK[invoice.state]) {
      state = next;
      data.state = next;
      if (next === 'POSTED') data.postedAt = this.clock.now();
      if (next === 'PAID') {
        data.paidAt = this.clock.now();
        data.amountPaid = ev.amountPaid ?? invoice.total ?? invoice.amount;
      }
      if (next === 'VOID' || next === 'UNCOLLECTIBLE') data.voidedAt = this.clock.now();
    }
    const changed = Object.keys(data).length > 0;
    if (changed) await tx.invoice.update({ where: { id: invoice.id }, data });
    await addTimeline(tx, {
      dealId: invoice.dealId,
      kind: 'billing',
      message:
        state !== invoice.state
          ? `Stripe ${ev.kind}: invoice ${ev.number ?? ev.providerInvoiceId} ${invoice.state} → ${state}`
          : `Stripe ${ev.kind}: invoice ${ev.number ?? ev.providerInvoiceId} already ${invoice.state} (no change)`,
      cause: ctx.cause,
      eventId: ctx.eventId,
      details: { billingKey: invoice.billingKey, stripeInvoiceId: ev.providerInvoiceId },
    });
    // Confirmed by the invoicing system's word (e.g. the hub crashed before recording its own
    // send): the caller (the lifecycle) derives the 確定報告 and the CRM sync from it.
    const confirmed = state !== invoice.state && CONFIRMED_STATES.includes(state);
    return { changed: state !== invoice.state, state, confirmed };
  }

  /**
   * Explicit admin re-bill of an item whose latest invoice is void (CONTRACT §4): a new billing
   * key `…|r<n>`, so the voided one stays on record and the new one is again exactly-once.
   */
  async rebill(
    tx: Prisma.TransactionClient,
    deal: Deal,
    item: BillingItem,
    voided: Invoice,
    ctx: BillingContext,
  ): Promise<string> {
    const rebill = voided.rebill + 1;
    const billingKey = billingKeyFor(deal.id, item.key, voided.period, rebill);
    const id = newId('inv');
    await tx.invoice.create({
      data: {
        id,
        billingKey,
        dealId: deal.id,
        itemKey: item.key,
        period: voided.period,
        rebill,
        amount: voided.amount,
        taxRatePercent: voided.taxRatePercent,
        taxAmount: voided.taxAmount,
        currency: voided.currency,
        description: voided.description,
      },
    });
    await this.enqueueIssue(tx, deal.id, billingKey, ctx);
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'billing',
      message: `re-bill of ${item.label} (${item.key}) after void of ${voided.invoiceNumber ?? voided.providerInvoiceId ?? voided.billingKey}`,
      cause: ctx.cause,
      details: { billingKey, replaces: voided.billingKey },
    });
    return billingKey;
  }
}

/** An item's billing status from its invoices (latest decides) and whether its trigger fired. */
export function itemBillingStatus(invoices: Pick<Invoice, 'state' | 'createdAt'>[]): BillingStatus {
  if (invoices.length === 0) return 'NOT_READY';
  const latest = [...invoices].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0];
  return STATUS_OF[latest.state];
}
