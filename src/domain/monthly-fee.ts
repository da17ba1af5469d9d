/**
 * A monthly fee month by month (CONTRACT §4): its amount from the first month, changes of the
 * amount from a given month on, and an early end. Pure and free of time zones: a month is
 * 'YYYY-MM', the local month of its billing day — the `period` of a monthly billing key — which
 * follows from `startOn` alone (month n is startOn's month plus n).
 */

/** The fee bills `amount` from `fromMonth` on (until a later change). */
export interface MonthlyChange {
  fromMonth: string;
  amount: number;
}

export interface MonthlyFeeTerms {
  /** The amount of the first month (and of every month before the first change). */
  amount: number;
  /** First billing day, 'YYYY-MM-DD'. */
  startOn: string;
  /** The term in months; an early end bills fewer. */
  months: number;
  /** In month order, each month once, all after the first month. */
  changes?: readonly MonthlyChange[] | null;
  /** The last month billed when the fee ends before its term, 'YYYY-MM'. */
  endMonth?: string | null;
}

const YEAR_MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** 'YYYY-MM' naming a real month. */
export function isYearMonth(value: unknown): value is string {
  return typeof value === 'string' && YEAR_MONTH.test(value);
}

/** `month` plus `n` months ('2026-11' + 3 → '2027-02'). */
export function addMonths(month: string, n: number): string {
  const match = YEAR_MONTH.exec(month);
  if (!match) throw new RangeError(`not a month in YYYY-MM form: "${month}"`);
  const index = Number(match[1]) * 12 + (Number(match[2]) - 1) + n;
  const year = Math.floor(index / 12);
  return `${String(year).padStart(4, '0')}-${String((index % 12) + 1).padStart(2, '0')}`;
}

/** The fee's first month: startOn's 'YYYY-MM'. */
export function firstMonthOf(startOn: string): string {
  return startOn.slice(0, 7);
}

/** Every month of the term, first to last, whatever the end. */
export function termMonths(startOn: string, months: number): string[] {
  const first = firstMonthOf(startOn);
  return Array.from({ length: Math.max(0, months) }, (_, n) => addMonths(first, n));
}

/** The months the fee bills: the term, up to `endMonth` when it ends early. */
export function billedMonths(terms: Pick<MonthlyFeeTerms, 'startOn' | 'months' | 'endMonth'>) {
  const all = termMonths(terms.startOn, terms.months);
  return terms.endMonth ? all.filter((m) => m <= terms.endMonth!) : all;
}

/** The index of the change in force in `month` (the latest from that month or before), or -1. */
export function changeInForce(terms: Pick<MonthlyFeeTerms, 'changes'>, month: string): number {
  let found = -1;
  (terms.changes ?? []).forEach((c, i) => {
    if (c.fromMonth <= month && (found < 0 || c.fromMonth >= terms.changes![found].fromMonth)) {
      found = i;
    }
  });
  return found;
}

/** What the fee bills for `month`: the change in force then, else its first amount. */
export function amountForMonth(
  terms: Pick<MonthlyFeeTerms, 'amount' | 'changes'>,
  month: string,
): number {
  const i = changeInForce(terms, month);
  return i < 0 ? terms.amount : terms.changes![i].amount;
}

/** What the fee bills over all its months (changes and the end included). */
export function monthlyFeeTotal(terms: MonthlyFeeTerms): number {
  return billedMonths(terms).reduce((sum, m) => sum + amountForMonth(terms, m), 0);
}

/** Changes as stored (a jsonb column): the well-formed entries, or undefined when there are none. */
export function monthlyChangesOf(value: unknown): MonthlyChange[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const changes = value
    .filter(
      (c): c is MonthlyChange =>
        typeof c === 'object' &&
        c !== null &&
        isYearMonth((c as MonthlyChange).fromMonth) &&
        typeof (c as MonthlyChange).amount === 'number',
    )
    .map((c) => ({ fromMonth: c.fromMonth, amount: c.amount }));
  return changes.length > 0 ? changes : undefined;
}

/**
 * The terms of a monthly item as stored (amount already a number), or null when it lacks a
 * schedule (startOn and months).
 */
export function monthlyTermsOf(item: {
  amount: number;
  startOn?: string | null;
  months?: number | null;
  monthlyChanges?: unknown;
  endMonth?: string | null;
}): MonthlyFeeTerms | null {
  if (!item.startOn || !item.months) return null;
  return {
    amount: item.amount,
    startOn: item.startOn,
    months: item.months,
    changes: monthlyChangesOf(item.monthlyChanges) ?? null,
    endMonth: item.endMonth ?? null,
  };
}
