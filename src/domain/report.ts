/**
 * Reports a deal owes its referral platform (CONTRACT §5). Shared by the report service (which
 * derives them), the delivery adapters, the manual queue and the admin API.
 */

export const REPORT_KINDS = [
  'appointment',
  'won',
  'lost',
  'lost_withdrawn',
  'confirmed_amount',
  'delivered',
  'additional_order',
  /** The vendor declined (or skipped) the referral (Partner Center: Closed/Declined). Not in CONTRACT §5's list. */
  'declined',
  /**
   * The referral's response window ran out (Partner Center: Closed/Expired with the reason: a new
   * referral's 72 hours, an evaluation's 7 days, …). Not in CONTRACT §5's list.
   */
  'expired',
  /** The vendor is interested and evaluating the referral (Partner Center: New/Received). Not in CONTRACT §5's list. */
  'in_evaluation',
] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

/**
 * Answers about the referral itself rather than the business: recorded only for a platform whose
 * profile takes them (src/domain/platforms), unlike CONTRACT §5's kinds, which every referral deal
 * owes (an adapter records a kind its platform has no place for as not applicable).
 */
export const REFERRAL_ANSWER_KINDS: readonly ReportKind[] = [
  'declined',
  'expired',
  'in_evaluation',
];

/**
 * Referral states in which the referral is closed without a sale while the deal may move on
 * (CONTRACT §3.5): nothing more is reported to the platform after the close's own report.
 */
export const REFERRAL_CLOSED_STATES = ['DECLINED', 'SKIPPED', 'EXPIRED', 'FAILED'] as const;

/** The report a referral's close sends: the only one its platform gets after the close. */
export const CLOSING_REPORT: Record<(typeof REFERRAL_CLOSED_STATES)[number], ReportKind> = {
  DECLINED: 'declined',
  SKIPPED: 'declined',
  EXPIRED: 'expired',
  FAILED: 'expired',
};

/** How a platform takes reports. */
export const REPORT_CHANNELS = ['partner-center', 'webhook', 'manual'] as const;
export type ReportChannel = (typeof REPORT_CHANNELS)[number];

/**
 * `billingCount` of CONTRACT §4 (the plan's) and §5 (請求回数, decided per invoice: see
 * src/domain/billing-count.ts).
 */
export type BillingCount = 'one_time' | 'monthly_variable' | 'monthly_fixed';
export const BILLING_COUNTS = [
  'one_time',
  'monthly_variable',
  'monthly_fixed',
] as const satisfies readonly BillingCount[];

/**
 * When a deal was lost, as PRONI アイミツ's 失注報告 asks: before an appointment took place (the
 * customer could not be reached), or after it (talks did not lead to a contract).
 */
export type LostStage = 'before_appointment' | 'after_appointment';
export const LOST_STAGES = [
  'before_appointment',
  'after_appointment',
] as const satisfies readonly LostStage[];

/**
 * A report's content: the generic webhook's `data` (CONTRACT §5). Fields that do not apply to a
 * kind are omitted. Amounts are integers in the currency's smallest unit; dates are YYYY-MM-DD in
 * the deal's time zone.
 */
export interface ReportData {
  reportId: string;
  kind: ReportKind;
  platform: string;
  referralId?: string;
  dealId: string;
  crmDealId?: string;
  occurredAt: string;
  /** Deal name as the platform knows the case (案件名). */
  dealName?: string;
  customerName?: string;
  amountExTax?: number;
  taxAmount?: number;
  currency?: string;
  billingCount?: BillingCount;
  /** 受注内容: what was ordered. */
  orderDescription?: string;
  /** 請求時期: when invoices will be issued, in words (won, additional_order). */
  billingTiming?: string;
  /** confirmed_amount: the plan item the invoice bills. */
  itemKey?: string;
  invoiceNumber?: string;
  issueDate?: string;
  nextInvoiceDate?: string;
  hostedInvoiceUrl?: string;
  invoicePdfUrl?: string;
  /**
   * confirmed_amount, when the deal's contract is signed (COMPLETED): the signed contract as one
   * PDF with its certificate of completion (締結証明書), and the certificate alone, served by the
   * hub (`GET /api/deals/:id/contract/document`, `…/certificate`). PRONI アイミツ takes them as the
   * attachment when there is no invoice to attach.
   */
  contractDocumentUrl?: string;
  contractCertificateUrl?: string;
  /** confirmed_amount of a monthly_fixed fee's change: the first month billed at the new amount (YYYY-MM). */
  effectiveMonth?: string;
  /** confirmed_amount of a monthly_fixed fee's early end: the last month billed (YYYY-MM). */
  endMonth?: string;
  /** appointment: the date the deal was engaged (アポイント日). */
  appointmentDate?: string;
  /** lost, declined, expired: why (Partner Center's statusReason). */
  reason?: string;
  /** lost: before or after an appointment took place (PRONI アイミツ's 失注報告 asks which). */
  lostStage?: LostStage;
  /** lost, lost_withdrawn, declined, expired: the date it happened. */
  date?: string;
  /**
   * appointment (the referral accepted or engaged): the deal's value as known then, in the
   * smallest unit of `currency` — its amount, else the referral's estimated value.
   */
  dealValue?: number;
  /** appointment, won: the deal's expected or actual close date (YYYY-MM-DD), when known. */
  closingDate?: string;
  /** delivered: the delivery date (納品日). */
  deliveredOn?: string;
  /** additional_order: the items added. */
  items?: { key: string; label: string; amountExTax: number }[];
}

/** One field of a platform's form, copy-ready (the manual queue shows these). */
export interface ReportField {
  key: string;
  /** The platform's own label (Japanese for PRONI アイミツ). */
  label: string;
  labelEn: string;
  value: string;
}

/** Why an overdue manual report is postponed (PRONI アイミツ's three reasons). */
export const POSTPONE_REASONS = ['date_changed', 'not_started', 'lost'] as const;
export type PostponeReason = (typeof POSTPONE_REASONS)[number];
