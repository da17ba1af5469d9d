import { getQueueToken } from '@nestjs/bullmq';
import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { JobsOptions, Queue } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';
import { Client } from 'pg';

import { withTimeout } from '../../common/with-timeout';
import { AppConfig } from '../../config/app-config';
import { PrismaService } from '../../prisma/prisma.service';
import { jobOptions } from '../job-options';
import { JOB_QUEUE, JobName } from '../job-name.enum';
import { QueueName } from '../queue-name.enum';

const BATCH = 500;
const REDIS_TIMEOUT_MS = 5_000;

/**
 * BEGIN and the page of due rows, oldest first, deleted and returned (simple protocol, so both
 * statements travel together); rows another relay holds are skipped.
 */
const CLAIM_PAGE = `BEGIN;
  DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox WHERE available_at <= now()
     ORDER BY id LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)
  RETURNING id::text, queue, job_name, job_id, data`;

interface OutboxRow {
  id: string;
  queue: string;
  job_name: string;
  job_id: string;
  data: Record<string, unknown>;
}

/**
 * Moves committed outbox rows to BullMQ. Rows are claimed with FOR UPDATE SKIP LOCKED, so any
 * number of relays (one per worker process) share the work; a row is deleted only in the
 * transaction that saw Redis accept its job. If Redis is down the rows simply wait: the relay
 * backs off and catches up when Redis returns. Job ids are deterministic, so a row relayed twice
 * (crash after addBulk, before COMMIT) is one job in Redis, and the handler is idempotent anyway.
 */
@Injectable()
export class OutboxRelayService implements OnApplicationBootstrap, OnModuleDestroy {
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private failures = 0;
  private readonly queues = new Map<string, Queue>();
  private listener?: Client;
  /** A NOTIFY arrived since the last batch started (it must not be lost while a batch runs). */
  private notified = false;

  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly moduleRef: ModuleRef,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(OutboxRelayService.name);
  }

  onApplicationBootstrap(): void {
    for (const name of Object.values(QueueName)) {
      this.queues.set(name, this.moduleRef.get<Queue>(getQueueToken(name), { strict: false }));
    }
    this.running = true;
    this.loop = this.run();
    void this.listen();
  }

  async onModuleDestroy(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.listener?.end().catch(() => undefined);
  }

  /**
   * LISTEN for the outbox trigger's NOTIFY (sent when a transaction that wrote jobs commits), so a
   * job reaches Redis right away instead of at the next poll; the poll stays as the safety net.
   */
  private async listen(): Promise<void> {
    while (this.running && !this.listener) {
      const client = new Client({ connectionString: this.config.env.DATABASE_URL });
      client.on('error', () => undefined);
      try {
        await client.connect();
        client.on('notification', () => {
          this.notified = true;
          this.wake?.();
        });
        client.on('end', () => {
          if (this.listener === client) this.listener = undefined;
          if (this.running) setTimeout(() => void this.listen(), 1_000).unref();
        });
        await client.query('LISTEN closeloop_outbox');
        this.listener = client;
      } catch {
        await client.end().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 1_000).unref());
      }
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      let moved = 0;
      this.notified = false;
      try {
        moved = await this.relayBatch();
        if (this.failures > 0) this.logger.info({ after: this.failures }, 'outbox relay recovered');
        this.failures = 0;
      } catch (err) {
        this.failures++;
        if (this.failures === 1 || this.failures % 20 === 0) {
          this.logger.warn(
            { err: (err as Error).message, failures: this.failures },
            'outbox relay failed; will retry',
          );
        }
      }
      if (moved < BATCH && !(this.notified && this.failures === 0)) {
        const idle =
          this.failures > 0
            ? Math.min(5_000, 100 * 2 ** Math.min(this.failures, 6))
            : this.config.env.OUTBOX_POLL_MS;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, idle);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  }

  /**
   * The BullMQ jobs of a page of outbox rows: one job per row, except the door's event rows
   * (WebhookEventBatch, one event each), which travel EVENT_BATCH_SIZE events to a job
   * (docs/decisions/0007). Job ids stay deterministic: a batch is named after its first event.
   */
  private jobsOf(rows: OutboxRow[]) {
    const jobs: { name: string; queue: string; data: object; opts: JobsOptions }[] = [];
    const size = this.config.env.EVENT_BATCH_SIZE;
    const events = rows.filter((r) => r.job_name === JobName.WebhookEventBatch);
    for (let i = 0; i < events.length; i += size) {
      const chunk = events.slice(i, i + size);
      const first = chunk[0];
      jobs.push({
        name: JobName.WebhookEventBatch,
        queue: first.queue,
        data: {
          eventIds: chunk.map((r) => String(r.data.eventId ?? r.job_id)),
          correlationId: String(first.data.correlationId ?? first.job_id),
        },
        opts: {
          ...jobOptions(JobName.WebhookEventBatch, this.config),
          jobId: `events|${first.job_id}|${chunk.length}`,
        },
      });
    }
    for (const r of rows) {
      if (r.job_name === JobName.WebhookEventBatch) continue;
      jobs.push({
        name: r.job_name,
        queue: r.queue,
        data: r.data,
        opts: { ...jobOptions(r.job_name as JobName, this.config), jobId: r.job_id },
      });
    }
    return jobs;
  }

  /** Relay one batch; returns how many rows moved to Redis. */
  async relayBatch(): Promise<number> {
    const client = await this.prisma.pool.connect();
    let broken = false;
    try {
      // One round trip: the transaction begins and takes its page of rows, deleting them; they
      // come back (the rollback below) unless Redis accepts their jobs.
      const results = (await client.query(CLAIM_PAGE)) as unknown as { rows: OutboxRow[] }[];
      // Oldest first (RETURNING keeps no order): ids are BIGINT, compared as numbers.
      const rows = results[1].rows.sort(
        (a, b) => a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
      );
      if (rows.length === 0) {
        await client.query('COMMIT');
        return 0;
      }
      const byQueue = new Map<string, { name: string; data: object; opts: JobsOptions }[]>();
      for (const job of this.jobsOf(rows)) {
        const queueName = JOB_QUEUE[job.name as JobName] ?? job.queue;
        byQueue.set(queueName, [...(byQueue.get(queueName) ?? []), job]);
      }
      for (const [queueName, list] of byQueue) {
        const queue = this.queues.get(queueName);
        if (!queue) throw new Error(`outbox row for unknown queue ${queueName}`);
        await withTimeout(queue.addBulk(list), REDIS_TIMEOUT_MS, 'redis');
      }
      await client.query('COMMIT');
      return rows.length;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }
}
