/**
 * 請求回数 per invoice (CONTRACT §5): what a 確定報告 states about the invoice it reports, decided
 * from the deal's plan items and invoices, the way PRONI アイミツ asks it. Pure, no I/O.
 *
 * - `monthly_fixed` (複数回(月額固定)) for a fixed monthly item: a monthly item of a plan whose
 *   billingCount is `monthly_fixed` (reported once per item, and again only on a change or end);
 * - `monthly_variable` (複数回(毎月変動)) when another invoice of the deal is still planned after this
 *   one: deposit and balance, phases, further months of a monthly item, the rest of a progress item;
 * - `one_time` (1回) when no further invoice is planned.
 *
 * "After this one" is in the order the invoices were made (their creation, then their time-ordered
 * id), so a report built later — at delivery, when more invoices exist — states the same as one
 * built when the invoice was made. Before the invoice exists (a manual task created from WON), the
 * plan's remaining items decide; the invoice refreshes it.
 *
 * `nextInvoiceDate` (次回請求書発行日) is the earliest known date of what is still planned after this
 * invoice: a monthly item's next billing date, another item's expected invoice date; never a date
 * before `today` (the issue date), undefined when none is known.
 */
import { monthlySchedule } from './calendar';
import { BillingCount } from './report';

/** A plan item as the rule needs it. Amounts in the smallest unit. */
export interface PlannedItem {
  key: string;
  /** contract.signed | milestone.accepted | milestone.progress | monthly | manual */
  trigger: string;
  /** Per invoice, per month for monthly items, in total for progress items. */
  amount: number;
  /** Dropped from the plan before it was billed. */
  removed: boolean;
  expectedInvoiceDate?: string | null;
  /** Monthly items: first billing date (YYYY-MM-DD) and number of months. */
  startOn?: string | null;
  months?: number | null;
  /** Monthly items ended early: the last month billed (YYYY-MM). */
  endMonth?: string | null;
}

/** An invoice of the deal (any state: a voided one is re-billed only by an explicit action). */
export interface PlacedInvoice {
  id: string;
  itemKey: string;
  /** YYYY-MM for monthly items, p<percent> for progress items. */
  period: string | null;
  createdAt: Date;
}

export interface BillingCountInput {
  /** The plan's billingCount (CONTRACT §4), which only says whether monthly items are fixed. */
  plan: BillingCount | undefined;
  items: readonly PlannedItem[];
  /** Every invoice of the deal known now (the reported one included, when it exists). */
  invoices: readonly PlacedInvoice[];
  /** The plan item the report is about. */
  itemKey: string;
  /** The invoice reported; absent for a task created before its invoice exists. */
  invoice?: PlacedInvoice;
  /** Before the invoice exists: the month the task stands for (a monthly item's; else its first open one). */
  period?: string;
  /** The issue date (or, before the invoice, today), YYYY-MM-DD in `timeZone`. */
  today: string;
  timeZone: string;
}

export interface InvoiceCount {
  billingCount: BillingCount;
  nextInvoiceDate?: string;
}

const made = (a: PlacedInvoice, b: PlacedInvoice): number =>
  a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

const percentOf = (period: string | null): number => {
  const m = period ? /^p(\d+)$/.exec(period) : null;
  return m ? Number(m[1]) : 0;
};

/** A monthly item's billing months (YYYY-MM with their billing date), cut at its end month. */
function monthsOf(item: PlannedItem, timeZone: string): { period: string; date: string }[] {
  if (!item.startOn || !item.months || item.months < 1) return [];
  return monthlySchedule({ startOn: item.startOn, months: item.months }, timeZone)
    .filter((p) => !item.endMonth || p.period <= item.endMonth)
    .map((p) => ({ period: p.period, date: p.billingDate }));
}

/** 請求回数 and 次回請求書発行日 of one invoice (or of the task waiting for it). */
export function invoiceCount(input: BillingCountInput): InvoiceCount {
  const { invoice, itemKey, today } = input;
  // What exists as of the reported invoice: it and the invoices made before it.
  const known = invoice
    ? input.invoices.filter((i) => i.id === invoice.id || made(i, invoice) < 0)
    : input.invoices;
  const item = input.items.find((i) => i.key === itemKey);
  const fixed = input.plan === 'monthly_fixed' && item?.trigger === 'monthly';

  let more = false;
  const dates: string[] = [];
  const planned = (date: string | null | undefined) => {
    more = true;
    if (date && date >= today) dates.push(date);
  };

  for (const it of input.items) {
    if (it.removed || it.amount <= 0) continue;
    const own = it.key === itemKey;
    const billed = known.filter((i) => i.itemKey === it.key);
    switch (it.trigger) {
      case 'monthly': {
        const invoiced = new Set(billed.map((i) => i.period));
        let open = monthsOf(it, input.timeZone).filter((m) => !invoiced.has(m.period));
        // The reported month of this item, or (before its invoice) the first month still open.
        if (own) {
          const reported = invoice?.period ?? input.period ?? open[0]?.period;
          open = open.filter((m) => reported !== undefined && m.period > reported);
        }
        if (open.length > 0) planned(open.find((m) => m.date > today)?.date);
        break;
      }
      case 'milestone.progress': {
        // Before its invoice, the task stands for the rest of the item.
        if (own && !invoice) break;
        const billedPercent = Math.max(0, ...billed.map((i) => percentOf(i.period)));
        if (billedPercent < 100) planned(it.expectedInvoiceDate);
        break;
      }
      default:
        if (!own && billed.length === 0) planned(it.expectedInvoiceDate);
    }
  }
  dates.sort();
  return {
    billingCount: fixed ? 'monthly_fixed' : more ? 'monthly_variable' : 'one_time',
    ...(dates[0] ? { nextInvoiceDate: dates[0] } : {}),
  };
}
