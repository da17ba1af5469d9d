import { Injectable } from '@nestjs/common';

import { Deal, Prisma } from '../generated/prisma/client';
import { addTimeline } from '../timeline/timeline';
import { newId } from '../common/ids';
import { dbAmount } from '../prisma/db-amount';
import {
  InvoicedMonth,
  PlanItem,
  contractedAmount,
  invoicedMonthErrors,
  parseAdditionalItems,
  parseBillingPlan,
  planPathOf,
} from './billing-plan';
import { formatMoney } from '../domain/money';
import { isYearMonth } from '../domain/monthly-fee';

export interface PlanContext {
  cause: string;
  eventId?: string | null;
  /**
   * The caller has just set the deal's amount from its source (the CRM's amount): it stays the
   * contracted amount whatever the plan adds up to.
   */
  amountGiven?: boolean;
}

/** How the timeline entry of a refused plan begins (the plan.refused alert finds the refusal by it). */
export const PLAN_REFUSED_MESSAGE = 'billing plan refused: ';

export type PlanOutcome =
  /** `keys`: the items added (additional orders). */
  { ok: true; items: number; keys?: string[] } | { ok: false; errors: string[] };

/**
 * Applies a billing plan (CONTRACT §4) to a deal's items inside the caller's transaction (deal row
 * locked). Items are matched by key, so facts already recorded on an item (an acceptance that
 * arrived before the plan, progress, what was billed) survive a plan change; an item that was
 * already invoiced keeps the amount it was invoiced for. A monthly item's months already invoiced
 * never change: a plan that would bill another amount for one of them, leave one out of the term or
 * end before it is refused (its amount changes from a later month with `changes`, and it ends early
 * with `endMonth`).
 *
 * The deal's amount: one the deal was given (CRM, admin) stays; a deal without one takes what the
 * plan adds up to, and keeps following its plan (changes and early end included) while its amount
 * is the one the hub took from the plan in force.
 */
/** "Look at this monthly item on the next tick" (any instant in the past would do). */
const MONTHLY_LOOK_NOW = new Date(0);

@Injectable()
export class BillingPlanService {
  async applyPlan(
    tx: Prisma.TransactionClient,
    deal: Deal,
    input: unknown,
    ctx: PlanContext,
  ): Promise<PlanOutcome> {
    const dealAmount = dbAmount(deal.amount);
    const followsPlan = dealAmount !== null && !ctx.amountGiven && amountFromPlan(deal, dealAmount);
    let ownAmount = dealAmount !== null && !followsPlan;
    let parsed = parseBillingPlan(input, {
      dealAmount: ownAmount ? dealAmount : null,
      currency: deal.currency,
    });
    if (!parsed.ok && followsPlan) {
      // Percent items take the amount the hub took from the earlier plan, as before.
      const asOwn = parseBillingPlan(input, { dealAmount, currency: deal.currency });
      if (asOwn.ok) [parsed, ownAmount] = [asOwn, true];
    }
    if (!parsed.ok) return this.refuse(tx, deal, parsed.errors, ctx);

    const existing = await tx.billingItem.findMany({ where: { dealId: deal.id } });
    const invoices = await tx.invoice.findMany({
      where: { dealId: deal.id },
      select: { itemKey: true, period: true, amount: true },
    });
    const invoiced = new Set(invoices.map((i) => i.itemKey));
    const plan = parsed.plan;
    const monthErrors = parsed.items.flatMap((item) =>
      invoicedMonthErrors(
        planPathOf(plan, item),
        item,
        invoicedMonths(invoices, item.key),
        deal.currency,
      ),
    );
    if (monthErrors.length > 0) return this.refuse(tx, deal, monthErrors, ctx);

    const notes: string[] = [];
    const keys = new Set(parsed.items.map((i) => i.key));
    for (const item of parsed.items) {
      const current = existing.find((e) => e.key === item.key);
      const currentAmount = current ? dbAmount(current.amount) : undefined;
      // A monthly item's invoiced months were checked above: its amount is that of its first month.
      const keepAmount =
        item.trigger !== 'monthly' &&
        currentAmount !== undefined &&
        invoiced.has(item.key) &&
        currentAmount !== item.amount;
      if (keepAmount) {
        notes.push(
          `${item.key} was already invoiced for ${formatMoney(currentAmount, deal.currency)}; the new amount ${formatMoney(item.amount, deal.currency)} applies to nothing already billed`,
        );
      }
      await this.upsertItem(tx, deal.id, item, 'plan', keepAmount ? currentAmount : undefined);
    }
    for (const old of existing) {
      if (old.addedBy === 'plan' && !keys.has(old.key) && !old.removed) {
        if (invoiced.has(old.key)) {
          notes.push(`${old.key} is no longer in the plan but was already invoiced; kept`);
          continue;
        }
        await tx.billingItem.update({ where: { id: old.id }, data: { removed: true } });
      }
    }
    const currency = plan.currency;
    await tx.deal.update({
      where: { id: deal.id },
      data: {
        billingPlan: plan as unknown as Prisma.InputJsonValue,
        planError: null,
        currency,
        amount: ownAmount ? dealAmount : contractedAmount(null, parsed.items),
        version: { increment: 1 },
      },
    });
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'plan',
      message: `billing plan set: ${parsed.items.length} item(s), ${parsed.items
        .map(
          (i) =>
            `${i.label} ${formatMoney(i.amount, currency)} (${i.trigger})${monthlyTermsText(i, currency)}`,
        )
        .join(', ')}${notes.length ? `; ${notes.join('; ')}` : ''}`,
      cause: ctx.cause,
      eventId: ctx.eventId,
    });
    return { ok: true, items: parsed.items.length };
  }

  /**
   * A refused plan: the deal keeps the plan in force and shows why (planError, a `refused`
   * timeline entry that the plan.refused alert finds). The same refusal again records nothing new.
   */
  private async refuse(
    tx: Prisma.TransactionClient,
    deal: Deal,
    errors: string[],
    ctx: PlanContext,
  ): Promise<PlanOutcome> {
    const planError = errors.join('; ');
    if (deal.planError === planError) return { ok: false, errors };
    await tx.deal.update({
      where: { id: deal.id },
      data: { planError, version: { increment: 1 } },
    });
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'refused',
      message: `${PLAN_REFUSED_MESSAGE}${planError}`,
      cause: ctx.cause,
      eventId: ctx.eventId,
      details: { errors },
    });
    return { ok: false, errors };
  }

  /** order.additional (追加発注): new items with new keys, billed on their own triggers. */
  async addItems(
    tx: Prisma.TransactionClient,
    deal: Deal,
    description: string,
    items: unknown[],
    ctx: PlanContext,
  ): Promise<PlanOutcome> {
    const existing = await tx.billingItem.findMany({
      where: { dealId: deal.id, removed: false },
      select: { key: true, position: true },
    });
    const taxRate = (deal.billingPlan as { taxRatePercent?: number } | null)?.taxRatePercent;
    const parsed = parseAdditionalItems(
      items,
      existing.map((e) => e.key),
      { dealAmount: dbAmount(deal.amount), currency: deal.currency, taxRatePercent: taxRate },
    );
    if (!parsed.ok) return { ok: false, errors: parsed.errors };
    const base = existing.reduce((max, e) => Math.max(max, e.position), -1) + 1;
    for (const [i, item] of parsed.items.entries()) {
      await this.upsertItem(tx, deal.id, { ...item, position: base + i }, 'order.additional');
    }
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'plan',
      message: `additional order "${description}": ${parsed.items
        .map((i) => `${i.label} ${formatMoney(i.amount, deal.currency)} (${i.trigger})`)
        .join(', ')}`,
      cause: ctx.cause,
      eventId: ctx.eventId,
    });
    return { ok: true, items: parsed.items.length, keys: parsed.items.map((i) => i.key) };
  }

  /**
   * The item an event names, created as a placeholder (removed, amount 0) when the plan does not
   * have it yet: the fact is kept and billed once a plan with that key arrives.
   */
  async itemForEvent(tx: Prisma.TransactionClient, dealId: string, key: string) {
    const found = await tx.billingItem.findUnique({ where: { dealId_key: { dealId, key } } });
    if (found) return found;
    await tx.billingItem.createMany({
      data: [
        {
          id: newId('item'),
          dealId,
          key,
          label: key,
          trigger: 'milestone.accepted',
          amount: 0,
          taxRatePercent: 0,
          position: 1000,
          addedBy: 'event',
          removed: true,
        },
      ],
      skipDuplicates: true,
    });
    return tx.billingItem.findUniqueOrThrow({ where: { dealId_key: { dealId, key } } });
  }

  private async upsertItem(
    tx: Prisma.TransactionClient,
    dealId: string,
    item: PlanItem,
    addedBy: string,
    keepAmount?: number,
  ): Promise<void> {
    const fields = {
      label: item.label,
      trigger: item.trigger,
      amount: keepAmount ?? item.amount,
      percent: item.percent ?? null,
      taxRatePercent: item.taxRatePercent,
      expectedInvoiceDate: item.expectedInvoiceDate ?? null,
      acceptanceDays: item.acceptanceDays ?? null,
      silentApproval: item.silentApproval,
      startOn: item.startOn ?? null,
      months: item.months ?? null,
      monthlyChanges: item.monthlyChanges
        ? (item.monthlyChanges as unknown as Prisma.InputJsonValue)
        : Prisma.DbNull,
      endMonth: item.endMonth ?? null,
      // A monthly item (new or changed) is due for a look by the worker's clock, which then
      // records its real next billing instant (BillingService.materialize).
      nextDueAt: item.trigger === 'monthly' ? MONTHLY_LOOK_NOW : null,
      position: item.position,
      removed: false,
    };
    await tx.billingItem.upsert({
      where: { dealId_key: { dealId, key: item.key } },
      create: { id: newId('item'), dealId, key: item.key, addedBy, ...fields },
      update: { ...fields, ...(addedBy === 'plan' ? {} : { addedBy }) },
    });
  }
}

/** Whether the deal's amount is the one the hub took from its plan in force (it had none of its own). */
function amountFromPlan(deal: Deal, dealAmount: number): boolean {
  if (deal.billingPlan === null) return false;
  const current = parseBillingPlan(deal.billingPlan, { currency: deal.currency });
  return current.ok && contractedAmount(null, current.items) === dealAmount;
}

/** The months of a monthly item that have an invoice (any state, re-bills alike), with its amount. */
function invoicedMonths(
  invoices: readonly { itemKey: string; period: string | null; amount: bigint }[],
  itemKey: string,
): InvoicedMonth[] {
  const months = new Map<string, number>();
  for (const i of invoices) {
    if (i.itemKey !== itemKey || !isYearMonth(i.period) || months.has(i.period)) continue;
    months.set(i.period, dbAmount(i.amount));
  }
  return [...months].map(([month, amount]) => ({ month, amount }));
}

/** A monthly item's changes and end, for the timeline: "; from 2027-03 ¥60,000; ends after 2027-05". */
function monthlyTermsText(item: PlanItem, currency: string): string {
  const parts = (item.monthlyChanges ?? []).map(
    (c) => `from ${c.fromMonth} ${formatMoney(c.amount, currency)}`,
  );
  if (item.endMonth) parts.push(`ends after ${item.endMonth}`);
  return parts.length > 0 ? ` [${parts.join('; ')}]` : '';
}
