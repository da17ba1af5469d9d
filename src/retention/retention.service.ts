import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { PoolClient } from 'pg';

import { Clock } from '../common/clock';
import { errorMessage } from '../common/errors';
import { PeriodicPass } from '../common/periodic-pass';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../observability/metrics.service';
import { PrismaService } from '../prisma/prisma.service';

/** How often each worker looks for rows past RETENTION_DAYS (the daily purge, in hourly slices). */
export const PURGE_EVERY_MS = 60 * 60_000;
/** Rows per statement: each batch is one short transaction of its own. */
export const PURGE_BATCH = 2_000;
/** The session advisory lock that lets one worker at a time purge (hashtextextended of it). */
export const PURGE_LOCK_KEY = 'closeloop:retention-purge';

export type PurgedTable = 'webhook_event' | 'job_attempt' | 'dashboard_session';

export interface PurgeResult {
  /** false: another worker held the purge lock, so this one did nothing. */
  ran: boolean;
  /** Rows emptied (webhook_event) or deleted (job_attempt, dashboard_session), by table. */
  purged: Record<PurgedTable, number>;
  /** Statements run, by table (the last of each finds fewer rows than a batch). */
  batches: Record<PurgedTable, number>;
  /** Events received and job attempts finished before this instant were due. */
  cutoff: Date | null;
}

/**
 * A batch of events past retention whose processing is over (PROCESSED, IGNORED, DEAD; never
 * RECEIVED or FAILED, which a worker may still be working on): payload and headers become JSON
 * null, the normalized event and the last error (both can quote personal data from the payload:
 * names, e-mail addresses, a provider's message about them) are cleared, purged_at is set. The row
 * keeps its identity (provider, provider_event_id), status, times and deal, so a late duplicate
 * delivery is still recognised, and its dead letters and job attempts still point at it.
 * FOR NO KEY UPDATE SKIP LOCKED: rows someone holds are left for the next run, and the FK checks
 * of rows inserted meanwhile (KEY SHARE) are not blocked. Keyset ($2) so no batch re-walks the
 * index entries of the rows the batches before it purged. The batch's ids are one array (an
 * InitPlan), so the outer statement finds its rows by primary key, never by joining the table.
 */
const PURGE_EVENTS = `
  UPDATE webhook_event
     SET payload = 'null'::jsonb, headers = 'null'::jsonb, normalized = NULL, last_error = NULL,
         purged_at = now()
   WHERE id = ANY (ARRAY(
           SELECT id FROM webhook_event
            WHERE purged_at IS NULL AND status IN ('PROCESSED', 'IGNORED', 'DEAD')
              AND received_at < $1 AND received_at >= $2
            ORDER BY received_at LIMIT $3
              FOR NO KEY UPDATE SKIP LOCKED))
  RETURNING received_at AS at`;

/**
 * The job names present in job_attempt: a skip scan of the (job_name, finished_at) index, one
 * index probe per name, so the purge needs no index of its own on this hot insert path.
 */
const JOB_NAMES = `
  WITH RECURSIVE names(job_name) AS (
    (SELECT job_name FROM job_attempt ORDER BY job_name LIMIT 1)
    UNION ALL
    SELECT (SELECT j.job_name FROM job_attempt j WHERE j.job_name > n.job_name
             ORDER BY j.job_name LIMIT 1)
      FROM names n WHERE n.job_name IS NOT NULL)
  SELECT job_name FROM names WHERE job_name IS NOT NULL`;

/** A batch of one job name's attempts past retention, oldest first ((job_name, finished_at) index). */
const PURGE_ATTEMPTS = `
  DELETE FROM job_attempt
   WHERE id = ANY (ARRAY(
           SELECT id FROM job_attempt
            WHERE job_name = $4 AND finished_at < $1 AND finished_at >= $2
            ORDER BY finished_at LIMIT $3
              FOR UPDATE SKIP LOCKED))
  RETURNING finished_at AS at`;

/**
 * A batch of expired dashboard sessions (expires_at index). A session lives 8 hours, so every
 * session older than RETENTION_DAYS is long expired; an expired one is refused anyway, so it goes
 * at once.
 */
const PURGE_SESSIONS = `
  DELETE FROM dashboard_session
   WHERE id = ANY (ARRAY(
           SELECT id FROM dashboard_session
            WHERE expires_at < now() AND expires_at >= $1
            ORDER BY expires_at LIMIT $2
              FOR UPDATE SKIP LOCKED))
  RETURNING expires_at AS at`;

/** The purge's statements (the indexes test EXPLAINs them at a realistic row count). */
export const PURGE_SQL = {
  events: PURGE_EVENTS,
  jobNames: JOB_NAMES,
  attempts: PURGE_ATTEMPTS,
  sessions: PURGE_SESSIONS,
} as const;

const zero = (): Record<PurgedTable, number> => ({
  webhook_event: 0,
  job_attempt: 0,
  dashboard_session: 0,
});

/**
 * Retention (CONTRACT §2, RETENTION_DAYS; docs/decisions/0010-retention.md): every worker checks
 * every hour, and one at a time — a Postgres session advisory lock, tried, never waited for —
 * purges, in batches of PURGE_BATCH rows, each its own statement and so its own short transaction:
 * the payload and headers of webhook events received more than RETENTION_DAYS ago whose processing
 * is over, job attempts finished more than RETENTION_DAYS ago and expired dashboard sessions.
 * Kept: event identities, dead letters, invoices, reports, the audit log and timelines. Safe to
 * run again at any time (what is purged no longer matches) and beside another runner (the lock,
 * and SKIP LOCKED below it). Counted per table in closeloop_retention_purged_rows_total; one log
 * line per run.
 */
@Injectable()
export class RetentionService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly ticker: PeriodicPass;
  private stopping = false;

  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly logger: PinoLogger,
    clock: Clock,
  ) {
    logger.setContext(RetentionService.name);
    this.ticker = new PeriodicPass(
      PURGE_EVERY_MS,
      clock,
      () => this.runOnce(),
      (err) => this.logger.warn({ err: errorMessage(err) }, 'retention purge failed'),
    );
  }

  onApplicationBootstrap(): void {
    this.ticker.start();
  }

  /** Stops between two batches: shutdown never waits for a long first purge. */
  onModuleDestroy(): Promise<void> {
    this.stopping = true;
    return this.ticker.stop();
  }

  /** One run (tests call it directly, with a small batch to see several batches). */
  async runOnce(opts: { batchSize?: number } = {}): Promise<PurgeResult> {
    const batchSize = opts.batchSize ?? PURGE_BATCH;
    const result: PurgeResult = { ran: false, purged: zero(), batches: zero(), cutoff: null };
    const started = performance.now();
    const client = await this.prisma.pool.connect();
    let locked = false;
    let broken = false;
    try {
      const { rows } = await client.query<{ locked: boolean; cutoff: Date }>(
        `SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked,
                now() - make_interval(days => $2::int) AS cutoff`,
        [PURGE_LOCK_KEY, this.config.env.RETENTION_DAYS],
      );
      if (!rows[0].locked) {
        this.logger.debug('retention purge skipped: another worker is purging');
        return result;
      }
      locked = true;
      result.ran = true;
      const cutoff = (result.cutoff = rows[0].cutoff);
      const run = (table: PurgedTable, sql: string, params: (from: Date | string) => unknown[]) =>
        this.inBatches(client, table, sql, params, batchSize, result);

      await run('webhook_event', PURGE_EVENTS, (from) => [cutoff, from, batchSize]);
      const names = await client.query<{ job_name: string }>(JOB_NAMES);
      for (const { job_name } of names.rows) {
        await run('job_attempt', PURGE_ATTEMPTS, (from) => [cutoff, from, batchSize, job_name]);
      }
      await run('dashboard_session', PURGE_SESSIONS, (from) => [from, batchSize]);
    } finally {
      if (locked) {
        await client
          .query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [PURGE_LOCK_KEY])
          .catch(() => {
            broken = true; // dropping the connection releases the lock
          });
      }
      client.release(broken);
    }
    this.logger.info(
      {
        retentionDays: this.config.env.RETENTION_DAYS,
        cutoff: result.cutoff,
        purged: result.purged,
        batches: result.batches,
        stopped: this.stopping,
        durationMs: Math.round(performance.now() - started),
      },
      'retention purge finished',
    );
    return result;
  }

  /**
   * Runs one purge statement until a batch finds fewer rows than it may take (or the process
   * stops). `params(from)`: its parameters, `from` being the keyset — the newest instant the
   * batch before reached, so the next one starts there instead of re-walking what was purged.
   */
  private async inBatches(
    client: PoolClient,
    table: PurgedTable,
    sql: string,
    params: (from: Date | string) => unknown[],
    batchSize: number,
    result: PurgeResult,
  ): Promise<void> {
    let from: Date | string = '-infinity';
    while (!this.stopping) {
      const { rows }: { rows: { at: Date }[] } = await client.query(sql, params(from));
      result.batches[table]++;
      result.purged[table] += rows.length;
      this.metrics.rowsPurged(table, rows.length);
      if (rows.length < batchSize) return;
      from = new Date(Math.max(...rows.map((r) => r.at.getTime())));
    }
  }
}
