import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Queue } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';

import { RANK, stateForEvent } from '../billing/billing.service';
import { PermanentError, TransientError, classifyError, errorMessage } from '../common/errors';
import { newId } from '../common/ids';
import { AppConfig, WebhookSource } from '../config/app-config';
import { HubspotClient } from '../connectors/hubspot/hubspot.client';
import { CrmDealSnapshot } from '../connectors/hubspot/hubspot.types';
import { PartnerCenterClient } from '../connectors/partner-center/partner-center.client';
import { Referral as PartnerCenterReferral } from '../connectors/partner-center/partner-center.types';
import { InvoiceState, Prisma } from '../generated/prisma/client';
import { MetricsService } from '../observability/metrics.service';
import { EventOutcome, LifecycleContext, LifecycleService } from '../lifecycle/lifecycle.service';
import { ReferralService } from '../lifecycle/referral.service';
import { PrismaService } from '../prisma/prisma.service';
import { fullJitterDelay } from '../queue/backoff';
import { JobOutcomeKind } from '../queue/job-handler.decorator';
import { jobOptions } from '../queue/job-options';
import { JobName } from '../queue/job-name.enum';
import { QueueName } from '../queue/queue-name.enum';
import { DryRunRollback, EventEffects, dryRunEffects, noEffects } from './event-effects';
import { deferTimeline, discardTimeline, flushTimeline } from '../timeline/timeline';
import { eventJobId, laneDrainDeduplication, laneLockKey, ownLane } from './event-lane';
import { WebhookProviders } from './webhook-providers';
import { NormalizedEvent } from '../domain/normalized-event';

type Tx = Prisma.TransactionClient;

/** An inbox row as the pipeline reads it. */
interface EventRow {
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
type Applier = 'lifecycle' | 'referral' | 'record';

/** An event read, normalized and routed (no I/O yet). */
interface Prepared {
  row: EventRow;
  lane: string;
  /** null: a type the hub does not use. */
  normalized: NormalizedEvent | null;
  /** normalize() refused the payload: the event fails (permanently). */
  invalid?: Error;
  applier?: Applier;
  /** The remote read the event needs before its transaction. */
  remote?: 'hubspot' | 'partner-center';
}

/** A prepared event with the result of its remote read, ready for its lane transaction. */
interface Ready {
  p: Prepared;
  snapshot?: CrmDealSnapshot | PartnerCenterReferral | null;
  /** Why the event fails without being applied (again), and how long its try took. */
  failed?: unknown;
  failedMs?: number;
}

/** A lane transaction's only event failed (no savepoint): the transaction is rolled back. */
class LoneEventFailed extends Error {
  constructor(readonly ready: Ready) {
    super('the lone event of a lane transaction failed');
  }
}

/** What became of one event, written back in one statement per batch. */
interface Done {
  row: EventRow;
  status: 'PROCESSED' | 'IGNORED';
  dealId: string | null;
  normalized: NormalizedEvent | null;
  reason: string | null;
  durationMs: number;
}

interface Failed {
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

const BUSY = Symbol('lane busy');

/** What one lane transaction did with one event. */
interface LaneResult {
  row: EventRow;
  status: 'PROCESSED' | 'IGNORED' | 'FAILED';
}

const SELECT_EVENT = `SELECT id, provider, type, status::text AS status, payload, subject_key,
                             correlation_id, received_at, attempts, attempt_base,
                             replay_count
                      FROM webhook_event`;
/**
 * A batch's rows by primary key alone; those no longer RECEIVED are dropped in code. (With the
 * status in the WHERE clause the generic plan of this prepared statement ANDs in a scan of every
 * RECEIVED row's index entry: a cost that grows with the backlog.)
 */
const LOAD_BATCH = {
  name: 'pipeline_load_batch',
  text: `${SELECT_EVENT} WHERE id = ANY($1::text[]) ORDER BY id`,
};
const LOAD_LANE = {
  name: 'pipeline_load_lane',
  text: `${SELECT_EVENT} WHERE subject_key = $1 AND status = 'RECEIVED' ORDER BY id LIMIT $2`,
};
const LOAD_ONE = { name: 'pipeline_load_one', text: `${SELECT_EVENT} WHERE id = $1` };
const LANE_WAITING = {
  name: 'pipeline_lane_waiting',
  text: `SELECT EXISTS (SELECT 1 FROM webhook_event WHERE subject_key = $1 AND status = 'RECEIVED') AS waiting`,
};
/**
 * Outcomes decided without a lane (unused types, Stripe echoes, invoices the hub did not make):
 * one statement for the whole batch. The event row says what became of it (status, reason, deal);
 * no attempt row is written for a decision that ran no handler, so they cost next to nothing.
 */
const MARK_QUICK = {
  name: 'pipeline_mark_quick',
  text: `UPDATE webhook_event e
            SET status = v.status::"EventStatus", processed_at = now(), attempts = e.attempts + 1,
                deal_id = v.deal_id, normalized = v.normalized::jsonb, last_error = v.reason
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                AS v(id, status, deal_id, normalized, reason)
          WHERE e.id = v.id AND e.status = 'RECEIVED'
          RETURNING e.id`,
};
/** The hub's invoices a batch of Stripe events names, and which of the deals they name exist. */
const STRIPE_REFS = {
  name: 'pipeline_stripe_refs',
  text: `SELECT billing_key, stripe_invoice_id, state::text AS state, deal_id, false AS deal_only
           FROM invoice WHERE billing_key = ANY($1::text[]) OR stripe_invoice_id = ANY($2::text[])
         UNION ALL
         SELECT NULL, NULL, NULL, id, true FROM deal WHERE id = ANY($3::text[])`,
};

/**
 * The worker's event pipeline (docs/decisions/0007). Events arrive in batches (one BullMQ job per
 * batch of inbox rows, made by the outbox relay) and are sorted three ways:
 *
 * 1. decided at once, one statement for the whole batch: types the hub does not use, Stripe echoes
 *    of what the hub already recorded, Stripe events about invoices the hub did not make;
 * 2. everything else goes to its **lane** (the subject key the door stored: one deal, envelope,
 *    CRM deal or referral). A lane is drained by whoever holds it — a transaction-scoped advisory
 *    lock tried, never waited for — in arrival order, up to LANE_BATCH events per transaction,
 *    each event under a savepoint so one failure rolls back only itself. A worker that finds a
 *    lane held moves on: the holder re-checks the lane after each commit and takes what arrived
 *    meanwhile. So one deal's burst occupies one worker slot, in order, while every other lane
 *    keeps flowing.
 * 3. a failed event is recorded in the lane's transaction: attempt row, FAILED with its retry
 *    scheduled as an outbox row (available_at = backoff) — or DEAD with its dead letter — so the
 *    retry schedule lives in Postgres, not in Redis.
 *
 * Single events (replays, retries, the admin API's dry runs) take the same path with a blocking
 * lane lock.
 */
@Injectable()
export class EventPipeline implements OnModuleDestroy {
  private stopping = false;

  constructor(
    private readonly prisma: PrismaService,
    private readonly providers: WebhookProviders,
    private readonly lifecycle: LifecycleService,
    private readonly referrals: ReferralService,
    private readonly hubspot: HubspotClient,
    private readonly partnerCenter: PartnerCenterClient,
    private readonly metrics: MetricsService,
    private readonly config: AppConfig,
    private readonly logger: PinoLogger,
    @InjectQueue(QueueName.Webhooks) private readonly queue: Queue,
  ) {
    logger.setContext(EventPipeline.name);
  }

  onModuleDestroy(): void {
    // Drains stop at their next transaction boundary and hand their lane on.
    this.stopping = true;
  }

  // ---- batches ----------------------------------------------------------------------------------

  /** Processes the batch's events still RECEIVED (decided at once, or through their lanes). */
  async processBatch(eventIds: string[], run: RunContext): Promise<JobOutcomeKind> {
    const { rows: loaded } = await this.prisma.pool.query<EventRow>({
      ...LOAD_BATCH,
      values: [eventIds],
    });
    const rows = loaded.filter((r) => r.status === 'RECEIVED');
    if (rows.length === 0) return 'SKIPPED';
    const prepared = rows.map((r) => this.prepare(r));
    const quick: Done[] = [];
    const stripe: Prepared[] = [];
    const lanes: string[] = [];
    const toLane = (p: Prepared) => {
      if (!lanes.includes(p.lane)) lanes.push(p.lane);
    };
    for (const p of prepared) {
      if (p.invalid) toLane(p);
      else if (!p.normalized) quick.push(ignoredAtOnce(p, `${p.row.type} is not used by the hub`));
      else if (p.normalized.source === 'stripe' && p.applier === 'lifecycle') stripe.push(p);
      else toLane(p);
    }
    if (stripe.length > 0) {
      const decided = await this.decideStripe(stripe);
      for (const p of stripe) {
        const d = decided.get(p.row.id);
        if (d) quick.push(d);
        else toLane(p);
      }
    }
    if (quick.length > 0) await this.markQuick(quick);
    // One transaction per lane of the batch: a lane with more waiting (a burst) goes on in a drain
    // job of its own, so a batch never spends long on one deal while its other lanes wait.
    for (const lane of lanes) {
      if ((await this.drainLane(lane, run, { once: true })) === 'more') {
        await this.handOn(lane, { delayMs: 0 });
      }
    }
    return 'SUCCEEDED';
  }

  /**
   * Drains one lane: its RECEIVED events in arrival order, a transaction at a time, until it is
   * empty, held by someone else, or LANE_DRAIN_MS is spent (then a WebhookLaneDrain job carries
   * on, so the lane is never left waiting). `once`: one transaction, and say whether more waits.
   */
  async drainLane(
    lane: string,
    run: RunContext,
    opts: { once?: boolean } = {},
  ): Promise<'done' | 'busy' | 'handed-on' | 'more'> {
    const limit = this.config.env.LANE_BATCH;
    const deadline = Date.now() + this.config.env.LANE_DRAIN_MS;
    for (let round = 0; ; round++) {
      const { rows } = await this.prisma.pool.query<EventRow>({
        ...LOAD_LANE,
        values: [lane, limit],
      });
      if (rows.length === 0) return 'done';
      if (opts.once && round > 0) return 'more';
      if (this.stopping || Date.now() > deadline) {
        await this.handOn(lane, { delayMs: 0 });
        return 'handed-on';
      }
      const ready = await this.readRemote(rows.map((r) => this.prepare(r)));
      const result = await this.laneTransaction(lane, ready, run, { blocking: false });
      if (result === BUSY) {
        // Its holder drains what we leave, and re-checks after each commit. Should the holder
        // have died mid-transaction (its session keeps the lock until Postgres notices, see
        // CONNECTION_OPTIONS), one drain comes back later.
        await this.handOn(lane, { delayMs: this.config.env.LANE_DRAIN_MS });
        return 'busy';
      }
      if (rows.length < limit) {
        // Whatever arrived while the lane was ours: the holder looks once more after committing.
        const { rows: w } = await this.prisma.pool.query<{ waiting: boolean }>({
          ...LANE_WAITING,
          values: [lane],
        });
        if (!w[0].waiting) return 'done';
      }
    }
  }

  // ---- single events ------------------------------------------------------------------------------

  /** One event (a replay or a retry), under a blocking lane lock; RECEIVED or FAILED. */
  async processOne(eventId: string, run: RunContext): Promise<JobOutcomeKind> {
    const row = await this.loadOne(eventId);
    if (row.status !== 'RECEIVED' && row.status !== 'FAILED') return 'SKIPPED';
    const p = this.prepare(row);
    const [ready] = await this.readRemote([p]);
    const result = await this.laneTransaction(
      p.lane,
      [ready],
      { ...run, single: true },
      {
        blocking: true,
        statuses: ['RECEIVED', 'FAILED'],
      },
    );
    if (result === BUSY || result.length === 0) return 'SKIPPED';
    const [{ status }] = result;
    return status === 'PROCESSED' ? 'SUCCEEDED' : status === 'IGNORED' ? 'IGNORED' : 'FAILED';
  }

  /**
   * What replaying a stored event would do — deal, transitions, invoices owed, reports, jobs —
   * found by running the replay's path in a transaction that is then rolled back. Remote reads
   * (the HubSpot deal, the Partner Center referral) are made; nothing is written or sent.
   */
  async dryRun(eventId: string): Promise<EventEffects> {
    try {
      const p = this.prepare(await this.loadOne(eventId));
      if (!p.invalid && !p.normalized) {
        return noEffects('IGNORED', `${p.row.type} is not used by the hub`);
      }
      if (p.applier === 'record') return noEffects('SUCCEEDED', null);
      if (p.invalid) throw p.invalid;
      const snapshot = await this.remoteRead(p);
      await this.laneTransaction(p.lane, [{ p, snapshot }], RUN_DRY, {
        blocking: true,
        statuses: ['RECEIVED'],
        dryRun: true,
      });
    } catch (err) {
      if (err instanceof DryRunRollback) return err.effects;
      // The replay would fail again, as the event did: say why (a missing event is still a 404).
      if (err instanceof PermanentError && /does not exist$/.test(err.message)) throw err;
      return noEffects('FAILED', null, (err as Error).message);
    }
    throw new Error(`dry run of ${eventId} finished without rolling back`);
  }

  /**
   * Work whose worker keeps dying mid-job (a poison event): its events still waiting — a batch's,
   * or the next LANE_BATCH of a lane — leave their lanes as FAILED and are retried one by one as
   * single-event jobs, so only the culprit keeps failing (and is parked after BullMQ's stalled
   * limit) while the rest of the lane flows again.
   */
  async isolate(tx: Tx, of: { eventIds: string[] } | { lane: string }): Promise<void> {
    const note = 'its worker died mid-batch: retried on its own';
    const rows =
      'lane' in of
        ? await tx.$queryRaw<
            { id: string; attempts: number; replay_count: number; correlation_id: string }[]
          >`
            UPDATE webhook_event SET status = 'FAILED', last_error = ${note}
            WHERE id IN (SELECT id FROM webhook_event
                          WHERE subject_key = ${of.lane} AND status = 'RECEIVED'
                          ORDER BY id LIMIT ${this.config.env.LANE_BATCH})
            RETURNING id, attempts, replay_count, correlation_id`
        : await tx.$queryRaw<
            { id: string; attempts: number; replay_count: number; correlation_id: string }[]
          >`
            UPDATE webhook_event SET status = 'FAILED', last_error = ${note}
            WHERE id = ANY(${of.eventIds}::text[]) AND status = 'RECEIVED'
            RETURNING id, attempts, replay_count, correlation_id`;
    if (rows.length === 0) return;
    await tx.$executeRaw`
      INSERT INTO outbox (queue, job_name, job_id, data)
      SELECT ${QueueName.Webhooks}, ${JobName.WebhookEventProcess}, v.job_id, v.data::jsonb
        FROM unnest(${rows.map((r) => eventJobId(r))}::text[],
                    ${rows.map((r) => JSON.stringify({ eventId: r.id, correlationId: r.correlation_id }))}::text[])
             AS v(job_id, data)`;
  }

  /** Marks an event FAILED/DEAD after its single-event job gave up on an infrastructure error. */
  async markJobFailure(eventId: string, final: boolean, error: string, tx: Tx): Promise<void> {
    await tx.$executeRaw`
      UPDATE webhook_event SET status = ${final ? 'DEAD' : 'FAILED'}::"EventStatus",
             attempts = attempts + 1, last_error = ${error}
      WHERE id = ${eventId} AND status IN ('RECEIVED', 'FAILED')`;
  }

  // ---- steps ------------------------------------------------------------------------------------

  private async loadOne(eventId: string): Promise<EventRow> {
    const { rows } = await this.prisma.pool.query<EventRow>({ ...LOAD_ONE, values: [eventId] });
    if (!rows[0]) throw new PermanentError(`event ${eventId} does not exist`);
    return rows[0];
  }

  /** Normalizes and routes an event (pure). */
  private prepare(row: EventRow): Prepared {
    const lane = row.subject_key ?? ownLane(row.id);
    let normalized: NormalizedEvent | null;
    try {
      normalized = this.providers
        .get(row.provider as WebhookSource)
        .normalize(row.type, row.payload);
    } catch (err) {
      return { row, lane, normalized: null, invalid: err as Error };
    }
    if (!normalized) return { row, lane, normalized };
    if (this.referrals.handles(normalized.kind)) {
      const remote =
        normalized.source === 'partner-center' && normalized.subject.referralId
          ? ('partner-center' as const)
          : undefined;
      return { row, lane, normalized, applier: 'referral', remote };
    }
    if (this.lifecycle.handles(normalized.kind)) {
      const remote =
        (normalized.kind === 'crm.deal_created' || normalized.kind === 'crm.deal_stage_changed') &&
        this.config.hubspotConfigured &&
        normalized.subject.crmDealId
          ? ('hubspot' as const)
          : undefined;
      return { row, lane, normalized, applier: 'lifecycle', remote };
    }
    return { row, lane, normalized, applier: 'record' };
  }

  /** The remote read an event needs, made before any lock or transaction. */
  private remoteRead(
    p: Prepared,
  ): Promise<CrmDealSnapshot | PartnerCenterReferral | null> | undefined {
    const subject = p.normalized?.subject;
    if (p.remote === 'hubspot' && subject?.crmDealId)
      return this.hubspot.getDeal(subject.crmDealId);
    if (p.remote === 'partner-center' && subject?.referralId)
      return this.partnerCenter.getReferral(subject.referralId);
    return undefined;
  }

  /** Remote reads of a lane's events, in order; a failed read fails only its event. */
  private async readRemote(prepared: Prepared[]): Promise<Ready[]> {
    const out: Ready[] = [];
    for (const p of prepared) {
      try {
        out.push({ p, snapshot: await this.remoteRead(p) });
      } catch (err) {
        out.push({ p, failed: err });
      }
    }
    return out;
  }

  /**
   * Stripe events decided without a lane: echoes of the hub's own finalize/send (the invoice row
   * is already at or past the event's state) and events about invoices the hub did not make and
   * that name no hub deal. One lookup for the whole batch.
   */
  private async decideStripe(stripe: Prepared[]): Promise<Map<string, Done>> {
    const keys = new Set<string>();
    const ids = new Set<string>();
    const deals = new Set<string>();
    for (const p of stripe) {
      const ev = p.normalized!;
      if (typeof ev.data.billingKey === 'string') keys.add(ev.data.billingKey);
      if (ev.subject.stripeInvoiceId) ids.add(ev.subject.stripeInvoiceId);
      if (ev.subject.dealId) deals.add(ev.subject.dealId);
    }
    const { rows } = await this.prisma.pool.query<{
      billing_key: string;
      stripe_invoice_id: string | null;
      state: InvoiceState;
      deal_id: string;
      deal_only: boolean;
    }>({ ...STRIPE_REFS, values: [[...keys], [...ids], [...deals]] });
    const refs = rows.filter((r) => !r.deal_only);
    const byKey = new Map(refs.map((r) => [r.billing_key, r]));
    const byStripeId = new Map(
      refs.filter((r) => r.stripe_invoice_id).map((r) => [r.stripe_invoice_id!, r]),
    );
    const knownDeals = new Set(rows.filter((r) => r.deal_only).map((r) => r.deal_id));
    const decided = new Map<string, Done>();
    for (const p of stripe) {
      const ev = p.normalized!;
      const billingKey = typeof ev.data.billingKey === 'string' ? ev.data.billingKey : undefined;
      const stripeId = ev.subject.stripeInvoiceId;
      const ref =
        (billingKey ? byKey.get(billingKey) : undefined) ??
        (stripeId ? byStripeId.get(stripeId) : undefined);
      if (!ref) {
        if (ev.subject.dealId && knownDeals.has(ev.subject.dealId)) continue; // the deal's timeline says so
        decided.set(
          p.row.id,
          ignoredAtOnce(p, `Stripe invoice ${stripeId ?? '?'} was not made by the hub`),
        );
        continue;
      }
      const target = stateForEvent({ kind: ev.kind });
      const echo =
        target !== undefined &&
        target !== 'PAID' &&
        target !== 'VOID' &&
        RANK[ref.state] >= RANK[target];
      if (echo) {
        decided.set(p.row.id, {
          row: p.row,
          status: 'PROCESSED',
          dealId: ref.deal_id,
          normalized: ev,
          reason: null,
          durationMs: 0,
        });
      }
    }
    return decided;
  }

  private async markQuick(done: Done[]): Promise<void> {
    const { rows } = await this.prisma.pool.query<{ id: string }>({
      ...MARK_QUICK,
      values: [
        done.map((d) => d.row.id),
        done.map((d) => d.status),
        done.map((d) => d.dealId),
        done.map((d) => (d.normalized ? JSON.stringify(d.normalized) : null)),
        done.map((d) => d.reason),
      ],
    });
    const marked = new Set(rows.map((r) => r.id));
    for (const d of done) {
      if (!marked.has(d.row.id)) continue;
      this.metrics.eventFinished(
        d.row.provider,
        d.status === 'PROCESSED' ? 'processed' : 'ignored',
      );
      if (d.status === 'PROCESSED') this.metrics.eventProcessed(d.row.provider, d.row.received_at);
    }
  }

  /**
   * One transaction of a lane: the lane's lock (tried, or waited for: always for a dry run), the
   * events claimed, each applied under its own savepoint, and every outcome written back in a few
   * statements.
   */
  private async laneTransaction(
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
              const outcome = await this.apply(tx, r.p, r.snapshot, ctx);
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
              const outcome = await this.apply(tx, r.p, r.snapshot, ctx);
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
          await this.writeOutcomes(tx, lane, done, failed, run);
          return [
            ...done.map((d): LaneResult => ({ row: d.row, status: d.status })),
            ...failed.map((f): LaneResult => ({ row: f.row, status: 'FAILED' })),
          ];
        },
        { timeout: 60_000, maxWait: 10_000 },
      )
      .then((result) => {
        if (result !== BUSY) {
          for (const r of result) {
            this.metrics.eventFinished(
              r.row.provider,
              r.status === 'PROCESSED'
                ? 'processed'
                : r.status === 'IGNORED'
                  ? 'ignored'
                  : 'failed',
            );
            if (r.status === 'PROCESSED')
              this.metrics.eventProcessed(r.row.provider, r.row.received_at);
          }
        }
        return result;
      })
      .catch((err: unknown) => {
        // The lone event failed and took its transaction with it: record the failure in a new one.
        if (err instanceof LoneEventFailed)
          return this.laneTransaction(lane, [err.ready], run, opts);
        throw err;
      });
  }

  private apply(
    tx: Tx,
    p: Prepared,
    snapshot: Ready['snapshot'],
    ctx: LifecycleContext,
  ): Promise<EventOutcome> {
    const ev = p.normalized!;
    switch (p.applier) {
      case 'referral':
        return this.referrals.apply(tx, ev, ctx, snapshot as PartnerCenterReferral | undefined);
      case 'lifecycle':
        return this.lifecycle.apply(tx, ev, ctx, snapshot as CrmDealSnapshot | null | undefined);
      default:
        return Promise.resolve({ dealId: ev.subject.dealId });
    }
  }

  /**
   * Writes a lane transaction's outcomes: event rows, attempt rows, and for each failure either
   * its retry (an outbox row that waits in Postgres until its backoff is over) or, on a permanent
   * error or the last attempt, DEAD and its dead letter.
   */
  private async writeOutcomes(
    tx: Tx,
    lane: string,
    done: Done[],
    failed: Failed[],
    run: RunContext,
  ): Promise<void> {
    const maxAttempts = this.config.env.JOB_ATTEMPTS;
    const rows: {
      id: string;
      status: string;
      deal: string | null;
      norm: string | null;
      err: string | null;
    }[] = done.map((d) => ({
      id: d.row.id,
      status: d.status,
      deal: d.dealId,
      norm: d.normalized ? JSON.stringify(d.normalized) : null,
      err: d.reason,
    }));
    const attempts: {
      eventId: string;
      attempt: number;
      outcome: string;
      error: string | null;
      ms: number;
      deal: string | null;
    }[] = done.map((d) => ({
      eventId: d.row.id,
      attempt: d.row.attempts,
      outcome: d.status === 'PROCESSED' ? 'SUCCEEDED' : 'IGNORED',
      error: d.reason,
      ms: d.durationMs,
      deal: d.dealId,
    }));
    const letters: {
      id: string;
      eventId: string;
      jobId: string;
      data: string;
      reason: string;
      error: string;
      attempts: number;
    }[] = [];
    const retries: { jobId: string; data: string; delayMs: number }[] = [];
    for (const f of failed) {
      const error = errorMessage(f.error);
      const permanent = classifyError(f.error) === 'permanent';
      const final = permanent || f.row.attempts - f.row.attempt_base >= maxAttempts;
      rows.push({
        id: f.row.id,
        status: final ? 'DEAD' : 'FAILED',
        deal: null,
        norm: f.normalized ? JSON.stringify(f.normalized) : null,
        err: error,
      });
      attempts.push({
        eventId: f.row.id,
        attempt: f.row.attempts,
        outcome: final ? 'DEAD' : 'RETRYING',
        error,
        ms: f.durationMs,
        deal: null,
      });
      const data = JSON.stringify({ eventId: f.row.id, correlationId: f.row.correlation_id });
      if (final) {
        letters.push({
          id: newId('dl'),
          eventId: f.row.id,
          // A job of one event parks under its own id; a lane's, under the event's.
          jobId: run.single ? run.jobId : eventJobId(f.row),
          data,
          reason: permanent ? 'PERMANENT' : 'EXHAUSTED',
          error,
          attempts: f.row.attempts,
        });
      } else {
        retries.push({
          jobId: eventJobId(f.row),
          data,
          delayMs: fullJitterDelay(f.row.attempts - f.row.attempt_base, f.error, {
            baseMs: this.config.env.JOB_BACKOFF_BASE_MS,
            maxMs: this.config.env.JOB_BACKOFF_MAX_MS,
          }),
        });
      }
      this.logger.warn(
        { correlationId: f.row.correlation_id, eventId: f.row.id, lane, final, err: error },
        'event failed',
      );
    }
    // Every outcome has its event row and its attempt row: both written by one statement.
    if (rows.length > 0) {
      await tx.$executeRaw`
        WITH events AS (
          UPDATE webhook_event e
             SET status = v.status::"EventStatus", deal_id = v.deal_id,
                 normalized = v.normalized::jsonb, last_error = v.err
            FROM unnest(${rows.map((r) => r.id)}::text[], ${rows.map((r) => r.status)}::text[],
                        ${rows.map((r) => r.deal)}::text[], ${rows.map((r) => r.norm)}::text[],
                        ${rows.map((r) => r.err)}::text[])
                 AS v(id, status, deal_id, normalized, err)
           WHERE e.id = v.id)
        INSERT INTO job_attempt (event_id, queue, job_name, job_id, attempt, outcome, error,
                                 duration_ms, deal_id)
        SELECT v.event_id, ${QueueName.Webhooks}, ${run.jobName}, ${run.jobId}, v.attempt,
               v.outcome::"JobOutcome", v.error, v.ms, v.deal_id
          FROM unnest(${attempts.map((a) => a.eventId)}::text[], ${attempts.map((a) => a.attempt)}::int[],
                      ${attempts.map((a) => a.outcome)}::text[], ${attempts.map((a) => a.error)}::text[],
                      ${attempts.map((a) => a.ms)}::int[], ${attempts.map((a) => a.deal)}::text[])
               AS v(event_id, attempt, outcome, error, ms, deal_id)`;
    }
    if (letters.length > 0) {
      await tx.$executeRaw`
        INSERT INTO dead_letter (id, event_id, queue, job_name, job_id, data, reason, error, attempts)
        SELECT v.id, v.event_id, ${QueueName.Webhooks}, ${JobName.WebhookEventProcess}, v.job_id,
               v.data::jsonb, v.reason, v.error, v.attempts
          FROM unnest(${letters.map((l) => l.id)}::text[], ${letters.map((l) => l.eventId)}::text[],
                      ${letters.map((l) => l.jobId)}::text[], ${letters.map((l) => l.data)}::text[],
                      ${letters.map((l) => l.reason)}::text[], ${letters.map((l) => l.error)}::text[],
                      ${letters.map((l) => l.attempts)}::int[])
               AS v(id, event_id, job_id, data, reason, error, attempts)
        ON CONFLICT (job_id) DO NOTHING`;
    }
    if (retries.length > 0) {
      await tx.$executeRaw`
        INSERT INTO outbox (queue, job_name, job_id, data, available_at)
        SELECT ${QueueName.Webhooks}, ${JobName.WebhookEventProcess}, v.job_id, v.data::jsonb,
               now() + make_interval(secs => v.delay_ms / 1000.0)
          FROM unnest(${retries.map((r) => r.jobId)}::text[], ${retries.map((r) => r.data)}::text[],
                      ${retries.map((r) => r.delayMs)}::int[])
               AS v(job_id, data, delay_ms)`;
    }
  }

  /**
   * Lets a WebhookLaneDrain job carry on with a lane (now, or after `delayMs`): however many workers
   * ask, one drain waits per lane, and one asked for while another runs follows it
   * (laneDrainDeduplication).
   */
  private async handOn(lane: string, opts: { delayMs: number }): Promise<void> {
    try {
      await this.queue.add(
        JobName.WebhookLaneDrain,
        { lane, correlationId: `lane-${lane}` },
        {
          ...jobOptions(JobName.WebhookLaneDrain, this.config),
          delay: opts.delayMs,
          deduplication: laneDrainDeduplication(lane, opts.delayMs),
        },
      );
    } catch (err) {
      // Redis is away: the recovery sweep finds the lane's waiting events (they are in Postgres).
      this.logger.warn(
        { lane, err: errorMessage(err) },
        'could not hand a lane on; the sweep will',
      );
    }
  }
}

/** The run context of dry runs (nothing they write is kept). */
const RUN_DRY: RunContext = { jobName: 'dry-run', jobId: 'dry-run' };

/** Postgres gave up waiting for a lock (lock_timeout). */
function isLockTimeout(err: unknown): boolean {
  const e = err as { code?: unknown; meta?: { code?: unknown }; message?: unknown } | null;
  return (
    e?.code === '55P03' ||
    e?.meta?.code === '55P03' ||
    /lock timeout|55P03/.test(String(e?.message ?? ''))
  );
}

/** A lane whose lock, or a row it needs, stayed taken longer than SERIALIZATION_LOCK_TIMEOUT_MS. */
function busy(lane: string, cause: unknown): TransientError {
  return new TransientError(`${lane} is busy (lock wait timed out)`, undefined, { cause });
}

function ignoredAtOnce(p: Prepared, reason: string): Done {
  return { row: p.row, status: 'IGNORED', dealId: null, normalized: null, reason, durationMs: 0 };
}
