/**
 * The billing plan (CONTRACT §4): what a deal is billed for, when, and how much.
 *
 * Pure: validates the JSON a user typed into HubSpot's `closeloop_billing_plan` property (or sent
 * through the admin API / an `order.additional` milestone webhook) and resolves every item to an
 * integer amount in the currency's smallest unit, tax-exclusive.
 *
 * Validation runs in two phases. Phase 1 is the zod schema: types, ranges, formats and unknown
 * fields (objects are strict, so a typo such as `triger` is an error instead of being ignored).
 * Phase 2 runs only when phase 1 passed and checks the rules that span fields and items (exactly
 * one of amount/percent, trigger-specific fields, unique keys, sums against the deal amount, the
 * deal's currency). Every error is one line `<json path>: <what is wrong>`, e.g.
 * `items[1].percent: must be between 0 and 100`.
 *
 * Limits (CONTRACT §4): a plan has up to MAX_ITEMS (500) items; every amount, the deal's included,
 * is an integer up to MAX_AMOUNT (999,999,999,999) in the smallest unit; and one invoice of an
 * item, tax included, must fit what Stripe takes on one invoice (STRIPE_MAX_INVOICE_TOTAL,
 * 99,999,999), else the item is refused with that reason (see invoiceLimitError).
 *
 * The schema and output types live in billing-plan.schema.ts, the rules across fields and the
 * plan's arithmetic in billing-plan.rules.ts; everything is importable from here.
 */
import { z } from 'zod';

import { contractedAmount } from '../domain/contracted-amount';
import { MAX_AMOUNT, groupDigits } from '../domain/money';
import {
  checkItem,
  countDuplicates,
  hasDealAmount,
  invoiceLimitError,
  monthlyTermsErrors,
  sumDecimals,
} from './billing-plan.rules';
import {
  BillingPlan,
  MAX_ITEMS,
  MONTHLY_ITEM_KEY,
  MONTHLY_ITEM_LABEL,
  ParsePlanResult,
  PlanContext,
  PlanItem,
  billingPlanSchema,
  planItemInputSchema,
  tooManyItems,
  unique,
  zodErrors,
} from './billing-plan.schema';

export {
  BILLING_COUNTS,
  ITEM_KEY_PATTERN,
  MAX_ITEMS,
  MAX_MONTHS,
  MONTHLY_ITEM_KEY,
  MONTHLY_ITEM_LABEL,
  TRIGGERS,
  billingPlanSchema,
  formatPath,
  isIsoDate,
  monthlySchema,
  planItemInputSchema,
} from './billing-plan.schema';
export type {
  BillingCount,
  BillingPlan,
  BillingPlanInput,
  MonthlyFee,
  ParsePlanResult,
  PlanContext,
  PlanItem,
  PlanItemInput,
  Trigger,
} from './billing-plan.schema';
export {
  invoiceLimitError,
  invoicedMonthErrors,
  planPathOf,
  type InvoicedMonth,
} from './billing-plan.rules';
export { contractedAmount } from '../domain/contracted-amount';

function parseJsonInput(input: unknown): { value: unknown } | { error: string } {
  if (typeof input !== 'string') return { value: input };
  try {
    return { value: JSON.parse(input) as unknown };
  } catch (err) {
    return { error: `plan: invalid JSON (${(err as Error).message})` };
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates a billing plan and resolves its items.
 *
 * `input` is the plan object or its JSON text (HubSpot stores `closeloop_billing_plan` as a
 * string). `ctx.dealAmount` is the deal's tax-exclusive amount in the smallest unit (percent items
 * need it; one-off amounts must not add up to more than it); `ctx.currency` is the deal's currency.
 *
 * For `billingCount: 'monthly_fixed'` the plan-level `monthly` block becomes an extra item
 * `{ key: 'monthly', trigger: 'monthly', ... }` after the listed items, with its `changes`
 * (`monthlyChanges`) and `endMonth`.
 */
export function parseBillingPlan(input: unknown, ctx: PlanContext = {}): ParsePlanResult {
  const json = parseJsonInput(input);
  if ('error' in json) return { ok: false, errors: [json.error] };
  if (!isPlainObject(json.value)) {
    return { ok: false, errors: ['plan: must be a JSON object'] };
  }

  const parsed = billingPlanSchema.safeParse(json.value);
  if (!parsed.success) return { ok: false, errors: zodErrors(parsed.error) };
  const plan = parsed.data;

  const errors: string[] = [];

  if (ctx.currency != null && ctx.currency !== '' && ctx.currency.toLowerCase() !== plan.currency) {
    errors.push(
      `currency: plan is in ${plan.currency} but the deal is in ${ctx.currency.toLowerCase()}`,
    );
  }

  const monthlyFixed = plan.billingCount === 'monthly_fixed';
  if (monthlyFixed && plan.monthly === undefined) {
    errors.push('monthly: required when billingCount is monthly_fixed');
  }
  if (!monthlyFixed && plan.monthly !== undefined) {
    errors.push('monthly: only allowed when billingCount is monthly_fixed');
  }
  if (!monthlyFixed && plan.items.length === 0) {
    errors.push('items: must have at least one item (only a monthly_fixed plan may have none)');
  }
  if (monthlyFixed && plan.monthly !== undefined && plan.items.length >= MAX_ITEMS) {
    // The monthly fee becomes an item of its own.
    errors.push(`items: ${tooManyItems(plan.items, 'this one has the monthly fee and')}`);
  }
  if (typeof ctx.dealAmount === 'number' && ctx.dealAmount > MAX_AMOUNT) {
    errors.push(
      `deal amount: ${groupDigits(ctx.dealAmount)} is more than the hub takes (at most ${groupDigits(MAX_AMOUNT)})`,
    );
  }

  errors.push(...countDuplicates(plan.items.map((i) => i.key)));

  const items: PlanItem[] = [];
  plan.items.forEach((item, index) => {
    const at = `items[${index}]`;
    if (monthlyFixed && item.key === MONTHLY_ITEM_KEY) {
      errors.push(
        `${at}.key: "${MONTHLY_ITEM_KEY}" is reserved for the plan's monthly fee when billingCount is monthly_fixed`,
      );
    }
    const result = checkItem(item, at, index, {
      dealAmount: ctx.dealAmount,
      taxRatePercent: plan.taxRatePercent,
      additional: false,
    });
    errors.push(...result.errors);
    if (result.resolved) items.push(result.resolved);
  });

  const percentTotal = sumDecimals(plan.items.map((i) => i.percent ?? 0));
  if (percentTotal > 100) {
    errors.push(`items: percents add up to ${percentTotal}, more than 100`);
  }

  if (monthlyFixed && plan.monthly !== undefined) {
    const tooLarge = invoiceLimitError(
      'monthly.amount',
      { key: MONTHLY_ITEM_KEY, trigger: 'monthly' },
      plan.monthly.amount,
      plan.taxRatePercent,
    );
    if (tooLarge) errors.push(tooLarge);
    errors.push(
      ...monthlyTermsErrors('monthly', MONTHLY_ITEM_KEY, plan.monthly, plan.taxRatePercent),
    );
  }

  if (errors.length === 0 && hasDealAmount(ctx.dealAmount)) {
    const oneOff = items.filter((i) => i.trigger !== 'monthly').reduce((s, i) => s + i.amount, 0);
    if (oneOff > ctx.dealAmount) {
      errors.push(
        `items: one-off amounts add up to ${oneOff}, more than the deal amount ${ctx.dealAmount}`,
      );
    }
  }

  if (monthlyFixed && plan.monthly !== undefined) {
    const fee: PlanItem = {
      key: MONTHLY_ITEM_KEY,
      label: MONTHLY_ITEM_LABEL,
      trigger: 'monthly',
      amount: plan.monthly.amount,
      taxRatePercent: plan.taxRatePercent,
      silentApproval: false,
      startOn: plan.monthly.startOn,
      months: plan.monthly.months,
      position: plan.items.length,
    };
    const changes = plan.monthly.changes ?? [];
    if (changes.length > 0) {
      fee.monthlyChanges = changes.map((c) => ({ fromMonth: c.fromMonth, amount: c.amount }));
    }
    if (plan.monthly.endMonth !== undefined) fee.endMonth = plan.monthly.endMonth;
    items.push(fee);
  }

  if (errors.length === 0) {
    // Every invoice fits Stripe, but 500 items × 120 months could still add up beyond the hub's
    // largest amount, which the plan's contracted value (a deal amount) must not exceed.
    const total = contractedAmount(null, items);
    if (total > MAX_AMOUNT) {
      errors.push(
        `items: the plan adds up to ${groupDigits(total)}, more than the hub takes (at most ${groupDigits(MAX_AMOUNT)})`,
      );
    }
  }

  if (errors.length > 0) return { ok: false, errors: unique(errors) };

  return { ok: true, plan, items };
}

export interface AdditionalItemsContext extends PlanContext {
  /** Tax rate of the new items; defaults to `plan.taxRatePercent`, else 0. */
  taxRatePercent?: number | null;
  /**
   * The deal's validated plan, when the caller has it: supplies the tax rate, reserves "monthly" on
   * a monthly_fixed plan, and the result's plan is this plan with the new items appended.
   */
  plan?: BillingPlan;
  /** Position of the first new item; defaults to `existingKeys.length`. */
  firstPosition?: number;
}

/**
 * Validates the items of an `order.additional` (追加発注, CONTRACT §3.4): same item shape as the
 * plan, their keys must be new (not in `existingKeys`, nor "monthly" on a monthly_fixed plan, nor
 * repeated), and amounts only (a percent of the original deal amount is ambiguous once the order
 * grows, so percent items are refused). Additional orders add to the deal's value, so they are not
 * checked against the deal amount.
 *
 * On success `items` holds only the new, resolved items; `plan` is `ctx.plan` with the new raw items
 * appended or, without `ctx.plan`, a plan fragment (ctx's currency and tax rate, one_time) holding
 * only the new items.
 */
export function parseAdditionalItems(
  items: unknown[],
  existingKeys: readonly string[],
  ctx: AdditionalItemsContext = {},
): ParsePlanResult {
  if (!Array.isArray(items)) return { ok: false, errors: ['items: must be an array of items'] };
  if (items.length === 0) {
    return { ok: false, errors: ['items: an additional order must add at least one item'] };
  }
  if (existingKeys.length + items.length > MAX_ITEMS) {
    return {
      ok: false,
      errors: [
        `items: a plan has at most ${MAX_ITEMS} items (the plan has ${existingKeys.length}, the order adds ${items.length})`,
      ],
    };
  }
  const parsed = z.array(planItemInputSchema).safeParse(items);
  if (!parsed.success) return { ok: false, errors: zodErrors(parsed.error, ['items']) };

  const taken = new Set(existingKeys);
  if (ctx.plan?.billingCount === 'monthly_fixed') taken.add(MONTHLY_ITEM_KEY);
  const taxRatePercent = ctx.taxRatePercent ?? ctx.plan?.taxRatePercent ?? 0;
  const firstPosition = ctx.firstPosition ?? existingKeys.length;

  const errors: string[] = [];
  errors.push(...countDuplicates(parsed.data.map((i) => i.key)));
  const resolved: PlanItem[] = [];
  parsed.data.forEach((item, index) => {
    const at = `items[${index}]`;
    if (taken.has(item.key)) errors.push(`${at}.key: "${item.key}" already exists in the plan`);
    const result = checkItem(item, at, firstPosition + index, {
      dealAmount: null,
      taxRatePercent,
      additional: true,
    });
    errors.push(...result.errors);
    if (result.resolved) resolved.push(result.resolved);
  });
  if (errors.length > 0) return { ok: false, errors: unique(errors) };

  const plan: BillingPlan = ctx.plan
    ? { ...ctx.plan, items: [...ctx.plan.items, ...parsed.data] }
    : {
        currency: (ctx.currency ?? '').toLowerCase(),
        taxRatePercent,
        billingCount: 'one_time',
        items: parsed.data,
      };
  return { ok: true, plan, items: resolved };
}
