/**
 * PRONI アイミツ (also called `proni`): a lead-matching site without an API. A lead is the vendor's
 * once won (当選), so there is no accept step and no response clock unless the referral gives a
 * deadline; every report is a task in the manual queue, with the fields of the platform's form.
 */
import {
  Correction,
  DEFAULT_REPORT_LABELS,
  FieldSpec,
  correctForm,
  formatAmount,
  formatDate,
  text,
  toFields,
} from './form-values';
import type { Label, PlatformProfile } from './profile';
import {
  BillingCount,
  LostStage,
  REFERRAL_ANSWER_KINDS,
  REPORT_KINDS,
  ReportData,
  ReportField,
} from '../report';

/**
 * 請求回数 (確定報告) as PRONI アイミツ's form words its choices (ASCII parentheses, as the platform
 * writes them; CONTRACT §5).
 */
export const BILLING_COUNT_LABELS: Readonly<Record<BillingCount, string>> = {
  one_time: '1回',
  monthly_variable: '複数回(毎月変動)',
  monthly_fixed: '複数回(月額固定)',
};

/** 失注報告: PRONI asks whether the customer could not be reached, or talks did not end in a contract. */
export const LOST_STAGE_LABELS: Readonly<Record<LostStage, string>> = {
  before_appointment: 'つながらなかった',
  after_appointment: '成約には至らなかった',
};

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

/** 請求時期: the hub's words for it, else at least how many times it is billed. */
const billingTimingOf = (data: ReportData) => text(data.billingTiming) ?? billingCountOf(data);

/** The invoice to attach (its PDF, else its page); without one, the signed contract (CONTRACT §5). */
function attachmentSpecs(data: ReportData): FieldSpec[] {
  const invoice = text(data.invoicePdfUrl) ?? text(data.hostedInvoiceUrl);
  const contract = invoice ? undefined : text(data.contractDocumentUrl);
  const certificate = contract ? text(data.contractCertificateUrl) : undefined;
  return [
    {
      key: 'attachment',
      label: '請求書添付',
      labelEn: contract
        ? 'Attachment: the signed contract (PDF with its certificate of completion), as there is no invoice'
        : 'Attachment: the invoice (PDF)',
      value: invoice ?? contract,
      required: true,
      input: { type: 'text' },
    },
    {
      key: 'attachmentCertificate',
      label: '請求書添付',
      labelEn: 'Attachment: the certificate of completion (締結証明書) of the signed contract',
      value: certificate,
      required: false,
      input: { type: 'text' },
    },
  ];
}

/** Every field of the platform's form for the report's kind, in the form's order. */
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
          input: { type: 'text', data: 'dealName' },
        },
        {
          key: 'appointmentDate',
          label: 'アポイント日',
          labelEn: 'Appointment date',
          value: eventDate(data.appointmentDate),
          required: true,
          input: { type: 'date', data: 'appointmentDate' },
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
          input: { type: 'text', data: 'orderDescription' },
        },
        {
          key: 'amountExTax',
          label: '受注金額（税抜）',
          labelEn: 'Order amount (excl. tax)',
          value: amountOf(data),
          required: true,
          input: { type: 'amount' },
        },
        {
          key: 'billingTiming',
          label: '請求時期',
          labelEn: 'When it will be invoiced',
          value: billingTimingOf(data),
          required: true,
          input: { type: 'text', data: 'billingTiming' },
        },
      ];
    case 'lost':
      return [
        {
          key: 'lostStage',
          label: '失注の状況',
          labelEn: 'Lost before an appointment (not reached) or after it (no contract)',
          value: data.lostStage ? LOST_STAGE_LABELS[data.lostStage] : undefined,
          required: true,
          input: { type: 'choice', data: 'lostStage', choices: LOST_STAGE_LABELS },
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
          input: { type: 'date', data: 'date' },
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
          input: { type: 'choice', data: 'billingCount', choices: BILLING_COUNT_LABELS },
        },
        {
          key: 'orderDescription',
          label: '受注内容',
          labelEn: 'Order description',
          value: text(data.orderDescription),
          required: true,
          input: { type: 'text', data: 'orderDescription' },
        },
        {
          key: 'amountExTax',
          label: '請求金額',
          labelEn: 'Invoice amount (excl. tax)',
          value: amountOf(data),
          required: true,
          input: { type: 'amount' },
        },
        {
          key: 'issueDate',
          label: '初回の請求書発行日',
          labelEn: 'Invoice issue date',
          value: formatDate(data.issueDate, timeZone),
          required: true,
          input: { type: 'date', data: 'issueDate' },
        },
        {
          key: 'nextInvoiceDate',
          label: '次回請求書発行日',
          labelEn: 'Next invoice date',
          value: formatDate(data.nextInvoiceDate, timeZone),
          // A one-time invoice has no next one; billed several times, the form wants the date.
          required: data.billingCount !== undefined && data.billingCount !== 'one_time',
          input: { type: 'date', data: 'nextInvoiceDate' },
        },
        ...attachmentSpecs(data),
      ];
    case 'delivered':
      return [
        {
          key: 'deliveredOn',
          label: '納品日',
          labelEn: 'Delivery date',
          value: eventDate(data.deliveredOn),
          required: true,
          input: { type: 'date', data: 'deliveredOn' },
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
          input: { type: 'text', data: 'orderDescription' },
        },
        {
          key: 'amountExTax',
          label: '金額（税抜）',
          labelEn: 'Amount (excl. tax)',
          value: amountOf(data),
          required: true,
          input: { type: 'amount' },
        },
        {
          key: 'billingTiming',
          label: '請求時期',
          labelEn: 'When it will be invoiced',
          value: billingTimingOf(data),
          required: true,
          input: { type: 'text', data: 'billingTiming' },
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
          input: { type: 'text', data: 'reason' },
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
          input: { type: 'date', data: 'date' },
        },
        {
          key: 'reason',
          label: '理由',
          labelEn: 'Reason',
          value: text(data.reason),
          required: true,
          input: { type: 'text', data: 'reason' },
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
          input: { type: 'date', data: 'date' },
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
      input: { type: 'month', data: 'effectiveMonth' },
    });
  }
  if (data.endMonth) {
    specs.push({
      key: 'endMonth',
      label: '最終請求月',
      labelEn: 'Last month billed',
      value: data.endMonth,
      required: true,
      input: { type: 'month', data: 'endMonth' },
    });
  }
  return specs;
}

/** Every field of the form (none for a kind the form does not know), in the form's order. */
const specsOf = (timeZone: string) => (data: ReportData) => [
  ...((specsFor(data, timeZone) as FieldSpec[] | undefined) ?? []),
  ...monthlyFeeSpecs(data),
];

export function aimitsuForm(data: ReportData, timeZone: string): ReportField[] {
  return toFields(specsOf(timeZone)(data));
}

/** Finance's correction of a report's form (修正依頼): see correctForm. */
export function aimitsuCorrect(
  data: ReportData,
  timeZone: string,
  stored: readonly ReportField[],
  values: Readonly<Record<string, string>>,
): Correction {
  return correctForm(specsOf(timeZone), data, stored, values);
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
  correct: aimitsuCorrect,
  reportStatusLabels: AIMITSU_REPORT_STATUS_LABELS,
};
