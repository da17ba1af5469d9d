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
 */
import { z } from 'zod';

import {
  MAX_AMOUNT,
  STRIPE_MAX_INVOICE_TOTAL,
  groupDigits,
  percentOf,
  taxOf,
} from '../domain/money';

export const TRIGGERS = [
  'contract.signed',
  'milestone.accepted',
  'milestone.progress',
  'monthly',
] as const;
export type Trigger = (typeof TRIGGERS)[number];

export const BILLING_COUNTS = ['one_time', 'monthly_variable', 'monthly_fixed'] as const;
export type BillingCount = (typeof BILLING_COUNTS)[number];

/** The most items a plan has, additional orders included (CONTRACT §4). */
export const MAX_ITEMS = 500;
export const MAX_MONTHS = 120;

/** Key of the item a `monthly_fixed` plan's `monthly` block expands into. */
export const MONTHLY_ITEM_KEY = 'monthly';
export const MONTHLY_ITEM_LABEL = '月額 (monthly fee)';

/**
 * Item keys end up in Stripe metadata and in the hub's idempotency keys, which join parts with
 * "|" and ":"; those characters (and anything else outside this set) are refused.
 */
export const ITEM_KEY_PATTERN = /^[A-Za-z0-9_-]{1,40}$/;

// ---------------------------------------------------------------------------------------------
// Phase 1: the zod schema
// ---------------------------------------------------------------------------------------------

/** Error option for a base type: "required" when the field is missing, `message` otherwise. */
function typeError(message: string) {
  return {
    error: (issue: { input?: unknown }) => (issue.input === undefined ? 'required' : message),
  };
}

/** 'YYYY-MM-DD' naming a real calendar day (2026-02-30 is refused). */
export function isIsoDate(value: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return (
    date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day
  );
}

const DATE_MESSAGE = 'must be a valid date in YYYY-MM-DD form';
const isoDate = () => z.string(typeError(DATE_MESSAGE)).refine(isIsoDate, { error: DATE_MESSAGE });

const AMOUNT_MESSAGE = "must be a positive integer (in the currency's smallest unit)";
const AMOUNT_MAX_MESSAGE = `must be at most ${groupDigits(MAX_AMOUNT)} (the largest amount the hub takes)`;
const positiveAmount = () =>
  z
    .number(typeError(AMOUNT_MESSAGE))
    .refine((n) => Number.isSafeInteger(n) && n > 0, { error: AMOUNT_MESSAGE, abort: true })
    .refine((n) => n <= MAX_AMOUNT, { error: AMOUNT_MAX_MESSAGE });

/** `items: a plan has at most 500 items (this one has 501)`. */
const itemCount = { error: (issue: { input?: unknown }) => tooManyItems(issue.input) };
function tooManyItems(items: unknown, what = 'this one has'): string {
  const count = Array.isArray(items) ? items.length : '?';
  return `a plan has at most ${MAX_ITEMS} items (${what} ${count})`;
}

const MONTHS_MESSAGE = `must be a whole number of months from 1 to ${MAX_MONTHS}`;
const monthCount = () =>
  z
    .number(typeError(MONTHS_MESSAGE))
    .refine((n) => Number.isInteger(n) && n >= 1 && n <= MAX_MONTHS, { error: MONTHS_MESSAGE });

const PERCENT_MESSAGE = 'must be between 0 and 100';

export const planItemInputSchema = z.strictObject(
  {
    key: z
      .string(typeError('must be a string'))
      .regex(ITEM_KEY_PATTERN, { error: 'must be 1-40 letters, digits, "_" or "-"' }),
    label: z
      .string(typeError('must be a string'))
      .trim()
      .refine((s) => s.length >= 1 && s.length <= 200, { error: 'must be 1 to 200 characters' }),
    amount: positiveAmount().optional(),
    percent: z
      .number(typeError('must be a number'))
      .refine((n) => n > 0 && n <= 100, { error: PERCENT_MESSAGE })
      .optional(),
    trigger: z.enum(TRIGGERS, typeError(`must be one of ${TRIGGERS.join(', ')}`)),
    expectedInvoiceDate: isoDate().optional(),
    acceptanceDays: z
      .number(typeError('must be a whole number of days from 1 to 365'))
      .refine((n) => Number.isInteger(n) && n >= 1 && n <= 365, {
        error: 'must be a whole number of days from 1 to 365',
      })
      .optional(),
    silentApproval: z.boolean(typeError('must be true or false')).optional(),
    startOn: isoDate().optional(),
    months: monthCount().optional(),
  },
  typeError('must be an object'),
);
export type PlanItemInput = z.output<typeof planItemInputSchema>;

export const monthlySchema = z.strictObject(
  { amount: positiveAmount(), startOn: isoDate(), months: monthCount() },
  typeError('must be an object'),
);
export type MonthlyFee = z.output<typeof monthlySchema>;

export const billingPlanSchema = z.strictObject({
  currency: z
    .string(typeError('must be a 3-letter ISO 4217 currency code'))
    .regex(/^[A-Za-z]{3}$/, { error: 'must be a 3-letter ISO 4217 currency code' })
    .transform((c) => c.toLowerCase()),
  /**
   * Optional and defaults to 0 (no tax): the contract's example states 10 explicitly, and a silent
   * 10% default would be wrong for every non-Japanese deal. A plan that omits it bills without tax.
   */
  taxRatePercent: z
    .number(typeError('must be a number'))
    .refine((n) => n >= 0 && n <= 100, { error: 'must be between 0 and 100' })
    .default(0),
  billingCount: z
    .enum(BILLING_COUNTS, typeError(`must be one of ${BILLING_COUNTS.join(', ')}`))
    .default('one_time'),
  monthly: monthlySchema.optional(),
  /** May be omitted (or empty) only for a monthly_fixed plan; checked in phase 2. */
  items: z
    .array(planItemInputSchema, typeError('must be an array of items'))
    .max(MAX_ITEMS, itemCount)
    .default([]),
});

/** A validated plan: currency lower-cased, defaults applied. */
export type BillingPlan = z.output<typeof billingPlanSchema>;
/** The JSON shape users write. */
export type BillingPlanInput = z.input<typeof billingPlanSchema>;

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

export interface PlanItem {
  key: string;
  label: string;
  trigger: Trigger;
  /**
   * Resolved integer amount, tax-exclusive, in the currency's smallest unit:
   * `percentOf(dealAmount, percent)` (round half up) for percent items, else `amount`.
   * For monthly items, the amount billed each month.
   */
  amount: number;
  /** The percent the amount was resolved from, for percent items. */
  percent?: number;
  /** The plan's tax rate. */
  taxRatePercent: number;
  expectedInvoiceDate?: string;
  acceptanceDays?: number;
  silentApproval: boolean;
  /** Monthly items: first billing day (YYYY-MM-DD) and number of months. */
  startOn?: string;
  months?: number;
  /** 0-based order of the item in the plan (the expanded monthly_fixed fee comes last). */
  position: number;
}

export type ParsePlanResult =
  { ok: true; plan: BillingPlan; items: PlanItem[] } | { ok: false; errors: string[] };

export interface PlanContext {
  /** The deal amount in the smallest unit (tax-exclusive); null/undefined/0 = the deal has none. */
  dealAmount?: number | null;
  /** The deal's currency; when given the plan's currency must match (case-insensitive). */
  currency?: string | null;
}

// ---------------------------------------------------------------------------------------------
// Error formatting
// ---------------------------------------------------------------------------------------------

/** ['items', 1, 'percent'] → "items[1].percent"; the empty path is `root`. */
export function formatPath(path: readonly PropertyKey[], root = 'plan'): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  if (out === '') return root;
  return out.startsWith('[') ? `${root}${out}` : out;
}

function zodErrors(error: z.ZodError, prefix: readonly PropertyKey[] = []): string[] {
  const lines: string[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) lines.push(`${formatPath([...path, key])}: unknown field`);
    } else {
      lines.push(`${formatPath(path)}: ${issue.message}`);
    }
  }
  return unique(lines);
}

function unique(lines: string[]): string[] {
  return [...new Set(lines)];
}

function countDuplicates(keys: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  const errors: string[] = [];
  for (const [key, count] of counts) {
    if (count > 1) {
      const times = count === 2 ? 'twice' : `${count} times`;
      errors.push(`items: keys must be unique ("${key}" appears ${times})`);
    }
  }
  return errors;
}

function hasDealAmount(dealAmount: number | null | undefined): dealAmount is number {
  return typeof dealAmount === 'number' && Number.isFinite(dealAmount) && dealAmount > 0;
}

// ---------------------------------------------------------------------------------------------
// Phase 2: rules across fields
// ---------------------------------------------------------------------------------------------

interface ItemCheckOptions {
  dealAmount: number | null | undefined;
  taxRatePercent: number;
  /** `order.additional`: percents are refused. */
  additional: boolean;
}

/** Checks one structurally valid item; returns its errors and, when none, the resolved item. */
function checkItem(
  item: PlanItemInput,
  at: string,
  position: number,
  options: ItemCheckOptions,
): { errors: string[]; resolved?: PlanItem } {
  const errors: string[] = [];
  const hasAmount = item.amount !== undefined;
  const hasPercent = item.percent !== undefined;

  if (item.trigger === 'monthly') {
    if (hasPercent) errors.push(`${at}.percent: a monthly item takes an amount, not a percent`);
    else if (!hasAmount) errors.push(`${at}.amount: required for a monthly item`);
    if (item.startOn === undefined) errors.push(`${at}.startOn: required for a monthly item`);
    if (item.months === undefined) errors.push(`${at}.months: required for a monthly item`);
  } else {
    if (hasPercent && options.additional) {
      errors.push(`${at}.percent: use amount for additional orders`);
    } else if (hasAmount && hasPercent) {
      errors.push(`${at}: give either amount or percent, not both`);
    } else if (!hasAmount && !hasPercent) {
      errors.push(`${at}: needs an amount or a percent`);
    }
    if (item.startOn !== undefined) {
      errors.push(`${at}.startOn: only allowed when trigger is monthly`);
    }
    if (item.months !== undefined)
      errors.push(`${at}.months: only allowed when trigger is monthly`);
  }

  if (item.silentApproval === true) {
    if (item.trigger !== 'milestone.accepted') {
      errors.push(`${at}.silentApproval: only allowed when trigger is milestone.accepted`);
    }
    if (item.acceptanceDays === undefined) {
      errors.push(`${at}.silentApproval: requires acceptanceDays (the acceptance window)`);
    }
  }

  let amount = item.amount;
  if (hasPercent && !hasAmount && item.trigger !== 'monthly' && !options.additional) {
    const percent = item.percent as number;
    if (!hasDealAmount(options.dealAmount)) {
      errors.push(`${at}.percent: the deal has no amount to take a percent of`);
    } else {
      amount = percentOf(options.dealAmount, percent);
      if (amount === 0) {
        errors.push(`${at}.percent: ${percent}% of ${options.dealAmount} rounds to 0`);
      }
    }
  }

  if (errors.length > 0 || amount === undefined) return { errors };
  const tooLarge = invoiceLimitError(at, item, amount, options.taxRatePercent);
  if (tooLarge) return { errors: [tooLarge] };

  const resolved: PlanItem = {
    key: item.key,
    label: item.label,
    trigger: item.trigger,
    amount,
    taxRatePercent: options.taxRatePercent,
    silentApproval: item.silentApproval ?? false,
    position,
  };
  if (hasPercent) resolved.percent = item.percent;
  if (item.expectedInvoiceDate !== undefined) {
    resolved.expectedInvoiceDate = item.expectedInvoiceDate;
  }
  if (item.acceptanceDays !== undefined) resolved.acceptanceDays = item.acceptanceDays;
  if (item.startOn !== undefined) resolved.startOn = item.startOn;
  if (item.months !== undefined) resolved.months = item.months;
  return { errors, resolved };
}

/**
 * Why one invoice of the item is more than Stripe takes on one invoice, or undefined when it fits.
 *
 * Stripe's amounts have at most eight digits: 99,999,999 in the smallest unit of any currency
 * (¥99,999,999; $999,999.99; provider limit, CONTRACT §4). The limit is on what an invoice charges
 * the customer, so it applies AFTER tax: the hub's invoice for an item is one line of the item's
 * amount with the plan's consumption tax rate, and amount + tax must be at most 99,999,999 (at 10 %
 * the largest item is ¥90,909,090: ¥99,999,999 incl. tax). An item is billed on one invoice; a
 * monthly item on one invoice per month (each month's must fit); a progress item in steps, and one
 * step (0 → 100 %) can bill its whole amount, so its whole amount must fit. The tax is taxOf's
 * exact half-up rounding; Stripe rounds its own, so an item within a unit of the limit is judged
 * by the hub's rounding.
 */
export function invoiceLimitError(
  at: string,
  item: { key: string; trigger: Trigger },
  amount: number,
  taxRatePercent: number,
): string | undefined {
  const tax = taxOf(amount, taxRatePercent);
  const total = amount + tax;
  if (total <= STRIPE_MAX_INVOICE_TOTAL) return undefined;
  const invoice =
    item.trigger === 'monthly'
      ? "one month's invoice"
      : item.trigger === 'milestone.progress'
        ? 'its invoice (one progress step can bill all of it)'
        : 'its invoice';
  const taxed =
    tax > 0
      ? ` incl. tax (${groupDigits(amount)} + ${taxRatePercent}% tax ${groupDigits(tax)})`
      : ' (no tax)';
  return `${at}: item "${item.key}" is too large for one Stripe invoice: ${invoice} would be ${groupDigits(total)}${taxed}, more than Stripe takes on one invoice (${groupDigits(STRIPE_MAX_INVOICE_TOTAL)} in the smallest unit, tax included); split it into items that each fit`;
}

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
 * `{ key: 'monthly', trigger: 'monthly', ... }` after the listed items.
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
  }

  if (errors.length === 0 && hasDealAmount(ctx.dealAmount)) {
    const oneOff = items.filter((i) => i.trigger !== 'monthly').reduce((s, i) => s + i.amount, 0);
    if (oneOff > ctx.dealAmount) {
      errors.push(
        `items: one-off amounts add up to ${oneOff}, more than the deal amount ${ctx.dealAmount}`,
      );
    }
  }

  if (errors.length === 0) {
    // Every invoice fits Stripe, but 500 items × 120 months could still add up beyond the hub's
    // largest amount, which the plan's contracted value (a deal amount) must not exceed.
    const total = contractedAmount(plan, items);
    if (total > MAX_AMOUNT) {
      errors.push(
        `items: the plan adds up to ${groupDigits(total)}, more than the hub takes (at most ${groupDigits(MAX_AMOUNT)})`,
      );
    }
  }

  if (errors.length > 0) return { ok: false, errors: unique(errors) };

  if (monthlyFixed && plan.monthly !== undefined) {
    items.push({
      key: MONTHLY_ITEM_KEY,
      label: MONTHLY_ITEM_LABEL,
      trigger: 'monthly',
      amount: plan.monthly.amount,
      taxRatePercent: plan.taxRatePercent,
      silentApproval: false,
      startOn: plan.monthly.startOn,
      months: plan.monthly.months,
      position: plan.items.length,
    });
  }

  return { ok: true, plan, items };
}

/** Sums percents without float noise (30 + 30.1 + 39.9 is 100, not 100.00000000000001). */
function sumDecimals(values: readonly number[]): number {
  const SCALE = 1e6;
  return values.reduce((sum, v) => sum + Math.round(v * SCALE), 0) / SCALE;
}

/**
 * The contracted amount (tax-exclusive) reported as the deal's value: the deal amount when the deal
 * has one (> 0); otherwise the sum of the one-off item amounts plus, for each monthly item, its
 * amount × months.
 */
export function contractedAmount(
  plan: BillingPlan,
  items: readonly PlanItem[],
  dealAmount?: number | null,
): number {
  if (hasDealAmount(dealAmount)) return dealAmount;
  let total = 0;
  for (const item of items) {
    total += item.trigger === 'monthly' ? item.amount * (item.months ?? 0) : item.amount;
  }
  // A monthly_fixed plan whose fee was not expanded into `items` still counts its fee.
  if (
    plan.billingCount === 'monthly_fixed' &&
    plan.monthly !== undefined &&
    !items.some((i) => i.key === MONTHLY_ITEM_KEY)
  ) {
    total += plan.monthly.amount * plan.monthly.months;
  }
  return total;
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
