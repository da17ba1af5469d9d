/**
 * Phase 2 of billing-plan validation (rules across fields and items) and the plan's arithmetic:
 * one item checked and resolved to its amount, the one-invoice limit, the contracted amount.
 */
import { STRIPE_MAX_INVOICE_TOTAL, groupDigits, percentOf, taxOf } from '../domain/money';
import {
  BillingPlan,
  MONTHLY_ITEM_KEY,
  PlanItem,
  PlanItemInput,
  Trigger,
} from './billing-plan.schema';

export function countDuplicates(keys: readonly string[]): string[] {
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

export function hasDealAmount(dealAmount: number | null | undefined): dealAmount is number {
  return typeof dealAmount === 'number' && Number.isFinite(dealAmount) && dealAmount > 0;
}

export interface ItemCheckOptions {
  dealAmount: number | null | undefined;
  taxRatePercent: number;
  /** `order.additional`: percents are refused. */
  additional: boolean;
}

/** Checks one structurally valid item; returns its errors and, when none, the resolved item. */
export function checkItem(
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

/** Sums percents without float noise (30 + 30.1 + 39.9 is 100, not 100.00000000000001). */
export function sumDecimals(values: readonly number[]): number {
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
