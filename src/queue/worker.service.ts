import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Worker } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';

import { AppConfig } from '../config/app-config';
import { fullJitterDelay } from './backoff';
import { FULL_JITTER } from './job-options';
import { JobRunner } from './job-runner.service';
import { QueueName } from './queue-name.enum';

/**
 * The BullMQ workers of the worker role, one per queue. Created here rather than with
 * @nestjs/bullmq's @Processor so that concurrency, lock duration and the backoff strategy come from
 * the validated configuration (docs/decisions/0001). Closing waits for in-flight jobs.
 */
@Injectable()
export class WorkerService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly workers: Worker[] = [];

  constructor(
    private readonly config: AppConfig,
    private readonly runner: JobRunner,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(WorkerService.name);
  }

  onApplicationBootstrap(): void {
    const { env } = this.config;
    for (const queue of Object.values(QueueName)) {
      const worker = new Worker(queue, (job, token) => this.runner.run(job, token), {
        connection: { url: env.REDIS_URL, maxRetriesPerRequest: null },
        concurrency: env.WORKER_CONCURRENCY,
        lockDuration: env.JOB_LOCK_MS,
        stalledInterval: Math.max(1000, Math.floor(env.JOB_LOCK_MS / 2)),
        // A job whose worker died is re-run (its handler is idempotent), a few times at most.
        maxStalledCount: 3,
        settings: {
          backoffStrategy: (attemptsMade, type, err) =>
            type === FULL_JITTER
              ? fullJitterDelay(attemptsMade, err, {
                  baseMs: env.JOB_BACKOFF_BASE_MS,
                  maxMs: env.JOB_BACKOFF_MAX_MS,
                })
              : 0,
        },
      });
      worker.on('error', (err) => this.logger.error({ queue, err: err.message }, 'worker error'));
      // Past maxStalledCount BullMQ fails the job without calling the processor (deferredFailure):
      // dead-letter it in Postgres like any other job that gave up.
      worker.on('failed', (job, err) => {
        if (job?.deferredFailure) void this.runner.recordAbandoned(job, err);
      });
      this.workers.push(worker);
    }
    this.logger.info(
      { queues: Object.values(QueueName), concurrency: env.WORKER_CONCURRENCY },
      'workers started',
    );
  }

  async onModuleDestroy(): Promise<void> {
    // Stop taking jobs, let the active ones finish (main.ts bounds the whole shutdown).
    await Promise.all(this.workers.map((w) => w.close()));
    this.logger.info('workers stopped');
  }
}
