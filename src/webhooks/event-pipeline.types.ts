import { TransientError } from '../common/errors';
import { CrmDeal } from '../ports/crm.port';
import { PlatformReferral } from '../ports/referral-platform.port';
import { NormalizedEvent } from '../domain/normalized-event';
import { Prisma } from '../generated/prisma/client';

/** The shapes the event pipeline's steps hand each other (docs/decisions/0007). */

export type Tx = Prisma.TransactionClient;

/** An inbox row as the pipeline reads it. */
export interface EventRow {
  id: string;
  provider: string;
  type: string;
  status: string;
  payload: unknown;
  subject_key: string | null;
  correlation_id: string;
  received_at: Date;
  attempts: number;
  /** Attempts made before the latest replay (the retry budget counts from here). */
  attempt_base: number;
  replay_count: number;
}

/** Which code applies a normalized event. */
export type Applier = 'lifecycle' | 'referral' | 'record';

/** An event read, normalized and routed (no I/O yet). */
export interface Prepared {
  row: EventRow;
  lane: string;
  /** null: a type the hub does not use. */
  normalized: NormalizedEvent | null;
  /** normalize() refused the payload: the event fails (permanently). */
  invalid?: Error;
  applier?: Applier;
  /** The remote read the event needs before its transaction. */
  remote?: 'crm' | 'referral';
}

/** A prepared event with the result of its remote read, ready for its lane transaction. */
export interface Ready {
  p: Prepared;
  snapshot?: CrmDeal | PlatformReferral | null;
  /** Why the event fails without being applied (again), and how long its try took. */
  failed?: unknown;
  failedMs?: number;
}

/** A lane transaction's only event failed (no savepoint): the transaction is rolled back. */
export class LoneEventFailed extends Error {
  constructor(readonly ready: Ready) {
    super('the lone event of a lane transaction failed');
  }
}

/** What became of one event, written back in one statement per batch. */
export interface Done {
  row: EventRow;
  status: 'PROCESSED' | 'IGNORED';
  dealId: string | null;
  normalized: NormalizedEvent | null;
  reason: string | null;
  durationMs: number;
}

export interface Failed {
  row: EventRow;
  normalized: NormalizedEvent | null;
  error: unknown;
  durationMs: number;
}

/** The job an event is processed under (attempt rows name it). */
export interface RunContext {
  jobName: string;
  jobId: string;
  /** A job of this one event (replay, retry): its id is unique to this run of the event. */
  single?: boolean;
}

export const BUSY = Symbol('lane busy');

/** What one lane transaction did with one event. */
export interface LaneResult {
  row: EventRow;
  status: 'PROCESSED' | 'IGNORED' | 'FAILED';
}

/** The run context of dry runs (nothing they write is kept). */
export const RUN_DRY: RunContext = { jobName: 'dry-run', jobId: 'dry-run' };

/** Postgres gave up waiting for a lock (lock_timeout). */
export function isLockTimeout(err: unknown): boolean {
  const e = err as { code?: unknown; meta?: { code?: unknown }; message?: unknown } | null;
  return (
    e?.code === '55P03' ||
    e?.meta?.code === '55P03' ||
    /lock timeout|55P03/.test(String(e?.message ?? ''))
  );
}

/** A lane whose lock, or a row it needs, stayed taken longer than SERIALIZATION_LOCK_TIMEOUT_MS. */
export function busy(lane: string, cause: unknown): TransientError {
  return new TransientError(`${lane} is busy (lock wait timed out)`, undefined, { cause });
}

export function ignoredAtOnce(p: Prepared, reason: string): Done {
  return { row: p.row, status: 'IGNORED', dealId: null, normalized: null, reason, durationMs: 0 };
}
