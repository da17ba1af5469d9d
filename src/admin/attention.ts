import { NO_BILLING_PLAN, billability } from '../billing/billability';
import { OPEN_INVOICE_SQL, PARKED_BILLING_SQL, dueNotIssuedText } from '../billing/due-not-issued';
import { InvoiceState, Prisma } from '../generated/prisma/client';

/**
 * The deals that need a person (CONTRACT §6 `GET /api/deals?attention=true`), each with why.
 *
 * Every reason is one source in ATTENTION_SOURCES: the SQL that finds the deals having it (each
 * source on an index of its own, so the list never walks every deal) and the entries it adds to a
 * page of deals. Later reasons (held items, failed or overdue payments, open disputes,
 * reconciliation mismatches) are one more source each; their labels go in the dashboard's
 * dictionaries as `attention.reason.<reason>`.
 */
export const ATTENTION_REASONS = ['not_billable', 'due_not_issued'] as const;
export type AttentionReason = (typeof ATTENTION_REASONS)[number];

export interface AttentionEntry {
  reason: AttentionReason;
  /** Since when the deal has needed a person for this reason. */
  since: Date;
  /** What is wrong, in one line. */
  detail: string;
  /** due_not_issued: the invoice's billing key and item. */
  billingKey?: string;
  itemKey?: string;
}

export interface AttentionParams {
  /** RECOVERY_GRACE_MS: how long open billing work may stay untouched. */
  graceMs: number;
}

type Db = Prisma.TransactionClient;

interface AttentionSource {
  reason: AttentionReason;
  /** `SELECT deal_id …` of every deal with this reason. */
  deals(p: AttentionParams): Prisma.Sql;
  /** This reason's entries for the given deals. */
  entries(db: Db, dealIds: string[], p: AttentionParams): Promise<Map<string, AttentionEntry[]>>;
}

/**
 * Won or later without a plan, written as the predicate of the partial index
 * deal_won_without_plan_idx (migration amounts_bigint), so only those deals are read.
 */
const WON_OR_LATER_SQL = Prisma.raw(`stage IN ('WON', 'DELIVERED', 'CLOSED')`);
const NO_PLAN_SQL = Prisma.raw(`billing_plan IS NULL`);
const quiet = (p: AttentionParams) =>
  Prisma.sql`i.updated_at < now() - make_interval(secs => ${p.graceMs}::float8 / 1000.0)`;

function group<T extends { dealId: string }>(rows: T[], entry: (r: T) => AttentionEntry) {
  const out = new Map<string, AttentionEntry[]>();
  for (const r of rows) out.set(r.dealId, [...(out.get(r.dealId) ?? []), entry(r)]);
  return out;
}

/** Won or later, but no valid plan in force (none at all, or the plan was refused). */
const notBillable: AttentionSource = {
  reason: 'not_billable',
  deals: () =>
    Prisma.sql`SELECT id AS deal_id FROM deal WHERE ${WON_OR_LATER_SQL} AND ${NO_PLAN_SQL}`,
  async entries(db, dealIds) {
    const rows = await db.$queryRaw<
      { dealId: string; planError: string | null; wonAt: Date | null; updatedAt: Date }[]
    >`SELECT id AS "dealId", plan_error AS "planError", won_at AS "wonAt", updated_at AS "updatedAt"
        FROM deal WHERE id = ANY(${dealIds}) AND ${WON_OR_LATER_SQL} AND ${NO_PLAN_SQL}`;
    return group(rows, (r) => ({
      reason: 'not_billable',
      since: r.wonAt ?? r.updatedAt,
      detail: billability({ billingPlan: null, planError: r.planError }).reason ?? NO_BILLING_PLAN,
    }));
  },
};

/** An invoice the hub owes that Stripe has not received (src/billing/due-not-issued.ts). */
const dueNotIssued: AttentionSource = {
  reason: 'due_not_issued',
  // Quiet open invoices through the partial index invoice_open_updated_at_idx; parked ones
  // through the dead letters' (status, created_at) index and the unique billing key.
  deals: (p) => Prisma.sql`SELECT i.deal_id FROM invoice i WHERE ${OPEN_INVOICE_SQL} AND ${quiet(p)}
    UNION SELECT i.deal_id FROM dead_letter d JOIN invoice i ON i.billing_key = d.data->>'billingKey'
     WHERE ${PARKED_BILLING_SQL} AND ${OPEN_INVOICE_SQL}`,
  async entries(db, dealIds, p) {
    const rows = await db.$queryRaw<
      {
        dealId: string;
        billingKey: string;
        itemKey: string;
        period: string | null;
        state: InvoiceState;
        createdAt: Date;
        updatedAt: Date;
        lastError: string | null;
        deadLetterId: string | null;
        deadLetterError: string | null;
      }[]
    >`SELECT i.deal_id AS "dealId", i.billing_key AS "billingKey", i.item_key AS "itemKey",
             i.period, i.state, i.created_at AS "createdAt", i.updated_at AS "updatedAt",
             i.last_error AS "lastError", dl.id AS "deadLetterId", dl.error AS "deadLetterError"
        FROM invoice i
        LEFT JOIN LATERAL (SELECT d.id, d.error FROM dead_letter d WHERE ${PARKED_BILLING_SQL}
                            ORDER BY d.created_at DESC LIMIT 1) dl ON true
       WHERE i.deal_id = ANY(${dealIds}) AND ${OPEN_INVOICE_SQL}
         AND (${quiet(p)} OR dl.id IS NOT NULL)
       ORDER BY i.created_at, i.billing_key`;
    return group(rows, (r) => ({
      reason: 'due_not_issued',
      since: r.createdAt,
      detail: dueNotIssuedText({ ...r, lastError: r.lastError ?? r.deadLetterError }),
      billingKey: r.billingKey,
      itemKey: r.itemKey,
    }));
  },
};

/** Every reason, in the order a deal's entries are listed. */
export const ATTENTION_SOURCES: readonly AttentionSource[] = [notBillable, dueNotIssued];

/**
 * One page of the deals needing attention, newest first (deal ids are time-ordered): the ids of
 * the page (and the next cursor) from the union of every source, then each source's entries for
 * just those deals.
 */
export async function attentionPage(
  db: Db,
  q: { limit: number; cursor?: string; stage?: string },
  p: AttentionParams,
): Promise<{
  dealIds: string[];
  nextCursor: string | null;
  entries: Map<string, AttentionEntry[]>;
}> {
  const union = Prisma.join(
    ATTENTION_SOURCES.map((s) => Prisma.sql`(${s.deals(p)})`),
    ' UNION ',
  );
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT a.deal_id AS id FROM (${union}) a
    ${q.stage ? Prisma.sql`JOIN deal d ON d.id = a.deal_id AND d.stage = ${q.stage}::"DealStage"` : Prisma.empty}
    ${q.cursor ? Prisma.sql`WHERE a.deal_id < ${q.cursor}` : Prisma.empty}
    ORDER BY a.deal_id DESC LIMIT ${q.limit + 1}`;
  const dealIds = rows.slice(0, q.limit).map((r) => r.id);
  const nextCursor = rows.length > q.limit ? dealIds[dealIds.length - 1] : null;
  const entries = new Map<string, AttentionEntry[]>();
  if (dealIds.length === 0) return { dealIds, nextCursor, entries };
  for (const source of ATTENTION_SOURCES) {
    for (const [dealId, list] of await source.entries(db, dealIds, p)) {
      entries.set(dealId, [...(entries.get(dealId) ?? []), ...list]);
    }
  }
  return { dealIds, nextCursor, entries };
}
