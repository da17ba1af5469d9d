/**
 * Calendar arithmetic for billing, in the deal's time zone (luxon). Pure, no I/O.
 *
 * A billing day starts at 00:00 local time in the given IANA zone: a monthly item starting on
 * 2026-11-30 in Asia/Tokyo is due from 2026-11-29T15:00:00Z. Dates are 'YYYY-MM-DD' strings,
 * instants are `Date`s. Unknown time zones, malformed dates and invalid instants throw a
 * {@link ScheduleError}.
 */
import { DateTime, Info } from 'luxon';

export class ScheduleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleError';
  }
}

export interface MonthlyItemSchedule {
  /** First billing day, 'YYYY-MM-DD'. Its day of month is the billing day of every month. */
  startOn: string;
  /** Number of monthly invoices (1 or more). */
  months: number;
  /** The last month billed ('YYYY-MM') when the item ends before its term (CONTRACT §4). */
  endMonth?: string | null;
}

export interface MonthlyPeriod {
  /** Local month of the billing day, 'YYYY-MM'. Part of the item's billing key. */
  period: string;
  /** UTC instant of 00:00 local time on the billing day. */
  dueAt: Date;
  /** Local billing day, 'YYYY-MM-DD'. */
  billingDate: string;
}

function assertZone(timeZone: string): void {
  if (typeof timeZone !== 'string' || !Info.isValidIANAZone(timeZone)) {
    throw new ScheduleError(`unknown time zone "${String(timeZone)}"`);
  }
}

function assertInstant(at: Date, name: string): void {
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) {
    throw new ScheduleError(`${name} must be a valid Date`);
  }
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Parses 'YYYY-MM-DD' as a calendar day in `timeZone` (at 00:00 local). */
function parseLocalDate(date: string, timeZone: string, name: string): DateTime {
  const match = typeof date === 'string' ? ISO_DATE.exec(date) : null;
  const parsed = match
    ? DateTime.fromObject(
        { year: Number(match[1]), month: Number(match[2]), day: Number(match[3]) },
        { zone: timeZone },
      )
    : null;
  if (!parsed || !parsed.isValid) {
    throw new ScheduleError(`${name} must be a valid date in YYYY-MM-DD form (got "${date}")`);
  }
  // fromObject gives 00:00 local; if a DST gap swallowed midnight, startOf('day') lands on the
  // first instant of the day.
  return parsed.startOf('day');
}

function toIsoDate(dt: DateTime): string {
  return dt.toFormat('yyyy-MM-dd');
}

/** The calendar day of `at` in `timeZone`, 'YYYY-MM-DD'. */
export function localDate(at: Date, timeZone: string): string {
  assertZone(timeZone);
  assertInstant(at, 'at');
  return toIsoDate(DateTime.fromJSDate(at, { zone: timeZone }));
}

/**
 * `at` plus `days` calendar days in `timeZone`: the same local wall-clock time `days` days later
 * (so across a DST change the elapsed time is 23 or 25 hours, not 24). `days` may be negative.
 */
export function addDaysInZone(at: Date, days: number, timeZone: string): Date {
  assertZone(timeZone);
  assertInstant(at, 'at');
  if (!Number.isInteger(days)) throw new ScheduleError(`days must be an integer (got ${days})`);
  return DateTime.fromJSDate(at, { zone: timeZone }).plus({ days }).toJSDate();
}

/** The UTC instant at which the local day `date` ('YYYY-MM-DD') starts in `timeZone`. */
export function startOfLocalDay(date: string, timeZone: string): Date {
  assertZone(timeZone);
  return parseLocalDate(date, timeZone, 'date').toJSDate();
}

/**
 * Every billing month of a monthly item, due or not. Month n (0-based) is billed on startOn's day
 * of month, clamped to the last day of the month: startOn 2026-01-31 bills on 2026-01-31,
 * 2026-02-28, 2026-03-31, 2026-04-30, … An item that ends early (`endMonth`) has no month after it.
 */
export function monthlySchedule(item: MonthlyItemSchedule, timeZone: string): MonthlyPeriod[] {
  assertZone(timeZone);
  const start = parseLocalDate(item.startOn, timeZone, 'startOn');
  if (!Number.isInteger(item.months) || item.months < 1) {
    throw new ScheduleError(`months must be a positive integer (got ${item.months})`);
  }
  const periods: MonthlyPeriod[] = [];
  for (let n = 0; n < item.months; n++) {
    const firstOfMonth = DateTime.fromObject(
      { year: start.year, month: start.month, day: 1 },
      { zone: timeZone },
    ).plus({ months: n });
    const day = Math.min(start.day, firstOfMonth.daysInMonth ?? 28);
    const billingDay = firstOfMonth.set({ day }).startOf('day');
    const period = billingDay.toFormat('yyyy-MM');
    if (item.endMonth && period > item.endMonth) break;
    periods.push({
      period,
      dueAt: billingDay.toJSDate(),
      billingDate: toIsoDate(billingDay),
    });
  }
  return periods;
}

/**
 * The months of a monthly item whose billing day has started in `timeZone` at `now`
 * (`dueAt <= now`), oldest first. Catching up is the caller's business: every past month that is
 * due is listed, so a worker that was down bills the missed months too (each once, keyed by period).
 */
export function monthlyPeriodsDue(
  item: MonthlyItemSchedule,
  now: Date,
  timeZone: string,
): MonthlyPeriod[] {
  assertInstant(now, 'now');
  return monthlySchedule(item, timeZone).filter((p) => p.dueAt.getTime() <= now.getTime());
}

/**
 * The first billing month that is not yet due at `now` (for reports' 次回請求書発行日: use its
 * `billingDate`), or null when every month is already due.
 */
export function nextMonthlyDate(
  item: MonthlyItemSchedule,
  now: Date,
  timeZone: string,
): MonthlyPeriod | null {
  assertInstant(now, 'now');
  return monthlySchedule(item, timeZone).find((p) => p.dueAt.getTime() > now.getTime()) ?? null;
}
