/**
 * PRONI アイミツ (also called `proni`): a lead-matching site without an API. A lead is the vendor's
 * once won (当選), so there is no accept step and no response clock unless the referral gives a
 * deadline; every report is a task in the manual queue, with the fields of the platform's form.
 */
import {
  DEFAULT_REPORT_LABELS,
  FieldSpec,
  BILLING_COUNT_LABELS,
  formatAmount,
  formatDate,
  text,
  toFields,
} from './form-values';
import type { Label, PlatformProfile } from './profile';
import { REFERRAL_ANSWER_KINDS, REPORT_KINDS, ReportData } from '../report';

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
    // Answers to the referral itself: PRONI アイミツ takes neither (its profile leaves them out);
    // the fields are what another platform's form in the manual queue needs.
    case 'expired':
      return [
        {
          key: 'date',
          label: '期限切れ日',
          labelEn: 'Date it expired',
          value: eventDate(data.date),
          required: true,
        },
        {
          key: 'reason',
          label: '理由',
          labelEn: 'Reason',
          value: text(data.reason),
          required: true,
        },
      ];
    case 'in_evaluation':
      return [
        {
          key: 'date',
          label: '評価開始日',
          labelEn: 'Evaluation started',
          value: eventDate(data.date),
          required: true,
        },
      ];
  }
}

/**
 * 確定報告 of a 月額固定 fee's change or early end (CONTRACT §4): the month the new amount applies
 * from, or the last month billed, after the form's other fields.
 */
function monthlyFeeSpecs(data: ReportData): FieldSpec[] {
  if (data.kind !== 'confirmed_amount') return [];
  const specs: FieldSpec[] = [];
  if (data.effectiveMonth) {
    specs.push({
      key: 'effectiveMonth',
      label: '変更月',
      labelEn: 'Month the new amount applies from',
      value: data.effectiveMonth,
      required: true,
    });
  }
  if (data.endMonth) {
    specs.push({
      key: 'endMonth',
      label: '最終請求月',
      labelEn: 'Last month billed',
      value: data.endMonth,
      required: true,
    });
  }
  return specs;
}

export function aimitsuForm(data: ReportData, timeZone: string) {
  const specs = (specsFor(data, timeZone) as FieldSpec[] | undefined) ?? [];
  return toFields([...specs, ...monthlyFeeSpecs(data)]);
}

/**
 * The statuses of a report on PRONI アイミツ's vendor screen (確定報告 and its cycle), by the hub's
 * report status. FAILED, DEAD and NOT_APPLICABLE are the hub's own (PRONI has no word for them).
 */
export const AIMITSU_REPORT_STATUS_LABELS = {
  PENDING: { ja: '報告期限前', en: 'Before the deadline' },
  OVERDUE: { ja: '報告期限超過', en: 'Past the deadline' },
  UNDER_REVIEW: { ja: '事務局確認中', en: 'Under review by the secretariat' },
  CORRECTION_REQUESTED: { ja: '修正依頼', en: 'Correction requested' },
  REPORTED: { ja: '報告済み', en: 'Reported' },
  FEE_ONGOING: { ja: '成約手数料発生中', en: 'Success fee accruing' },
} as const satisfies Record<string, Label>;

export const AIMITSU: PlatformProfile = {
  id: 'aimitsu',
  aliases: ['proni', 'proni-aimitsu', 'アイミツ'],
  label: { ja: 'PRONI アイミツ', en: 'PRONI Aimitsu' },
  responseClock: 'deadline-only',
  acceptStep: false,
  confirmationCycle: true,
  deliveredAfterConfirmed: true,
  channel: 'manual',
  answers: ['accept', 'decline'],
  reportKinds: REPORT_KINDS.filter((k) => !REFERRAL_ANSWER_KINDS.includes(k)),
  reportLabels: DEFAULT_REPORT_LABELS,
  form: aimitsuForm,
  reportStatusLabels: AIMITSU_REPORT_STATUS_LABELS,
};
