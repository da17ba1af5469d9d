/**
 * An invoice's state in the hub and the groups every module reads it by. The list equals the
 * database enum `InvoiceState` (prisma/schema.prisma; src/prisma/enums.spec.ts checks it).
 */
export const INVOICE_STATES = [
  /** Billing key taken; no call to the invoicing system made yet. */
  'PENDING',
  /** A call was started: its outcome may be unknown until the next attempt checks. */
  'CREATING',
  /** A draft exists in the invoicing system (its id is known). */
  'CREATED',
  /** Finalized and sent to the customer. */
  'POSTED',
  'PAID',
  'VOID',
  'UNCOLLECTIBLE',
] as const;
export type InvoiceState = (typeof INVOICE_STATES)[number];

/** The invoicing system holds it and it is not void: what finance counts as invoiced. */
export const INVOICED_STATES: readonly InvoiceState[] = ['CREATED', 'POSTED', 'PAID'];

/**
 * Sent to the customer or paid: a confirmed amount — the referral platform's 確定報告, the CRM's
 * invoiced total.
 */
export const CONFIRMED_STATES: readonly InvoiceState[] = ['POSTED', 'PAID'];

/** Nothing more will happen to it: paid, void or uncollectible. */
export const SETTLED_STATES: readonly InvoiceState[] = ['PAID', 'VOID', 'UNCOLLECTIBLE'];

/** Invoice states only move forward (events may arrive in any order): a state moves to a higher rank. */
export const INVOICE_STATE_RANK: Readonly<Record<InvoiceState, number>> = {
  PENDING: 0,
  CREATING: 1,
  CREATED: 2,
  POSTED: 3,
  PAID: 4,
  UNCOLLECTIBLE: 4,
  VOID: 5,
};

/** The state a normalized invoice event (`invoice.*`) moves an invoice to; undefined: none. */
export function invoiceStateForEvent(kind: string): InvoiceState | undefined {
  switch (kind) {
    case 'invoice.finalized':
      return 'CREATED';
    case 'invoice.sent':
      return 'POSTED';
    case 'invoice.paid':
      return 'PAID';
    case 'invoice.voided':
      return 'VOID';
    case 'invoice.marked_uncollectible':
      return 'UNCOLLECTIBLE';
    default:
      return undefined;
  }
}

/**
 * The state an invoicing system's status (the invoicing port's words: draft, open, paid, void,
 * uncollectible) means; `otherwise` for draft/open and unknown statuses.
 */
export function invoiceStateOfStatus(status: string, otherwise: InvoiceState): InvoiceState {
  switch (status) {
    case 'paid':
      return 'PAID';
    case 'void':
      return 'VOID';
    case 'uncollectible':
      return 'UNCOLLECTIBLE';
    default:
      return otherwise;
  }
}

/**
 * What a confirmed invoice's row still lacks of what a 確定報告 states (CONTRACT §5): its number,
 * hosted page, PDF, and its own total and tax (without a total, the row's tax is the hub's
 * estimate). Empty when the row has it all.
 */
export function missingInvoiceFacts(invoice: {
  invoiceNumber: string | null;
  hostedInvoiceUrl: string | null;
  invoicePdfUrl: string | null;
  total: bigint | number | null;
}): string[] {
  return [
    ...(invoice.invoiceNumber ? [] : ['number']),
    ...(invoice.hostedInvoiceUrl ? [] : ['hosted URL']),
    ...(invoice.invoicePdfUrl ? [] : ['PDF URL']),
    ...(invoice.total !== null ? [] : ['own tax']),
  ];
}
