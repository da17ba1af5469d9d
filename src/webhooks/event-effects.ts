import { Prisma } from '../generated/prisma/client';
import { EventOutcome } from '../lifecycle/lifecycle.service';
import { dbAmount } from '../prisma/db-amount';
import { JobOutcomeKind } from '../queue/job-handler.decorator';

/** What applying an event would do: what it wrote in its transaction, before the rollback. */
export interface EventEffects {
  /** FAILED: the replay would fail again (`error` says why) and change nothing. */
  outcome: JobOutcomeKind | 'FAILED';
  error: string | null;
  dealId: string | null;
  ignored: string | null;
  /** Timeline entries it would add (transitions, refusals, invoices due, reports queued…). */
  timeline: { kind: string; message: string }[];
  /** Invoices it would owe: one per new billing key. */
  invoices: { billingKey: string; amount: number; taxAmount: number; currency: string }[];
  /** Reports it would produce for the referral platform. */
  reports: { kind: string; channel: string; platform: string; amountExTax: number | null }[];
  /** Jobs it would queue (Stripe invoices, envelopes, CRM write-back, report deliveries). */
  jobs: { name: string; jobId: string }[];
}

/** Thrown inside a dry run's transaction to roll it back; carries what the run would have done. */
export class DryRunRollback extends Error {
  constructor(readonly effects: EventEffects) {
    super('dry run rolled back');
  }
}

/** Rows this transaction inserted (xmin = our transaction id). */
const OURS = Prisma.sql`xmin::text = (pg_current_xact_id()::text::bigint % 4294967296)::text`;

/** What the dry run's transaction wrote so far (read just before it is rolled back). */
export async function dryRunEffects(
  tx: Prisma.TransactionClient,
  outcome: EventOutcome,
  result: JobOutcomeKind,
): Promise<EventEffects> {
  // Amount columns are BIGINT: raw SQL returns them as bigint, turned into numbers by dbAmount.
  const [timeline, invoiceRows, reportRows, jobs] = await Promise.all([
    tx.$queryRaw<{ kind: string; message: string }[]>`
      SELECT kind, message FROM timeline_entry WHERE ${OURS} ORDER BY id`,
    tx.$queryRaw<{ billingKey: string; amount: bigint; taxAmount: bigint; currency: string }[]>`
      SELECT billing_key AS "billingKey", amount, tax_amount AS "taxAmount", currency
      FROM invoice WHERE ${OURS} ORDER BY billing_key`,
    tx.$queryRaw<{ kind: string; channel: string; platform: string; amountExTax: bigint | null }[]>`
      SELECT kind, channel, platform, amount_ex_tax AS "amountExTax" FROM report WHERE ${OURS}
      ORDER BY occurred_at, id`,
    tx.$queryRaw<{ name: string; jobId: string }[]>`
      SELECT job_name AS name, job_id AS "jobId" FROM outbox WHERE ${OURS} ORDER BY id`,
  ]);
  return {
    outcome: result,
    error: null,
    dealId: outcome.dealId ?? null,
    ignored: outcome.ignored ?? null,
    timeline,
    invoices: invoiceRows.map((i) => ({
      ...i,
      amount: dbAmount(i.amount),
      taxAmount: dbAmount(i.taxAmount),
    })),
    reports: reportRows.map((r) => ({ ...r, amountExTax: dbAmount(r.amountExTax) })),
    jobs,
  };
}

/** The effects of an event that would only be recorded (or fail): nothing else happens. */
export function noEffects(
  outcome: EventEffects['outcome'],
  ignored: string | null,
  error: string | null = null,
): EventEffects {
  return {
    outcome,
    error,
    dealId: null,
    ignored,
    timeline: [],
    invoices: [],
    reports: [],
    jobs: [],
  };
}
