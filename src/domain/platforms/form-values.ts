import { DateTime } from 'luxon';

import { currencyExponent } from '../money';
import { BillingCount, ReportKind } from '../report';

/**
 * Values as a platform's form takes them, copy-ready (the manual report queue: an operator copies
 * each value into the platform's form).
 *
 * Conventions, the same for every kind so an operator never has to think about them:
 * - Amounts are the bare number in major units, without separators or symbol (`300000` for
 *   ¥300,000): the platform's amount inputs take digits only, and a pasted "¥300,000" is refused
 *   or mangled. A currency other than JPY gets its ISO code appended (`1000.50 USD`) so nobody
 *   pastes dollars into a yen field without noticing.
 * - Dates are YYYY-MM-DD in the deal's time zone (the same form as the report data and the API).
 * - A field the form requires but the hub does not know yet is kept, with the value {@link NOT_SET},
 *   so the task shows what is still missing; an optional field without a value is left out.
 */

/** The value of a required field the hub does not know yet. */
export const NOT_SET = '未定 / not set yet';

/** The platform's name for each report, for task titles, timeline entries and alerts. */
export const DEFAULT_REPORT_LABELS: Record<ReportKind, { ja: string; en: string }> = {
  appointment: { ja: 'アポイント報告', en: 'appointment' },
  won: { ja: '成約報告', en: 'won' },
  lost: { ja: '失注報告', en: 'lost' },
  lost_withdrawn: { ja: '失注報告の取り消し', en: 'loss withdrawn' },
  confirmed_amount: { ja: '確定報告', en: 'confirmed amount' },
  delivered: { ja: '納品報告', en: 'delivered' },
  additional_order: { ja: '追加発注報告', en: 'additional order' },
  declined: { ja: '辞退報告', en: 'declined' },
  expired: { ja: '期限切れ報告', en: 'expired' },
  in_evaluation: { ja: '評価中の報告', en: 'in evaluation' },
};

/** 請求回数 as the platform's form words it. */
export const BILLING_COUNT_LABELS: Record<BillingCount, string> = {
  one_time: '一回',
  monthly_variable: '複数回（月額変動）',
  monthly_fixed: '複数回（月額固定）',
};

/** An amount in the smallest unit as the platform's amount field takes it (see the module comment). */
export function formatAmount(amount: number, currency = 'jpy'): string {
  const exponent = currencyExponent(currency);
  const negative = amount < 0;
  const digits = String(Math.abs(amount)).padStart(exponent + 1, '0');
  const major =
    exponent === 0
      ? digits
      : `${digits.slice(0, digits.length - exponent)}.${digits.slice(-exponent)}`;
  const value = `${negative ? '-' : ''}${major}`;
  return currency.toLowerCase() === 'jpy' ? value : `${value} ${currency.toUpperCase()}`;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * A date for the form: YYYY-MM-DD dates are the deal's local dates already and pass as they are;
 * a timestamp is turned into the local date in `timeZone`. Undefined when there is nothing usable.
 */
export function formatDate(value: string | undefined, timeZone: string): string | undefined {
  if (!value) return undefined;
  if (DATE_ONLY.test(value)) {
    return DateTime.fromISO(value, { zone: timeZone }).isValid ? value : undefined;
  }
  const at = DateTime.fromISO(value, { setZone: true });
  return at.isValid ? (at.setZone(timeZone).toISODate() ?? undefined) : undefined;
}

export interface FieldSpec {
  key: string;
  label: string;
  labelEn: string;
  value: string | undefined;
  /** The form will not submit without it: shown as NOT_SET when unknown. */
  required: boolean;
}

/** The specs as copy-ready fields: required ones always (NOT_SET when unknown), optional ones when known. */
export function toFields(specs: readonly FieldSpec[]) {
  return specs
    .filter((f) => f.value !== undefined || f.required)
    .map((f) => ({ key: f.key, label: f.label, labelEn: f.labelEn, value: f.value ?? NOT_SET }));
}

export const text = (s: string | undefined) => (s && s.trim() !== '' ? s.trim() : undefined);
