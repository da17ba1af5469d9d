/**
 * The billing plan's shape (CONTRACT §4; billing-plan.ts parses): limits, phase 1 of validation
 * (the zod schema: types, ranges, formats, unknown fields), the resolved output types, and the
 * formatting of schema errors as `<json path>: <what is wrong>` lines.
 */
import { z } from 'zod';

import { MAX_AMOUNT, groupDigits } from '../domain/money';
import { MonthlyChange, isYearMonth } from '../domain/monthly-fee';

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
export function tooManyItems(items: unknown, what = 'this one has'): string {
  const count = Array.isArray(items) ? items.length : '?';
  return `a plan has at most ${MAX_ITEMS} items (${what} ${count})`;
}

const MONTHS_MESSAGE = `must be a whole number of months from 1 to ${MAX_MONTHS}`;
const monthCount = () =>
  z
    .number(typeError(MONTHS_MESSAGE))
    .refine((n) => Number.isInteger(n) && n >= 1 && n <= MAX_MONTHS, { error: MONTHS_MESSAGE });

const PERCENT_MESSAGE = 'must be between 0 and 100';

const MONTH_MESSAGE = 'must be a month in YYYY-MM form';
const yearMonth = () =>
  z.string(typeError(MONTH_MESSAGE)).refine(isYearMonth, { error: MONTH_MESSAGE });

/** A monthly fee's amount from a month on (CONTRACT §4: `monthly.changes`). */
export const monthlyChangeSchema = z.strictObject(
  { fromMonth: yearMonth(), amount: positiveAmount() },
  typeError('must be an object'),
);
const monthlyChanges = () =>
  z
    .array(monthlyChangeSchema, typeError('must be an array of { fromMonth, amount }'))
    .max(MAX_MONTHS, { error: `must have at most ${MAX_MONTHS} changes` });

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
    /** Monthly items: amount changes from a month on, and an early end (as `monthly`'s). */
    changes: monthlyChanges().optional(),
    endMonth: yearMonth().optional(),
  },
  typeError('must be an object'),
);
export type PlanItemInput = z.output<typeof planItemInputSchema>;

export const monthlySchema = z.strictObject(
  {
    amount: positiveAmount(),
    startOn: isoDate(),
    months: monthCount(),
    /** The amount from a given month on; months already invoiced never change. */
    changes: monthlyChanges().optional(),
    /** The last month billed when the fee ends before its term. */
    endMonth: yearMonth().optional(),
  },
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
  /** Monthly items: the amount from a month on (in month order), and the last month of an early end. */
  monthlyChanges?: MonthlyChange[];
  endMonth?: string;
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

export function zodErrors(error: z.ZodError, prefix: readonly PropertyKey[] = []): string[] {
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

export function unique(lines: string[]): string[] {
  return [...new Set(lines)];
}
