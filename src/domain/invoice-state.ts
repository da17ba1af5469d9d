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
