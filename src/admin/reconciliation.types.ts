import { Invoice, Report, ReportStatus } from '../generated/prisma/client';

/** What reconciliation reads and answers (src/admin/reconcile-deal.ts compares, the service reads). */

export type MismatchKind =
  | 'missing_invoice'
  | 'duplicate_invoice'
  | 'amount_differs'
  | 'unknown_invoice'
  | 'status_differs'
  /** An invoice posted or paid that the referral platform was not told about (確定報告 missing or still owed). */
  | 'invoiced_not_reported'
  /** A delivered confirmed report states another amount than the hub's invoice or Stripe's subtotal. */
  | 'reported_amount_differs'
  /** A delivered confirmed report whose invoice is void in the hub or in Stripe. */
  | 'reported_but_voided'
  /**
   * An invoice the hub owes that Stripe has not received: open (PENDING, CREATING, CREATED) and
   * untouched for longer than RECOVERY_GRACE_MS, or its billing job parked as an open dead letter
   * (the attention list's definition, src/billing/due-not-issued.ts).
   */
  | 'due_not_issued';

export interface Mismatch {
  kind: MismatchKind;
  billingKey?: string;
  stripeInvoiceId?: string;
  reportId?: string;
  message: string;
}

/** One confirmed-amount report as reconciliation lists it. */
export interface ReconciledReport {
  id: string;
  status: ReportStatus;
  billingKey: string | null;
  itemKey: string | null;
  amountExTax: number | null;
  reportedAmount: number | null;
  dueAt: Date | null;
  deliveredAt: Date | null;
}

export interface ReconciledDeal {
  dealId: string;
  dealName: string;
  crmDealId: string | null;
  stage: string;
  currency: string;
  /** Contracted amount excl. tax: the deal amount, else what the plan adds up to. */
  contracted: number | null;
  /** Hub invoices in CREATED, POSTED or PAID: amount excl. tax. */
  invoicedHub: number;
  /** Stripe invoices of the deal that are neither draft nor void: subtotal (excl. tax). */
  invoicedStripe: number;
  /** Stripe amount_paid over the deal's invoices (incl. tax). */
  paid: number;
  /** The referral platform the deal reports to; null for a deal that came from no referral. */
  referralPlatform: string | null;
  /**
   * Reported to the referral platform, excl. tax: the confirmed-amount reports the platform has
   * (REPORTED, UNDER_REVIEW, CORRECTION_REQUESTED, FEE_ONGOING), each with the amount entered there
   * (reportedAmount) or else the amount it states. Null when the deal owes no reports.
   */
  reported: number | null;
  /** The deal's reports: how many in each status, and its confirmed-amount reports one by one. */
  reports: {
    total: number;
    byStatus: Partial<Record<ReportStatus, number>>;
    confirmed: ReconciledReport[];
  };
  hubInvoices: number;
  stripeInvoices: {
    id: string;
    number: string | null;
    status: string;
    customer: string;
    subtotal: number;
    total: number;
    amountPaid: number;
    billingKey: string | null;
  }[];
  mismatches: Mismatch[];
}

/** One page of the reconciliation: its deals newest first, and the cursor of the next page. */
export interface ReconciliationReport {
  /** When this page's Stripe reads began. */
  generatedAt: string;
  /** Of this page's deals. */
  summary: { deals: number; dealsWithMismatches: number; mismatches: number };
  /** Newest first (as every admin list). */
  deals: ReconciledDeal[];
  /** Pass as `cursor` for the next (older) page; null on the last page and with `dealId`. */
  nextCursor: string | null;
}

/** A hub invoice as reconciliation reads it (amounts as numbers: dbAmount). */
export type HubInvoice = Pick<
  Invoice,
  | 'billingKey'
  | 'itemKey'
  | 'period'
  | 'state'
  | 'providerInvoiceId'
  | 'invoiceNumber'
  | 'billingCustomerId'
  | 'lastError'
> & { amount: number; updatedAt?: Date };

/** What due_not_issued is judged by: the database's time, the grace, the parked billing keys. */
export interface DueFacts {
  now: Date;
  graceMs: number;
  /** Billing keys whose billing job is an OPEN dead letter. */
  parked: ReadonlySet<string>;
}

export interface DealInput {
  id: string;
  name: string;
  crmDealId: string | null;
  stage: string;
  currency: string;
  amount: number | null;
  billingPlan: unknown;
  /** The deal's referral platform (absent or null: the deal owes no reports). */
  referralPlatform?: string | null;
}

/** A report of the deal as reconciliation needs it (amounts as numbers: dbAmount). */
export type ReportRow = Pick<
  Report,
  | 'id'
  | 'kind'
  | 'status'
  | 'factKey'
  | 'billingKey'
  | 'dueAt'
  | 'deliveredAt'
  | 'lastError'
  | 'data'
> & { amountExTax: number | null; reportedAmount: number | null };
