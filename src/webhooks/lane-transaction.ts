import { AppConfig } from '../config/app-config';
import { Prisma } from '../generated/prisma/client';
import { LifecycleContext } from '../lifecycle/lifecycle.service';
import { MetricsService } from '../observability/metrics.service';
import { PrismaService } from '../prisma/prisma.service';
import { deferTimeline, discardTimeline, flushTimeline } from '../timeline/timeline';
import { DryRunRollback, dryRunEffects } from './event-effects';
import { EventDispatcher } from './event-dispatcher';
import { laneLockKey } from './event-lane';
import { EventOutcomes } from './event-outcomes';
import {
  BUSY,
  Done,
  Failed,
  LaneResult,
  LoneEventFailed,
  Ready,
  RunContext,
  busy,
  ignoredAtOnce,
  isLockTimeout,
} from './event-pipeline.types';

/** A lane's transactions: its lock, its events claimed and applied, their outcomes written. */
export class LaneTransactions {
  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly dispatcher: EventDispatcher,
    private readonly outcomes: EventOutcomes,
  ) {}

  /**
   * One transaction of a lane: the lane's lock (tried, or waited for: always for a dry run), the
   * events claimed, each applied under its own savepoint, and every outcome written back in a few
   * statements.
   */
  async transaction(
    lane: string,
    ready: Ready[],
    run: RunContext,
    opts: { blocking: boolean; statuses?: string[]; dryRun?: boolean },
  ): Promise<typeof BUSY | LaneResult[]> {
    const ids = ready.map((r) => r.p.row.id);
    const statuses = opts.statuses ?? ['RECEIVED'];
    return this.prisma
      .transaction(
        async (tx) => {
          const key = laneLockKey(lane);
          // No statement of a lane waits longer than this for a lock (the lane's own, a deal row):
          // set (for this transaction) in the same statement that takes the lane's lock.
          const lockTimeout = String(Number(this.config.env.SERIALIZATION_LOCK_TIMEOUT_MS));
          // Each event's timeline entries are written by one statement after it is applied.
          deferTimeline(tx);
          const claim = (guard: Prisma.Sql) => Prisma.sql`
            UPDATE webhook_event SET status = 'PROCESSED', processed_at = now(),
                   attempts = attempts + 1, last_error = NULL
             WHERE id = ANY(${ids}::text[]) AND status::text = ANY(${statuses}::text[]) ${guard}
            RETURNING id, attempts`;
          let claimed: { id: string; attempts: number }[];
          if (!opts.blocking) {
            // A drain's lane lock is tried, and the events claimed if it was taken, in one
            // statement: the lock (a materialized CTE, evaluated once) comes before any row is
            // claimed, and a row another holder finished meanwhile fails the status re-check.
            const rows = await tx.$queryRaw<
              { locked: boolean; id: string | null; attempts: number | null }[]
            >`
              WITH lock AS MATERIALIZED (
                SELECT set_config('lock_timeout', ${lockTimeout}, true) AS timeout,
                       pg_try_advisory_xact_lock(hashtextextended(${key}, 0)) AS locked),
              claimed AS (${claim(Prisma.sql`AND (SELECT locked FROM lock)`)})
              SELECT lock.locked, claimed.id, claimed.attempts
                FROM lock LEFT JOIN claimed ON true`;
            if (!rows[0]?.locked) return BUSY;
            claimed = rows.flatMap((r) =>
              r.id !== null && r.attempts !== null ? [{ id: r.id, attempts: r.attempts }] : [],
            );
          } else {
            try {
              await tx.$queryRaw`
                SELECT set_config('lock_timeout', ${lockTimeout}, true),
                       pg_advisory_xact_lock(hashtextextended(${key}, 0))::text`;
            } catch (err) {
              throw busy(lane, err);
            }
            if (opts.dryRun) {
              // A dry run replays the event as an admin replay would, then rolls everything back.
              await tx.$executeRaw`UPDATE webhook_event SET status = 'RECEIVED' WHERE id = ANY(${ids}::text[])`;
            }
            claimed = await tx.$queryRaw<
              { id: string; attempts: number }[]
            >`${claim(Prisma.empty)}`;
          }
          const attemptsOf = new Map(claimed.map((c) => [c.id, c.attempts]));
          const done: Done[] = [];
          const failed: Failed[] = [];
          for (const r of ready) {
            const attempts = attemptsOf.get(r.p.row.id);
            if (attempts === undefined) continue; // someone else finished it meanwhile
            const row = { ...r.p.row, attempts };
            const started = performance.now();
            const took = () => Math.round(performance.now() - started);
            const ev = r.p.normalized;
            if (r.failed !== undefined || r.p.invalid) {
              failed.push({
                row,
                normalized: ev,
                error: r.failed ?? r.p.invalid,
                durationMs: r.failedMs ?? 0,
              });
              continue;
            }
            if (!ev) {
              done.push(ignoredAtOnce({ ...r.p, row }, `${row.type} is not used by the hub`));
              continue;
            }
            const ctx: LifecycleContext = {
              cause: `${ev.source} ${ev.kind}`,
              correlationId: row.correlation_id,
              eventId: row.id,
            };
            if (opts.dryRun) {
              const outcome = await this.dispatcher.apply(tx, r.p, r.snapshot, ctx);
              await flushTimeline(tx);
              throw new DryRunRollback(
                await dryRunEffects(tx, outcome, outcome.ignored ? 'IGNORED' : 'SUCCEEDED'),
              );
            }
            // A savepoint keeps one event's failure from undoing the others; a lone event needs
            // none (two round trips less): its failure undoes the transaction, and the next
            // one records it (LoneEventFailed below).
            const guarded = ready.length > 1;
            if (guarded) await tx.$executeRawUnsafe('SAVEPOINT closeloop_event');
            try {
              const outcome = await this.dispatcher.apply(tx, r.p, r.snapshot, ctx);
              await flushTimeline(tx);
              if (guarded) await tx.$executeRawUnsafe('RELEASE SAVEPOINT closeloop_event');
              done.push({
                row,
                status: outcome.ignored ? 'IGNORED' : 'PROCESSED',
                dealId: outcome.dealId ?? null,
                normalized: ev,
                reason: outcome.ignored ?? null,
                durationMs: took(),
              });
            } catch (err) {
              const error = isLockTimeout(err) ? busy(lane, err) : err;
              if (!guarded) throw new LoneEventFailed({ ...r, failed: error, failedMs: took() });
              discardTimeline(tx);
              await tx.$executeRawUnsafe('ROLLBACK TO SAVEPOINT closeloop_event');
              failed.push({ row, normalized: ev, error, durationMs: took() });
            }
          }
          await this.outcomes.write(tx, lane, done, failed, run);
          return [
            ...done.map((d): LaneResult => ({ row: d.row, status: d.status })),
            ...failed.map((f): LaneResult => ({ row: f.row, status: 'FAILED' })),
          ];
        },
        { timeout: 60_000, maxWait: 10_000 },
      )
      .then((result) => {
        if (result !== BUSY) {
          for (const r of result) this.metrics.eventFinished(r.row, r.status);
        }
        return result;
      })
      .catch((err: unknown) => {
        // The lone event failed and took its transaction with it: record the failure in a new one.
        if (err instanceof LoneEventFailed) return this.transaction(lane, [err.ready], run, opts);
        throw err;
      });
  }
}
