/**
 * Which reports a monthly_fixed fee's changes and early end owe the referral platform (CONTRACT
 * §4, §5), from the fee's terms now and what the platform was already told. Pure: the report
 * service reads the facts and records what this returns.
 *
 * Fact keys, after `<dealId>|confirmed_amount|<itemKey>|`:
 *   change|<fromMonth>      the amount from that month on (the first report of that month)
 *   change|<fromMonth>|<n>  the n-th report of that month (its amount changed again, or the change
 *                           was dropped and the month bills the amount in force before it)
 *   end|<endMonth>[|<n>]    the last month billed; n counts every end report of the fee (an end
 *                           moved or withdrawn — then the term's last month — is reported again)
 */
import { MonthlyFeeTerms, amountForMonth, termMonths } from '../domain/monthly-fee';

export type FeeFactKind = 'change' | 'end';

/** One change or end the platform was told about. */
export interface ToldFeeFact {
  kind: FeeFactKind;
  month: string;
  /** 1 for the first report of its kind (and month, for a change), then 2, 3, … */
  n: number;
  /** The monthly amount the report stated (a change's new amount). */
  amount: number | null;
}

/** A change or end report owed: its key after the fee's prefix, month and monthly amount. */
export interface OwedFeeReport {
  kind: FeeFactKind;
  key: string;
  month: string;
  amount: number;
}

export const feeFactPrefix = (dealId: string, itemKey: string) =>
  `${dealId}|confirmed_amount|${itemKey}|`;

/** What the reports under `prefix` told the platform (other fact keys are ignored). */
export function toldFeeFacts(
  prefix: string,
  reports: readonly { factKey: string; amountExTax: number | null }[],
): ToldFeeFact[] {
  const told: ToldFeeFact[] = [];
  for (const r of reports) {
    if (!r.factKey.startsWith(prefix)) continue;
    const [kind, month, n, ...rest] = r.factKey.slice(prefix.length).split('|');
    if ((kind !== 'change' && kind !== 'end') || !month || rest.length > 0) continue;
    told.push({ kind, month, n: n ? Number(n) : 1, amount: r.amountExTax });
  }
  return told;
}

/**
 * The change and end reports the fee owes now: one per change month whose amount the platform
 * does not have yet (a change in the terms, or one it was told of that the terms no longer have),
 * and one for the end when it differs from the last end reported (an end on the term's last month
 * is no early end, unless it withdraws one reported before). Changes after the end are left out.
 */
export function owedFeeReports(
  terms: MonthlyFeeTerms,
  told: readonly ToldFeeFact[],
): OwedFeeReport[] {
  const owed: OwedFeeReport[] = [];
  const term = termMonths(terms.startOn, terms.months);
  const lastOfTerm = term[term.length - 1];
  const byN = (a: ToldFeeFact, b: ToldFeeFact) => a.n - b.n;

  const months = new Set([
    ...(terms.changes ?? []).map((c) => c.fromMonth),
    ...told.filter((t) => t.kind === 'change').map((t) => t.month),
  ]);
  for (const month of [...months].sort()) {
    if (!term.includes(month) || (terms.endMonth && month > terms.endMonth)) continue;
    const amount = amountForMonth(terms, month);
    const before = told.filter((t) => t.kind === 'change' && t.month === month).sort(byN);
    const latest = before.at(-1);
    if (latest?.amount === amount) continue;
    if (!latest && !(terms.changes ?? []).some((c) => c.fromMonth === month)) continue;
    owed.push({ kind: 'change', key: keyOf('change', month, before), month, amount });
  }

  const ends = told.filter((t) => t.kind === 'end').sort(byN);
  const end = terms.endMonth ?? (ends.length > 0 ? lastOfTerm : undefined);
  const early = ends.length > 0 || (end !== undefined && end !== lastOfTerm);
  if (end !== undefined && early && ends.at(-1)?.month !== end) {
    owed.push({
      kind: 'end',
      key: keyOf('end', end, ends),
      month: end,
      amount: amountForMonth(terms, end),
    });
  }
  return owed;
}

function keyOf(kind: FeeFactKind, month: string, earlier: readonly ToldFeeFact[]): string {
  const n = earlier.reduce((max, t) => Math.max(max, t.n), 0);
  return n === 0 ? `${kind}|${month}` : `${kind}|${month}|${n + 1}`;
}
