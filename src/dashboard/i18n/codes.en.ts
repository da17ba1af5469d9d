import { CodeLabels, prefixed } from './codes.ja';

/** The hub's codes in English words (the same lists as codes.ja.ts). */
export const CODE_LABELS_EN: CodeLabels = {
  stage: {
    REFERRED: 'Referred',
    APPOINTMENT: 'Appointment',
    NEGOTIATING: 'Negotiating',
    CONTRACT_SENT: 'Contract sent',
    WON: 'Won',
    DELIVERED: 'Delivered',
    CLOSED: 'Closed',
    LOST: 'Lost',
    DECLINED: 'Declined',
    EXPIRED: 'Expired',
  },
  billingStatus: {
    NOT_READY: 'Not ready',
    READY: 'Ready to invoice',
    INVOICE_CREATED: 'Invoice created',
    INVOICE_POSTED: 'Invoice sent',
    PAID: 'Paid',
    VOID: 'Void',
  },
  invoiceState: {
    PENDING: 'Pending',
    CREATING: 'Creating',
    CREATED: 'Draft created',
    POSTED: 'Sent',
    PAID: 'Paid',
    VOID: 'Void',
    UNCOLLECTIBLE: 'Uncollectible',
  },
  contractStatus: {
    PENDING: 'Pending',
    CREATING: 'Creating',
    SENT: 'Sent',
    DELIVERED: 'Viewed',
    COMPLETED: 'Completed',
    DECLINED: 'Declined',
    VOIDED: 'Voided',
  },
  referralState: {
    OPEN: 'Open',
    IN_EVALUATION: 'In evaluation',
    ACCEPTED: 'Accepted',
    DECLINED: 'Declined',
    SKIPPED: 'Skipped',
    EXPIRED: 'Expired',
    FAILED: 'Failed (unanswered in time)',
    CLOSED: 'Closed',
  },
  reportStatus: {
    PENDING: 'Pending',
    OVERDUE: 'Overdue',
    UNDER_REVIEW: 'Under review',
    CORRECTION_REQUESTED: 'Correction requested',
    REPORTED: 'Reported',
    FEE_ONGOING: 'Fee ongoing',
    FAILED: 'Delivery failed',
    DEAD: 'Delivery gave up',
    NOT_APPLICABLE: 'Not applicable',
  },
};

export const codesEn = prefixed(CODE_LABELS_EN);
