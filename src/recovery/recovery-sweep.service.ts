import { randomUUID } from 'node:crypto';

import { getQueueToken } from '@nestjs/bullmq';
import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { JobsOptions, Queue } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';

import { alertJobId } from '../alerts/alert.service';
import { billingJobId } from '../domain/billing-key';
import { Clock } from '../common/clock';
import { errorMessage } from '../common/errors';
import { PeriodicPass } from '../common/periodic-pass';
import { withTimeout } from '../common/with-timeout';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../observability/metrics.service';
import { PrismaService } from '../prisma/prisma.service';
import { eventJobId, laneDrainDeduplication } from '../webhooks/event-lane';
import { cosellJobId } from '../lifecycle/settle.service';
import { jobOptions } from '../queue/job-options';
import { JOB_QUEUE, JobName } from '../queue/job-name.enum';
import { QueueName } from '../queue/queue-name.enum';

/** A Redis key the sweep keeps: gone means Redis lost its data (flush, failover, restart). */
export const REDIS_EPOCH_KEY = 'closeloop:redis-epoch';

/** Work items looked at per kind and pass (the next pass takes the rest). */
const PER_KIND = 1_000;
const REDIS_TIMEOUT_MS = 5_000;
/** Lanes drained per pass while the webhooks queue works through a backlog. */
const BUSY_QUEUE_LANES = 50;

/** One piece of committed work the sweep can hand to BullMQ again. */
interface SweptJob {
  kind: SweepKind;
  name: JobName;
  jobId?: string;
  data: Record<string, unknown>;
  opts?: JobsOptions;
}

export type SweepKind =
  'events' | 'retries' | 'invoices' | 'envelopes' | 'reports' | 'alerts' | 'cosell';

export interface SweepResult {
  /** Redis had lost its data (its epoch key was gone): every piece of work was looked at. */
  redisLost: boolean;
  /** Jobs handed to BullMQ again, by kind (work whose job still exists is not counted). */
  enqueued: Record<SweepKind, number>;
}

/**
 * The recovery sweep (docs/decisions/0007, CONTRACT §7): Postgres is the whole truth about pending
 * work, so every RECOVERY_SWEEP_MS a worker looks for committed work that has gone quiet — events
 * still RECEIVED (their lanes), failed events whose retry has no job, invoices the issuer has not
 * finished, envelopes and co-sell referrals not yet created, reports and alerts not yet delivered — and hands it to
 * BullMQ again. Work that still has a job is untouched: each is re-added under its own deterministic
 * job id (a no-op while that job exists), or, for lanes, a deduplicated drain. Work parked as an
 * open dead letter waits for an admin and is left alone.
 *
 * "Gone quiet" means untouched for RECOVERY_GRACE_MS. When Redis has lost its data — the epoch key
 * the sweep keeps there is missing — the grace is dropped and everything pending is handed out at
 * once: after a flush or a failover, work resumes within one sweep period of Redis answering.
 * Due timers need nothing: the worker's clocks read Postgres. Everything re-added is still done
 * exactly once by the business keys (billing key, report id, one envelope per deal, lanes).
 */
@Injectable()
export class RecoverySweepService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly ticker: PeriodicPass;
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly moduleRef: ModuleRef,
    private readonly metrics: MetricsService,
    private readonly logger: PinoLogger,
    clock: Clock,
  ) {
    logger.setContext(RecoverySweepService.name);
    this.ticker = new PeriodicPass(
      config.env.RECOVERY_SWEEP_MS,
      clock,
      () => this.runOnce(),
      (err) => this.logger.warn({ err: errorMessage(err) }, 'recovery sweep failed'),
    );
  }

  onApplicationBootstrap(): void {
    for (const name of Object.values(QueueName)) {
      this.queues.set(name, this.moduleRef.get<Queue>(getQueueToken(name), { strict: false }));
    }
    this.ticker.start();
  }

  onModuleDestroy(): Promise<void> {
    return this.ticker.stop();
  }

  /** One pass (tests call it directly). */
  async runOnce(): Promise<SweepResult> {
    const redisLost = await this.redisLostItsData();
    const graceMs = redisLost ? 0 : this.config.env.RECOVERY_GRACE_MS;
    const jobs = (
      await Promise.all([
        this.lanes(graceMs, redisLost),
        this.retries(graceMs),
        this.invoices(graceMs),
        this.envelopes(graceMs),
        this.reports(graceMs),
        this.alerts(graceMs),
        this.cosell(graceMs),
      ])
    ).flat();
    const enqueued: Record<SweepKind, number> = {
      events: 0,
      retries: 0,
      invoices: 0,
      envelopes: 0,
      reports: 0,
      alerts: 0,
      cosell: 0,
    };
    const byQueue = new Map<string, SweptJob[]>();
    for (const job of jobs) {
      const queue = JOB_QUEUE[job.name];
      byQueue.set(queue, [...(byQueue.get(queue) ?? []), job]);
    }
    for (const [queueName, all] of byQueue) {
      const queue = this.queues.get(queueName)!;
      // Work whose job still exists is left alone (counted only when handed out again).
      const states = await withTimeout(
        Promise.all(all.map((j) => (j.jobId ? queue.getJobState(j.jobId) : 'unknown'))),
        REDIS_TIMEOUT_MS,
        'redis',
      );
      const list = all.filter((_, i) => states[i] === 'unknown');
      for (let i = 0; i < list.length; i += 500) {
        const chunk = list.slice(i, i + 500);
        await withTimeout(
          queue.addBulk(
            chunk.map((j) => ({
              name: j.name,
              data: j.data,
              opts: { ...jobOptions(j.name, this.config), ...j.opts, jobId: j.jobId },
            })),
          ),
          REDIS_TIMEOUT_MS,
          'redis',
        );
      }
      for (const j of list) enqueued[j.kind]++;
    }
    for (const [kind, n] of Object.entries(enqueued)) {
      if (n > 0) this.metrics.workRecovered(kind, n);
    }
    if (redisLost || Object.values(enqueued).some((n) => n > 0)) {
      this.logger.info(
        { redisLost, enqueued },
        redisLost
          ? 'Redis lost its data: every piece of pending work handed to BullMQ again'
          : 'recovery sweep handed quiet work to BullMQ again',
      );
    }
    return { redisLost, enqueued };
  }

  /**
   * True once per loss: the epoch key is set again right away. (Two workers sweeping at that very
   * moment may both sweep in full once: harmless, every re-add is idempotent.)
   */
  private async redisLostItsData(): Promise<boolean> {
    const redis = await this.queues.get(QueueName.Webhooks)!.backend.client;
    const epoch = await withTimeout(redis.get(REDIS_EPOCH_KEY), REDIS_TIMEOUT_MS, 'redis');
    if (epoch !== null) return false;
    await withTimeout(redis.set(REDIS_EPOCH_KEY, randomUUID()), REDIS_TIMEOUT_MS, 'redis');
    return true;
  }

  /**
   * Lanes with events still RECEIVED, relayed (their outbox row gone) and quiet: one deduplicated
   * drain each. While the webhooks queue still has jobs waiting, those events most likely have
   * their batch job in that backlog, and draining their lanes one by one would only slow the
   * backlog down (a lane drain costs a transaction, a batch's quick decisions one statement): the
   * sweep then waits for the queue to be through, except for events quiet ten graces long, a few
   * lanes a pass. After a loss of Redis's data every such lane is drained.
   */
  private async lanes(graceMs: number, redisLost: boolean): Promise<SweptJob[]> {
    let limit = PER_KIND;
    if (!redisLost) {
      const queue = this.queues.get(JOB_QUEUE[JobName.WebhookLaneDrain])!;
      const c = await withTimeout(
        queue.getJobCounts('waiting', 'prioritized'),
        REDIS_TIMEOUT_MS,
        'redis',
      );
      if ((c.waiting ?? 0) + (c.prioritized ?? 0) > 0) {
        graceMs *= 10;
        limit = BUSY_QUEUE_LANES;
      }
    }
    const rows = await this.query<{ lane: string }>(
      `SELECT DISTINCT e.subject_key AS lane FROM webhook_event e
        WHERE e.status = 'RECEIVED' AND e.subject_key IS NOT NULL
          AND e.received_at < now() - make_interval(secs => $1 / 1000.0)
          AND NOT EXISTS (SELECT 1 FROM outbox o
                           WHERE o.job_name = '${JobName.WebhookEventBatch}' AND o.job_id = e.id)
        LIMIT $2`,
      [graceMs, limit],
    );
    return rows.map(({ lane }) => ({
      kind: 'events',
      name: JobName.WebhookLaneDrain,
      data: { lane, correlationId: `sweep-${lane}` },
      opts: { deduplication: laneDrainDeduplication(lane, 0) },
    }));
  }

  /**
   * Failed events whose retry is due (its outbox row gone) and quiet: their retry job, re-added
   * under its own id (a no-op while it lives).
   */
  private async retries(graceMs: number): Promise<SweptJob[]> {
    const rows = await this.query<{
      id: string;
      attempts: number;
      replay_count: number;
      correlation_id: string;
    }>(
      `SELECT e.id, e.attempts, e.replay_count, e.correlation_id FROM webhook_event e
        WHERE e.status = 'FAILED'
          AND COALESCE(e.processed_at, e.received_at) < now() - make_interval(secs => $1 / 1000.0)
          AND NOT EXISTS (SELECT 1 FROM outbox o
                           WHERE o.job_name = 'WebhookEventProcess' AND o.data->>'eventId' = e.id)
        ORDER BY e.id LIMIT $2`,
      [graceMs, PER_KIND],
    );
    return rows.map((r) => ({
      kind: 'retries',
      name: JobName.WebhookEventProcess,
      jobId: eventJobId(r),
      data: { eventId: r.id, correlationId: r.correlation_id },
    }));
  }

  /** Invoices the issuer has not finished (PENDING, CREATING, CREATED). */
  private async invoices(graceMs: number): Promise<SweptJob[]> {
    const rows = await this.parkedOrNot<{ billing_key: string; deal_id: string }>(
      JobName.BillingInvoiceIssue,
      `SELECT i.billing_key, i.deal_id, %REPLAY% FROM invoice i
        WHERE i.state IN ('PENDING', 'CREATING', 'CREATED')
          AND i.updated_at < now() - make_interval(secs => $1 / 1000.0)
          AND %NOT_PARKED%
        ORDER BY i.updated_at LIMIT $2`,
      `d.data->>'billingKey' = i.billing_key`,
      graceMs,
    );
    return rows.map((r) => ({
      kind: 'invoices',
      name: JobName.BillingInvoiceIssue,
      jobId: r.replay_job_id ?? billingJobId(r.billing_key),
      data: {
        billingKey: r.billing_key,
        dealId: r.deal_id,
        correlationId: `sweep-${r.billing_key}`,
      },
    }));
  }

  /** Envelopes the hub owes and has not created (its contract row PENDING or CREATING). */
  private async envelopes(graceMs: number): Promise<SweptJob[]> {
    const rows = await this.parkedOrNot<{ deal_id: string }>(
      JobName.ContractEnvelopeCreate,
      `SELECT c.deal_id, %REPLAY% FROM contract c
        WHERE c.status IN ('PENDING', 'CREATING') AND c.envelope_id IS NULL
          AND c.updated_at < now() - make_interval(secs => $1 / 1000.0)
          AND %NOT_PARKED%
        ORDER BY c.updated_at LIMIT $2`,
      `d.data->>'dealId' = c.deal_id`,
      graceMs,
    );
    return rows.map((r) => ({
      kind: 'envelopes',
      name: JobName.ContractEnvelopeCreate,
      jobId: r.replay_job_id ?? `envelope|${r.deal_id}`,
      data: { dealId: r.deal_id, correlationId: `sweep-envelope-${r.deal_id}` },
    }));
  }

  /** Reports of an automatic channel not yet delivered (PENDING, FAILED). */
  private async reports(graceMs: number): Promise<SweptJob[]> {
    const rows = await this.parkedOrNot<{ id: string; deal_id: string }>(
      JobName.ReportDeliver,
      `SELECT r.id, r.deal_id, %REPLAY% FROM report r
        WHERE r.channel <> 'manual' AND r.status IN ('PENDING', 'FAILED')
          AND r.updated_at < now() - make_interval(secs => $1 / 1000.0)
          AND %NOT_PARKED%
        ORDER BY r.updated_at LIMIT $2`,
      `d.data->>'reportId' = r.id`,
      graceMs,
    );
    return rows.map((r) => ({
      kind: 'reports',
      name: JobName.ReportDeliver,
      jobId: r.replay_job_id ?? `report|${r.id}`,
      data: { reportId: r.id, dealId: r.deal_id, correlationId: `sweep-${r.id}` },
    }));
  }

  /** Alerts not yet delivered to ALERT_WEBHOOK_URL (when one is configured). */
  private async alerts(graceMs: number): Promise<SweptJob[]> {
    if (!this.config.env.ALERT_WEBHOOK_URL) return [];
    const rows = await this.parkedOrNot<{ id: string }>(
      JobName.AlertDeliver,
      `SELECT a.id, %REPLAY% FROM alert a
        WHERE a.delivered_at IS NULL
          AND a.created_at < now() - make_interval(secs => $1 / 1000.0)
          AND %NOT_PARKED%
        ORDER BY a.created_at LIMIT $2`,
      `d.data->>'alertId' = a.id`,
      graceMs,
    );
    return rows.map((r) => ({
      kind: 'alerts',
      name: JobName.AlertDeliver,
      jobId: r.replay_job_id ?? alertJobId(r.id),
      data: { alertId: r.id, correlationId: `sweep-${r.id}` },
    }));
  }

  /** Co-sell referrals requested and not yet created (cosell_requested_at set, no referral). */
  private async cosell(graceMs: number): Promise<SweptJob[]> {
    const rows = await this.parkedOrNot<{ id: string; requested_at: Date }>(
      JobName.ReferralCosellCreate,
      `SELECT x.id, x.cosell_requested_at AS requested_at, %REPLAY% FROM deal x
        WHERE x.cosell_requested_at IS NOT NULL AND x.referral_id IS NULL
          AND x.cosell_requested_at < now() - make_interval(secs => $1 / 1000.0)
          AND %NOT_PARKED%
        ORDER BY x.cosell_requested_at LIMIT $2`,
      `d.data->>'dealId' = x.id`,
      graceMs,
    );
    return rows.map((r) => ({
      kind: 'cosell',
      name: JobName.ReferralCosellCreate,
      jobId: r.replay_job_id ?? cosellJobId(r.id, r.requested_at),
      data: { dealId: r.id, correlationId: `sweep-cosell-${r.id}` },
    }));
  }

  /**
   * Rows of pending work with the id of the job that carries them now: an admin's replay of its
   * dead letter when there was one (its job id), otherwise the original. Work with an OPEN dead
   * letter is left out: it waits for an admin. `%REPLAY%` and `%NOT_PARKED%` are filled in with
   * the dead-letter match `dl` of this job name.
   */
  private parkedOrNot<T>(
    jobName: JobName,
    sql: string,
    dl: string,
    graceMs: number,
  ): Promise<(T & { replay_job_id: string | null })[]> {
    const text = sql
      .replace(
        '%REPLAY%',
        `(SELECT d.replay_job_id FROM dead_letter d
           WHERE d.job_name = '${jobName}' AND d.status = 'REPLAYED' AND ${dl}
           ORDER BY d.resolved_at DESC NULLS LAST LIMIT 1) AS replay_job_id`,
      )
      .replace(
        '%NOT_PARKED%',
        `NOT EXISTS (SELECT 1 FROM dead_letter d
                      WHERE d.job_name = '${jobName}' AND d.status = 'OPEN' AND ${dl})`,
      );
    return this.query(text, [graceMs, PER_KIND]);
  }

  private async query<T>(text: string, values: unknown[]): Promise<T[]> {
    const { rows } = await this.prisma.pool.query(text, values);
    return rows as T[];
  }
}
