import { InvoiceState, Prisma } from '../generated/prisma/client';
import { providerFor } from '../config/providers';
import { JobName } from '../queue/job-name.enum';

/** The invoicing system's name in messages (the provider registry). */
const INVOICING = providerFor('invoicing').label;

/**
 * "Due but not issued": an invoice the hub owes that Stripe has not received — one definition for
 * the attention list (GET /api/deals?attention=true) and reconciliation's `due_not_issued`.
 *
 * The invoice row is in a state where the issuer still has Stripe work to do (PENDING, CREATING,
 * CREATED) and either
 *  - it was untouched for longer than RECOVERY_GRACE_MS (the recovery sweep's own "gone quiet":
 *    a live attempt touches its row, so a quiet one is stuck or waiting on retries), or
 *  - its billing job is parked as an OPEN dead letter (it waits for an admin's replay, whatever
 *    its age).
 * Times are the database's (now()), as the recovery sweep reads them.
 */

/** Invoice states in which the issuer still has Stripe work to do. */
export const OPEN_INVOICE_STATES: readonly InvoiceState[] = ['PENDING', 'CREATING', 'CREATED'];

/**
 * `i.state IN ('PENDING', 'CREATING', 'CREATED')` written out, so the planner matches the partial
 * index invoice_open_updated_at_idx (its predicate is these literals).
 */
export const OPEN_INVOICE_SQL = Prisma.raw(
  `i.state IN (${OPEN_INVOICE_STATES.map((s) => `'${s}'`).join(', ')})`,
);

/** The OPEN dead letters of billing jobs, matched to invoice `i` by billing key. */
export const PARKED_BILLING_SQL = Prisma.sql`d.status = 'OPEN'
  AND d.job_name = ${JobName.BillingInvoiceIssue} AND d.data->>'billingKey' = i.billing_key`;

export interface InvoiceDueFacts {
  state: InvoiceState;
  updatedAt: Date;
  /** An OPEN dead letter holds its billing job. */
  parked: boolean;
}

/** The definition above, for an invoice read with its dead-letter fact. */
export function isDueNotIssued(inv: InvoiceDueFacts, now: Date, graceMs: number): boolean {
  if (!OPEN_INVOICE_STATES.includes(inv.state)) return false;
  return inv.parked || now.getTime() - inv.updatedAt.getTime() > graceMs;
}

export interface DueNotIssuedDetail {
  billingKey: string;
  itemKey: string;
  period: string | null;
  state: InvoiceState;
  updatedAt: Date;
  lastError: string | null;
  deadLetterId: string | null;
}

/** One line naming the billing key, the item and the last error (or how long it has been quiet). */
export function dueNotIssuedText(d: DueNotIssuedDetail): string {
  const item = `item ${d.itemKey}${d.period ? ` (${d.period})` : ''}`;
  const why = d.lastError
    ? `last error: ${d.lastError}`
    : `no attempt since ${d.updatedAt.toISOString()}`;
  const parked = d.deadLetterId ? `; dead letter ${d.deadLetterId} waits for a replay` : '';
  return `invoice ${d.billingKey} for ${item} is ${d.state}, not issued in ${INVOICING}: ${why}${parked}`;
}
