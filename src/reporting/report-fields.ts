import { DateTime } from 'luxon';

import { currencyExponent } from '../domain/money';
import { BillingCount, ReportData, ReportField, ReportKind } from '../domain/report';

/**
 * What the platform's form asks for, copy-ready, for the manual report queue (PRONI アイミツ has no
 * API: an operator copies each value into the platform's form).
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
export const REPORT_KIND_LABELS: Record<ReportKind, { ja: string; en: string }> = {
  appointment: { ja: 'アポイント報告', en: 'appointment' },
  won: { ja: '成約報告', en: 'won' },
  lost: { ja: '失注報告', en: 'lost' },
  lost_withdrawn: { ja: '失注報告の取り消し', en: 'loss withdrawn' },
  confirmed_amount: { ja: '確定報告', en: 'confirmed amount' },
  delivered: { ja: '納品報告', en: 'delivered' },
  additional_order: { ja: '追加発注報告', en: 'additional order' },
  declined: { ja: '辞退報告', en: 'declined' },
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

interface FieldSpec {
  key: string;
  label: string;
  labelEn: string;
  value: string | undefined;
  /** The form will not submit without it: shown as NOT_SET when unknown. */
  required: boolean;
}

const text = (s: string | undefined) => (s && s.trim() !== '' ? s.trim() : undefined);

function amountOf(data: ReportData): string | undefined {
  if (data.amountExTax !== undefined) return formatAmount(data.amountExTax, data.currency);
  if (data.items && data.items.length > 0) {
    return formatAmount(
      data.items.reduce((sum, i) => sum + i.amountExTax, 0),
      data.currency,
    );
  }
  return undefined;
}

const billingCountOf = (data: ReportData) =>
  data.billingCount ? BILLING_COUNT_LABELS[data.billingCount] : undefined;

/** 請求タイミング: the hub's words for it, else at least how many times it is billed. */
const billingTimingOf = (data: ReportData) => text(data.billingTiming) ?? billingCountOf(data);

function specsFor(data: ReportData, timeZone: string): FieldSpec[] {
  /** The date something happened: the one given, else the day the report's fact occurred. */
  const eventDate = (given: string | undefined) =>
    given ? formatDate(given, timeZone) : formatDate(data.occurredAt, timeZone);

  switch (data.kind) {
    case 'appointment':
      return [
        {
          key: 'dealName',
          label: '案件名',
          labelEn: 'Case name',
          value: text(data.dealName),
          required: true,
        },
        {
          key: 'appointmentDate',
          label: 'アポイント日',
          labelEn: 'Appointment date',
          value: eventDate(data.appointmentDate),
          required: true,
        },
      ];
    case 'won':
      return [
        {
          key: 'orderDescription',
          label: '受注内容',
          labelEn: 'Order description',
          value: text(data.orderDescription),
          required: true,
        },
        {
          key: 'amountExTax',
          label: '受注金額（税抜）',
          labelEn: 'Order amount (excl. tax)',
          value: amountOf(data),
          required: true,
        },
        {
          key: 'billingTiming',
          label: '請求タイミング',
          labelEn: 'Billing timing',
          value: billingTimingOf(data),
          required: true,
        },
      ];
    case 'lost':
      return [
        {
          key: 'date',
          label: '失注日',
          labelEn: 'Date lost',
          value: eventDate(data.date),
          required: true,
        },
        {
          key: 'reason',
          label: '失注理由',
          labelEn: 'Reason for the loss',
          value: text(data.reason),
          required: true,
        },
      ];
    case 'lost_withdrawn':
      return [
        {
          key: 'date',
          label: '取り消し日',
          labelEn: 'Date the loss was withdrawn',
          value: eventDate(data.date),
          required: true,
        },
      ];
    case 'confirmed_amount':
      return [
        {
          key: 'billingCount',
          label: '請求回数',
          labelEn: 'Number of invoices',
          value: billingCountOf(data),
          required: true,
        },
        {
          key: 'orderDescription',
          label: '受注内容',
          labelEn: 'Order description',
          value: text(data.orderDescription),
          required: true,
        },
        {
          key: 'amountExTax',
          label: '請求金額（税抜）',
          labelEn: 'Invoice amount (excl. tax)',
          value: amountOf(data),
          required: true,
        },
        {
          key: 'issueDate',
          label: '初回請求書発行日',
          labelEn: 'Invoice issue date',
          value: formatDate(data.issueDate, timeZone),
          required: true,
        },
        {
          key: 'nextInvoiceDate',
          label: '次回請求書発行日',
          labelEn: 'Next invoice date',
          value: formatDate(data.nextInvoiceDate, timeZone),
          // A one-time invoice has no next one; billed several times, the form wants the date.
          required: data.billingCount !== undefined && data.billingCount !== 'one_time',
        },
        {
          key: 'invoicePdfUrl',
          label: '請求書',
          labelEn: 'Invoice (PDF to attach)',
          value: text(data.invoicePdfUrl) ?? text(data.hostedInvoiceUrl),
          required: true,
        },
      ];
    case 'delivered':
      return [
        {
          key: 'deliveredOn',
          label: '納品日',
          labelEn: 'Delivery date',
          value: eventDate(data.deliveredOn),
          required: true,
        },
      ];
    case 'additional_order':
      return [
        {
          key: 'orderDescription',
          label: '追加発注内容',
          labelEn: 'Additional order',
          value:
            text(data.orderDescription) ??
            (data.items && data.items.length > 0
              ? data.items.map((i) => i.label).join('、')
              : undefined),
          required: true,
        },
        {
          key: 'amountExTax',
          label: '金額（税抜）',
          labelEn: 'Amount (excl. tax)',
          value: amountOf(data),
          required: true,
        },
        {
          key: 'billingTiming',
          label: '請求タイミング',
          labelEn: 'Billing timing',
          value: billingTimingOf(data),
          required: true,
        },
      ];
    case 'declined':
      return [
        {
          key: 'reason',
          label: '辞退理由',
          labelEn: 'Reason for declining',
          value: text(data.reason),
          required: true,
        },
      ];
  }
}

/**
 * The fields the platform's form asks for, in the form's order, copy-ready. `timeZone` is the
 * deal's zone (dates derived from `occurredAt` are local dates there). An unknown kind has no form.
 */
export function reportFields(data: ReportData, timeZone: string): ReportField[] {
  const specs = (specsFor(data, timeZone) as FieldSpec[] | undefined) ?? [];
  return specs
    .filter((f) => f.value !== undefined || f.required)
    .map((f) => ({ key: f.key, label: f.label, labelEn: f.labelEn, value: f.value ?? NOT_SET }));
}
