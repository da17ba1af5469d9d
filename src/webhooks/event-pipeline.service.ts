import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Queue } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';

import { PermanentError, errorMessage } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../observability/metrics.service';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { ReferralService } from '../lifecycle/referral.service';
import { PrismaService } from '../prisma/prisma.service';
import { JobOutcomeKind } from '../queue/job-handler.decorator';
import { jobOptions } from '../queue/job-options';
import { JobName } from '../queue/job-name.enum';
import { QueueName } from '../queue/queue-name.enum';
import { CrmPort } from '../ports/crm.port';
import { ReferralSourcePort } from '../ports/referral-platform.port';
import { EventDispatcher } from './event-dispatcher';
import { DryRunRollback, EventEffects, noEffects } from './event-effects';
import { laneDrainDeduplication } from './event-lane';
import { EventLoader } from './event-loader';
import { EventOutcomes } from './event-outcomes';
import {
  BUSY,
  Done,
  Prepared,
  RUN_DRY,
  RunContext,
  Tx,
  ignoredAtOnce,
} from './event-pipeline.types';
import { LaneTransactions } from './lane-transaction';
import { QuickOutcomes } from './quick-outcomes';
import { WebhookProviders } from './webhook-providers';

export type { RunContext } from './event-pipeline.types';

/**
 * The worker's event pipeline (docs/decisions/0007). Events arrive in batches (one BullMQ job per
 * batch of inbox rows, made by the outbox relay) and are sorted three ways:
 *
 * 1. decided at once, one statement for the whole batch: types the hub does not use, Stripe echoes
 *    of what the hub already recorded, Stripe events about invoices the hub did not make
 *    (quick-outcomes.ts);
 * 2. everything else goes to its **lane** (the subject key the door stored: one deal, envelope,
 *    CRM deal or referral). A lane is drained by whoever holds it — a transaction-scoped advisory
 *    lock tried, never waited for — in arrival order, up to LANE_BATCH events per transaction,
 *    each event under a savepoint so one failure rolls back only itself (lane-transaction.ts). A
 *    worker that finds a lane held moves on: the holder re-checks the lane after each commit and
 *    takes what arrived meanwhile. So one deal's burst occupies one worker slot, in order, while
 *    every other lane keeps flowing.
 * 3. a failed event is recorded in the lane's transaction: attempt row, FAILED with its retry
 *    scheduled as an outbox row (available_at = backoff) — or DEAD with its dead letter — so the
 *    retry schedule lives in Postgres, not in Redis (event-outcomes.ts).
 *
 * Single events (replays, retries, the admin API's dry runs) take the same path with a blocking
 * lane lock. Each event is normalized, routed and applied by event-dispatcher.ts; inbox rows are
 * read by event-loader.ts.
 */
@Injectable()
export class EventPipeline implements OnModuleDestroy {
  private stopping = false;
  private readonly load: EventLoader;
  private readonly dispatcher: EventDispatcher;
  private readonly quick: QuickOutcomes;
  private readonly outcomes: EventOutcomes;
  private readonly lanes: LaneTransactions;

  constructor(
    prisma: PrismaService,
    providers: WebhookProviders,
    lifecycle: LifecycleService,
    referrals: ReferralService,
    crm: CrmPort,
    referralSource: ReferralSourcePort,
    metrics: MetricsService,
    private readonly config: AppConfig,
    private readonly logger: PinoLogger,
    @InjectQueue(QueueName.Webhooks) private readonly queue: Queue,
  ) {
    logger.setContext(EventPipeline.name);
    this.load = new EventLoader(prisma);
    this.dispatcher = new EventDispatcher(providers, lifecycle, referrals, crm, referralSource);
    this.quick = new QuickOutcomes(prisma, metrics);
    this.outcomes = new EventOutcomes(config, logger);
    this.lanes = new LaneTransactions(prisma, config, metrics, this.dispatcher, this.outcomes);
  }

  onModuleDestroy(): void {
    // Drains stop at their next transaction boundary and hand their lane on.
    this.stopping = true;
  }

  // ---- batches ----------------------------------------------------------------------------------

  /** Processes the batch's events still RECEIVED (decided at once, or through their lanes). */
  async processBatch(eventIds: string[], run: RunContext): Promise<JobOutcomeKind> {
    const loaded = await this.load.batch(eventIds);
    const rows = loaded.filter((r) => r.status === 'RECEIVED');
    if (rows.length === 0) return 'SKIPPED';
    const prepared = rows.map((r) => this.dispatcher.prepare(r));
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
      const decided = await this.quick.decideStripe(stripe);
      for (const p of stripe) {
        const d = decided.get(p.row.id);
        if (d) quick.push(d);
        else toLane(p);
      }
    }
    if (quick.length > 0) await this.quick.markQuick(quick);
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
      const rows = await this.load.lane(lane, limit);
      if (rows.length === 0) return 'done';
      if (opts.once && round > 0) return 'more';
      if (this.stopping || Date.now() > deadline) {
        await this.handOn(lane, { delayMs: 0 });
        return 'handed-on';
      }
      const ready = await this.dispatcher.readRemote(rows.map((r) => this.dispatcher.prepare(r)));
      const result = await this.lanes.transaction(lane, ready, run, { blocking: false });
      if (result === BUSY) {
        // Its holder drains what we leave, and re-checks after each commit. Should the holder
        // have died mid-transaction (its session keeps the lock until Postgres notices, see
        // CONNECTION_OPTIONS), one drain comes back later.
        await this.handOn(lane, { delayMs: this.config.env.LANE_DRAIN_MS });
        return 'busy';
      }
      if (rows.length < limit) {
        // Whatever arrived while the lane was ours: the holder looks once more after committing.
        if (!(await this.load.laneWaiting(lane))) return 'done';
      }
    }
  }

  // ---- single events ------------------------------------------------------------------------------

  /** One event (a replay or a retry), under a blocking lane lock; RECEIVED or FAILED. */
  async processOne(eventId: string, run: RunContext): Promise<JobOutcomeKind> {
    const row = await this.load.one(eventId);
    if (row.status !== 'RECEIVED' && row.status !== 'FAILED') return 'SKIPPED';
    const p = this.dispatcher.prepare(row);
    const [ready] = await this.dispatcher.readRemote([p]);
    const result = await this.lanes.transaction(
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
      const p = this.dispatcher.prepare(await this.load.one(eventId));
      if (!p.invalid && !p.normalized) {
        return noEffects('IGNORED', `${p.row.type} is not used by the hub`);
      }
      if (p.applier === 'record') return noEffects('SUCCEEDED', null);
      if (p.invalid) throw p.invalid;
      const snapshot = await this.dispatcher.remoteRead(p);
      await this.lanes.transaction(p.lane, [{ p, snapshot }], RUN_DRY, {
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
  isolate(tx: Tx, of: { eventIds: string[] } | { lane: string }): Promise<void> {
    return this.outcomes.isolate(tx, of);
  }

  /** Marks an event FAILED/DEAD after its single-event job gave up on an infrastructure error. */
  markJobFailure(eventId: string, final: boolean, error: string, tx: Tx): Promise<void> {
    return this.outcomes.markJobFailure(eventId, final, error, tx);
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
