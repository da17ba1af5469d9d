import { Injectable } from '@nestjs/common';

import { Deal, Prisma } from '../generated/prisma/client';
import { addTimeline } from '../timeline/timeline';
import { newId } from '../common/ids';
import { dbAmount } from '../prisma/db-amount';
import { PlanItem, contractedAmount, parseAdditionalItems, parseBillingPlan } from './billing-plan';
import { formatMoney } from '../domain/money';

export interface PlanContext {
  cause: string;
  eventId?: string | null;
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
 * already invoiced keeps the amount it was invoiced for.
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
    const parsed = parseBillingPlan(input, { dealAmount, currency: deal.currency });
    if (!parsed.ok) {
      await tx.deal.update({
        where: { id: deal.id },
        data: { planError: parsed.errors.join('; '), version: { increment: 1 } },
      });
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'refused',
        message: `${PLAN_REFUSED_MESSAGE}${parsed.errors.join('; ')}`,
        cause: ctx.cause,
        eventId: ctx.eventId,
        details: { errors: parsed.errors },
      });
      return { ok: false, errors: parsed.errors };
    }
    const existing = await tx.billingItem.findMany({ where: { dealId: deal.id } });
    const invoiced = new Set(
      (
        await tx.invoice.findMany({
          where: { dealId: deal.id },
          select: { itemKey: true },
          distinct: ['itemKey'],
        })
      ).map((i) => i.itemKey),
    );
    const notes: string[] = [];
    const keys = new Set(parsed.items.map((i) => i.key));
    for (const item of parsed.items) {
      const current = existing.find((e) => e.key === item.key);
      const currentAmount = current ? dbAmount(current.amount) : undefined;
      const keepAmount =
        currentAmount !== undefined && invoiced.has(item.key) && currentAmount !== item.amount;
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
    const currency = parsed.plan.currency;
    await tx.deal.update({
      where: { id: deal.id },
      data: {
        billingPlan: parsed.plan as unknown as Prisma.InputJsonValue,
        planError: null,
        currency,
        amount: dealAmount ?? contractedAmount(parsed.plan, parsed.items, dealAmount),
        version: { increment: 1 },
      },
    });
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'plan',
      message: `billing plan set: ${parsed.items.length} item(s), ${parsed.items
        .map((i) => `${i.label} ${formatMoney(i.amount, currency)} (${i.trigger})`)
        .join(', ')}${notes.length ? `; ${notes.join('; ')}` : ''}`,
      cause: ctx.cause,
      eventId: ctx.eventId,
    });
    return { ok: true, items: parsed.items.length };
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
