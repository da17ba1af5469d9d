/**
 * PRONI アイミツ's 確定報告 cycle (CONTRACT §5; issue 13): which confirmed-amount task a billable
 * item owes next. Pure: no I/O.
 *
 * A slot is one invoice the platform will ask a 確定報告 for, keyed exactly like the report its
 * invoice produces (`<deal>|confirmed_amount|<billing key>`), so the invoice fills the task in:
 * a one-off item's only invoice, a monthly item's month (a monthly_fixed plan's item: its one
 * report, `<deal>|confirmed_amount|<item>`). A progress item's step is billed as `p<percent>`,
 * which nobody knows before the progress is reported: its slots are keyed by their ordinal
 * (`<deal>|confirmed_amount|<deal>|<item>|step<n>`), and the n-th step's invoice fills the n-th.
 *
 * The task's deadline (報告期限) is the slot's planned invoice date: the item's expected invoice
 * date, a month's billing date; a slot without one has no deadline until its invoice posts.
 */
import { billingKeyFor } from '../domain/billing-key';
import { localDate, monthlySchedule } from '../domain/calendar';
import { amountForMonth, monthlyChangesOf } from '../domain/monthly-fee';

/** Item triggers that bill (every billable item has a slot). */
const BILLABLE_TRIGGERS: readonly string[] = [
  'contract.signed',
  'milestone.accepted',
  'milestone.progress',
  'monthly',
  'manual',
];

export interface SlotItem {
  key: string;
  label: string;
  trigger: string;
  /** Excl. tax: per invoice, per month for monthly items, in total for progress items. */
  amount: number;
  expectedInvoiceDate: string | null;
  startOn: string | null;
  months: number | null;
  /** Monthly: the last month billed when it ends early (YYYY-MM). */
  endMonth?: string | null;
  /** Monthly: the amount from a month on ([{ fromMonth, amount }], as stored). */
  monthlyChanges?: unknown;
  billedPercent: number;
  removed: boolean;
}

/** An invoice of the item, as far as the cycle needs it. */
export interface SlotInvoice {
  billingKey: string;
  period: string | null;
  rebill: number;
  postedAt: Date | null;
}

export interface ConfirmationSlot {
  factKey: string;
  itemKey: string;
  /** The planned invoice date (YYYY-MM-DD in the deal's zone): the deadline, when known. */
  date?: string;
  /** Monthly: the month billed. */
  period?: string;
  /** What the invoice will state excl. tax, when known (a progress step's is not). */
  amountExTax?: number;
  /** 受注内容 as the invoice will describe it. */
  description: string;
}

export interface SlotContext {
  dealId: string;
  dealName: string;
  zone: string;
  /** The plan bills a fixed monthly fee, reported once (成約手数料発生中). */
  monthlyFixed: boolean;
}

export const confirmedFactKey = (dealId: string, billingKey: string): string =>
  `${dealId}|confirmed_amount|${billingKey}`;

export const progressStepKey = (dealId: string, itemKey: string, step: number): string =>
  `${confirmedFactKey(dealId, billingKeyFor(dealId, itemKey))}|step${step}`;

/** The billing key a confirmed report's fact key names (null when it names none). */
export function billingKeyOfFact(dealId: string, factKey: string): string | null {
  const prefix = `${dealId}|confirmed_amount|`;
  return factKey.startsWith(prefix) ? factKey.slice(prefix.length) : null;
}

const STEP = /\|step(\d+)$/;
const PROGRESS_PERIOD = /^p(\d+)$/;
const MONTH = /^\d{4}-\d{2}$/;

/** The invoices of a progress item that are steps (not re-bills), by percent. */
function steps(invoices: readonly SlotInvoice[]): SlotInvoice[] {
  return invoices
    .filter((i) => i.rebill === 0 && i.period !== null && PROGRESS_PERIOD.test(i.period))
    .sort((a, b) => percentOf(a) - percentOf(b));
}
const percentOf = (i: SlotInvoice) => Number(PROGRESS_PERIOD.exec(i.period ?? '')?.[1] ?? 0);

/** Which step of its progress item an invoice is (1 = the first), or undefined for a re-bill. */
export function progressStepOf(
  invoice: SlotInvoice,
  invoices: readonly SlotInvoice[],
): number | undefined {
  const index = steps(invoices).findIndex((i) => i.billingKey === invoice.billingKey);
  return index < 0 ? undefined : index + 1;
}

/**
 * The item's planned invoice date for its next invoice: its expected invoice date, unless an
 * invoice of the item was already issued on or after it (a progress item's date was its earlier
 * step's then, and the next step has none until someone gives one).
 */
export function plannedDate(
  item: SlotItem,
  invoices: readonly SlotInvoice[],
  zone: string,
): string | undefined {
  const date = item.expectedInvoiceDate ?? undefined;
  if (!date) return undefined;
  const issued = invoices
    .filter((i) => i.postedAt !== null)
    .map((i) => localDate(i.postedAt!, zone))
    .sort()
    .at(-1);
  return issued !== undefined && issued >= date ? undefined : date;
}

function billable(item: SlotItem): boolean {
  return !item.removed && item.amount > 0 && BILLABLE_TRIGGERS.includes(item.trigger);
}

function monthSlot(ctx: SlotContext, item: SlotItem, after?: string): ConfirmationSlot | undefined {
  if (!item.startOn || !item.months) return undefined;
  const month = monthlySchedule({ startOn: item.startOn, months: item.months }, ctx.zone).find(
    (p) => after === undefined || p.period > after,
  );
  if (!month || (item.endMonth && month.period > item.endMonth)) return undefined;
  return {
    factKey: ctx.monthlyFixed
      ? `${ctx.dealId}|confirmed_amount|${item.key}`
      : confirmedFactKey(ctx.dealId, billingKeyFor(ctx.dealId, item.key, month.period)),
    itemKey: item.key,
    date: month.billingDate,
    period: month.period,
    // The month's amount: the change in force then, else the item's.
    amountExTax: amountForMonth(
      { amount: item.amount, changes: monthlyChangesOf(item.monthlyChanges) },
      month.period,
    ),
    description: `${item.label} (${month.period}) — ${ctx.dealName}`,
  };
}

/** The slot of an item's first invoice (undefined: the item does not bill). */
export function firstSlot(
  ctx: SlotContext,
  item: SlotItem,
  invoices: readonly SlotInvoice[] = [],
): ConfirmationSlot | undefined {
  if (!billable(item)) return undefined;
  switch (item.trigger) {
    case 'monthly':
      return monthSlot(ctx, item);
    case 'milestone.progress':
      return {
        factKey: progressStepKey(ctx.dealId, item.key, 1),
        itemKey: item.key,
        date: plannedDate(item, invoices, ctx.zone),
        description: `${item.label} — ${ctx.dealName}`,
      };
    default:
      return {
        factKey: confirmedFactKey(ctx.dealId, billingKeyFor(ctx.dealId, item.key)),
        itemKey: item.key,
        date: plannedDate(item, invoices, ctx.zone),
        amountExTax: item.amount,
        description: `${item.label} — ${ctx.dealName}`,
      };
  }
}

/**
 * The slot after an approved confirmed report of the item (its fact key and, once its invoice
 * posted, its billing key): a monthly item's next month, a progress item's next step while it has
 * not billed 100% (only once the approved step's invoice is the item's latest: a later step
 * already invoiced has its own report, whose approval goes on). A one-off item and a fixed
 * monthly fee (one report, 成約手数料発生中) have none.
 */
export function nextSlot(
  ctx: SlotContext,
  item: SlotItem,
  approved: { factKey: string; billingKey: string | null },
  invoices: readonly SlotInvoice[],
): ConfirmationSlot | undefined {
  if (!billable(item)) return undefined;
  const key = approved.billingKey ?? billingKeyOfFact(ctx.dealId, approved.factKey);
  if (item.trigger === 'monthly') {
    if (ctx.monthlyFixed) return undefined;
    const period = key?.split('|')[2];
    return period && MONTH.test(period) ? monthSlot(ctx, item, period) : undefined;
  }
  if (item.trigger !== 'milestone.progress') return undefined;
  const named = STEP.exec(approved.factKey);
  const own = approved.billingKey
    ? invoices.find((i) => i.billingKey === approved.billingKey)
    : undefined;
  const step = named ? Number(named[1]) : own ? progressStepOf(own, invoices) : undefined;
  if (step === undefined || item.billedPercent >= 100 || steps(invoices).length !== step) {
    return undefined;
  }
  return {
    factKey: progressStepKey(ctx.dealId, item.key, step + 1),
    itemKey: item.key,
    date: plannedDate(item, invoices, ctx.zone),
    description: `${item.label} — ${ctx.dealName}`,
  };
}
