/**
 * Phase 2 of billing-plan validation (rules across fields and items) and the plan's arithmetic:
 * one item checked and resolved to its amount, the one-invoice limit, a monthly fee's changes and
 * end, and what a new plan may not change once months are invoiced. The contracted amount is the
 * domain's rule (src/domain/contracted-amount.ts).
 */
import {
  STRIPE_MAX_INVOICE_TOTAL,
  formatMoney,
  groupDigits,
  percentOf,
  taxOf,
} from '../domain/money';
import {
  MonthlyChange,
  MonthlyFeeTerms,
  addMonths,
  amountForMonth,
  changeInForce,
  firstMonthOf,
  termMonths,
} from '../domain/monthly-fee';
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
    if (hasAmount && item.startOn !== undefined && item.months !== undefined) {
      errors.push(
        ...monthlyTermsErrors(
          at,
          item.key,
          {
            amount: item.amount!,
            startOn: item.startOn,
            months: item.months,
            changes: item.changes,
            endMonth: item.endMonth,
          },
          options.taxRatePercent,
        ),
      );
    }
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
    if (item.changes !== undefined) {
      errors.push(`${at}.changes: only allowed when trigger is monthly`);
    }
    if (item.endMonth !== undefined) {
      errors.push(`${at}.endMonth: only allowed when trigger is monthly`);
    }
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
  if (item.changes !== undefined && item.changes.length > 0) {
    resolved.monthlyChanges = item.changes.map((c) => ({
      fromMonth: c.fromMonth,
      amount: c.amount,
    }));
  }
  if (item.endMonth !== undefined) resolved.endMonth = item.endMonth;
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
 * What is wrong with a monthly fee's changes and end (`at`: its path, `monthly` or `items[i]`):
 * each change starts in a month of the fee's term after its first month, in month order, each
 * month once, not after the end, and changes the amount; each changed amount fits one invoice; the
 * end is a month of the term.
 */
export function monthlyTermsErrors(
  at: string,
  key: string,
  terms: MonthlyFeeTerms,
  taxRatePercent: number,
): string[] {
  const errors: string[] = [];
  const months = termMonths(terms.startOn, terms.months);
  const first = firstMonthOf(terms.startOn);
  const last = months[months.length - 1];
  const term = `${first} to ${last}`;
  const end = terms.endMonth ?? undefined;
  if (end !== undefined) {
    if (end < first) {
      errors.push(`${at}.endMonth: ${end} is before the fee's first month ${first}`);
    } else if (end > last) {
      errors.push(
        `${at}.endMonth: ${end} is after the fee's last month ${last} (its term is ${term}); to bill longer, raise ${at}.months`,
      );
    }
  }
  let previous: MonthlyChange | undefined;
  (terms.changes ?? []).forEach((change, j) => {
    const path = `${at}.changes[${j}]`;
    const month = change.fromMonth;
    if (previous !== undefined && month <= previous.fromMonth) {
      errors.push(
        `${path}.fromMonth: must come after ${previous.fromMonth} (changes are listed in month order, each month once)`,
      );
    } else if (month <= first) {
      errors.push(
        `${path}.fromMonth: ${month} is ${month === first ? "the fee's first month" : `before the fee's first month ${first}`}; a change starts after it (${at}.amount is the amount from ${first})`,
      );
    } else if (month > last) {
      errors.push(
        `${path}.fromMonth: ${month} is after the fee's last month ${last} (its term is ${term})`,
      );
    } else if (end !== undefined && month > end) {
      errors.push(
        `${path}.fromMonth: ${month} is after ${at}.endMonth ${end}, the last month billed`,
      );
    } else {
      const before = previous?.amount ?? terms.amount;
      if (change.amount === before) {
        errors.push(
          `${path}.amount: ${change.amount} is already the amount before ${month} (not a change)`,
        );
      }
    }
    const tooLarge = invoiceLimitError(
      `${path}.amount`,
      { key, trigger: 'monthly' },
      change.amount,
      taxRatePercent,
    );
    if (tooLarge) errors.push(tooLarge);
    if (previous === undefined || month > previous.fromMonth) previous = change;
  });
  return errors;
}

/** Where a resolved item is written in the plan: `monthly` for a monthly_fixed plan's fee, else `items[i]`. */
export function planPathOf(plan: BillingPlan, item: PlanItem): string {
  return plan.billingCount === 'monthly_fixed' &&
    item.key === MONTHLY_ITEM_KEY &&
    item.position === plan.items.length
    ? 'monthly'
    : `items[${item.position}]`;
}

/** A month of a monthly item that has an invoice (any state), and that invoice's amount. */
export interface InvoicedMonth {
  month: string;
  amount: number;
}

/**
 * Months already invoiced never change (CONTRACT §4): what a new plan's monthly item (at `at`)
 * would change of the months `invoiced` — a month left out of its term, an end before it, or
 * another amount for it. Empty when the plan keeps every invoiced month as it was billed.
 */
export function invoicedMonthErrors(
  at: string,
  item: PlanItem,
  invoiced: readonly InvoicedMonth[],
  currency: string,
): string[] {
  if (item.trigger !== 'monthly' || !item.startOn || !item.months || invoiced.length === 0) {
    return [];
  }
  const terms: MonthlyFeeTerms = {
    amount: item.amount,
    startOn: item.startOn,
    months: item.months,
    changes: item.monthlyChanges,
    endMonth: item.endMonth,
  };
  const money = (n: number) => formatMoney(n, currency);
  const term = termMonths(terms.startOn, terms.months);
  const [first, last] = [term[0], term[term.length - 1]];
  const sorted = [...invoiced].sort((a, b) => a.month.localeCompare(b.month));
  const lastInvoiced = sorted[sorted.length - 1].month;
  const nextFree = addMonths(lastInvoiced, 1);
  const never = 'months already invoiced never change';
  const span = (ms: readonly InvoicedMonth[]) =>
    ms.length === 1 ? ms[0].month : `${ms[0].month} to ${ms[ms.length - 1].month}`;
  const errors: string[] = [];
  if (sorted[0].month < first) {
    errors.push(
      `${at}.startOn: the term would start in ${first}, after ${sorted[0].month}, which is already invoiced; ${never}`,
    );
  }
  if (lastInvoiced > last) {
    errors.push(
      `${at}.months: the term would end in ${last}, before ${lastInvoiced}, which is already invoiced; ${never} (to end the fee early, keep ${at}.months and set ${at}.endMonth)`,
    );
  } else if (terms.endMonth && terms.endMonth < lastInvoiced) {
    errors.push(
      `${at}.endMonth: ${terms.endMonth} ends before ${lastInvoiced}, which is already invoiced; ${never} (the earliest end is ${lastInvoiced})`,
    );
  }
  // Invoiced months of the term that would bill another amount, by what sets their amount.
  const differ = new Map<number, InvoicedMonth[]>();
  for (const m of sorted) {
    if (m.month < first || m.month > last || amountForMonth(terms, m.month) === m.amount) continue;
    const source = changeInForce(terms, m.month);
    differ.set(source, [...(differ.get(source) ?? []), m]);
  }
  for (const [j, ms] of differ) {
    const planned = amountForMonth(terms, ms[0].month);
    const billed = `already invoiced at ${money(ms[0].amount)}${ms.length > 1 ? ' a month' : ''}`;
    if (j >= 0) {
      errors.push(
        `${at}.changes[${j}].fromMonth: ${terms.changes![j].fromMonth} would bill ${money(planned)} for ${span(ms)}, ${billed}; ${never} (a change can start from ${nextFree})`,
      );
    } else {
      errors.push(
        `${at}.amount: ${span(ms)} ${ms.length > 1 ? 'are' : 'is'} ${billed}; ${never} — to bill ${money(planned)} from ${nextFree}, keep ${at}.amount at ${ms[0].amount} and add ${at}.changes: [{ "fromMonth": "${nextFree}", "amount": ${planned} }]`,
      );
    }
  }
  return errors;
}
