/**
 * A deal's timeline (CONTRACT §6): what happened to it and why, appended in the transaction of the
 * change it explains. A store below the modules: the lifecycle, billing and reporting all write it.
 */
import { TimelineInput } from '../domain/timeline-entry';
import { Prisma } from '../generated/prisma/client';

export type { TimelineInput, TimelineKind } from '../domain/timeline-entry';

/** Transactions whose entries wait for flushTimeline (see deferTimeline). */
const deferred = new WeakMap<object, TimelineInput[]>();

/**
 * Appends to a deal's timeline inside the caller's transaction (it commits with the change it
 * explains). In a transaction given to deferTimeline the entries wait for flushTimeline; otherwise
 * they are written at once.
 */
export async function addTimeline(
  tx: Prisma.TransactionClient,
  entries: TimelineInput | TimelineInput[],
): Promise<void> {
  const list = Array.isArray(entries) ? entries : [entries];
  if (list.length === 0) return;
  const waiting = deferred.get(tx);
  if (waiting) waiting.push(...list);
  else await insertTimeline(tx, list);
}

/**
 * From now on `tx`'s timeline entries wait and are written together by flushTimeline: one
 * statement per event instead of one per entry (a signed contract writes three). Whoever defers
 * flushes before the transaction (or savepoint) ends and before reading the timeline in it, and
 * discards what a rolled-back savepoint wrote.
 */
export function deferTimeline(tx: Prisma.TransactionClient): void {
  deferred.set(tx, []);
}

/** Writes the entries `tx` holds back (if any), in the order they were added. */
export async function flushTimeline(tx: Prisma.TransactionClient): Promise<void> {
  const waiting = deferred.get(tx);
  if (!waiting || waiting.length === 0) return;
  await insertTimeline(tx, waiting.splice(0));
}

/** Drops the entries `tx` holds back (their savepoint was rolled back). */
export function discardTimeline(tx: Prisma.TransactionClient): void {
  deferred.get(tx)?.splice(0);
}

/**
 * One statement for any number of entries, in the order given (ids follow it). Raw SQL rather than
 * createMany: it runs for every event on the hot path (src/prisma/model-columns.ts). An entry
 * without `at` gets the database's clock at the statement (as Prisma's default did).
 */
async function insertTimeline(tx: Prisma.TransactionClient, list: TimelineInput[]): Promise<void> {
  const col = <T>(f: (e: TimelineInput) => T) => list.map(f);
  await tx.$executeRaw`
    INSERT INTO timeline_entry (deal_id, at, kind, event_id, from_stage, to_stage, message, cause, details)
    SELECT v.deal_id, COALESCE(v.at, clock_timestamp()), v.kind, v.event_id,
           v.from_stage::"DealStage", v.to_stage::"DealStage", v.message, v.cause, v.details::jsonb
      FROM unnest(${col((e) => e.dealId)}::text[], ${col((e) => e.at?.toISOString() ?? null)}::timestamptz[],
                  ${col((e) => e.kind)}::text[], ${col((e) => e.eventId ?? null)}::text[],
                  ${col((e) => e.fromStage ?? null)}::text[], ${col((e) => e.toStage ?? null)}::text[],
                  ${col((e) => e.message)}::text[], ${col((e) => e.cause)}::text[],
                  ${col((e) => (e.details == null ? null : JSON.stringify(e.details)))}::text[])
           WITH ORDINALITY AS v(deal_id, at, kind, event_id, from_stage, to_stage, message, cause, details, n)
     ORDER BY v.n`;
}
