import { Injectable } from '@nestjs/common';
import { DelayedError, Job, UnrecoverableError } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';

import { classifyError, errorMessage } from '../common/errors';
import { Prisma } from '../generated/prisma/client';
import { MetricsService } from '../observability/metrics.service';
import { PrismaService } from '../prisma/prisma.service';
import { JobFailure } from './job-handler.decorator';
import { BaseJobData } from './job-data.types';
import { JobRegistry } from './job-registry';
import { newId } from '../common/ids';

const RECORD_RETRY_MS = 5_000;

/**
 * Runs one BullMQ job through its registered handler and turns the result into durable records:
 * a job_attempt row per run; on a permanent error or the last attempt a dead_letter row, written
 * in Postgres before BullMQ is told, so dead letters survive a Redis flush.
 */
@Injectable()
export class JobRunner {
  constructor(
    private readonly registry: JobRegistry,
    private readonly prisma: PrismaService,
    private readonly metrics: MetricsService,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(JobRunner.name);
  }

  async run(job: Job<BaseJobData>, token?: string): Promise<string> {
    const handler = this.registry.get(job.name);
    const attempt = job.attemptsMade + 1;
    const log = { correlationId: job.data.correlationId, jobId: job.id, job: job.name, attempt };
    const started = performance.now();
    if (!handler) {
      // Cannot happen after the start-up check, unless a newer producer enqueued a job this build lacks.
      throw new UnrecoverableError(`no handler for job ${job.name}`);
    }
    try {
      const outcome = await handler.handle(job);
      const durationMs = Math.round(performance.now() - started);
      // FAILED: the handler recorded the failure of the work itself (retry or dead letter).
      if (!handler.recordsAttempts && outcome !== 'FAILED') {
        await this.recordAttempt(job, attempt, outcome, durationMs);
      }
      this.metrics.jobFinished(job.queueName, job.name, outcome.toLowerCase(), durationMs);
      this.logger.info({ ...log, outcome, durationMs }, 'job finished');
      return outcome;
    } catch (err) {
      const durationMs = Math.round(performance.now() - started);
      const kind = classifyError(err);
      const maxAttempts = job.opts.attempts ?? 1;
      const final = kind === 'permanent' || attempt >= maxAttempts;
      const failure: JobFailure = {
        final,
        reason: kind === 'permanent' ? 'PERMANENT' : final ? 'EXHAUSTED' : 'RETRYING',
        error: errorMessage(err),
        attempt,
      };
      try {
        await this.recordFailure(
          job,
          failure,
          durationMs,
          handler.onFailure?.bind(handler),
          handler.parksOnFailure !== false,
        );
      } catch (recordErr) {
        // Postgres could not take the record (it is probably what failed). Giving up now would
        // leave no dead letter behind, so keep the job without spending an attempt and come back.
        this.logger.error(
          { ...log, err: errorMessage(recordErr) },
          'could not record a job failure; retrying later',
        );
        await job.moveToDelayed(Date.now() + RECORD_RETRY_MS, token);
        throw new DelayedError();
      }
      this.metrics.jobFinished(job.queueName, job.name, final ? 'dead' : 'retrying', durationMs);
      this.logger.warn({ ...log, kind, final, err: failure.error, durationMs }, 'job failed');
      if (final) throw new UnrecoverableError(failure.error);
      throw err;
    }
  }

  /**
   * A job BullMQ failed without running it: it stalled more than maxStalledCount times (every
   * worker that took it died or hung mid-job, e.g. a poison message). The runner never saw that
   * failure, so the dead letter is written here; otherwise the event would stay RECEIVED for good.
   */
  async recordAbandoned(job: Job<BaseJobData>, err: Error): Promise<void> {
    const handler = this.registry.get(job.name);
    const failure: JobFailure = {
      final: true,
      reason: 'EXHAUSTED',
      error: `${errorMessage(err)} (its worker died or hung mid-job too many times)`,
      attempt: job.attemptsMade + 1,
    };
    const log = { correlationId: job.data.correlationId, jobId: job.id, job: job.name };
    if (handler?.onAbandoned) {
      try {
        await this.prisma.$transaction(async (tx) => {
          await tx.jobAttempt.create({
            data: {
              eventId: job.data.eventId ?? null,
              queue: job.queueName,
              jobName: job.name,
              jobId: String(job.id),
              dealId: dealOf(job),
              attempt: failure.attempt,
              outcome: 'DEAD',
              error: failure.error,
              durationMs: 0,
            },
          });
          await handler.onAbandoned!(job, tx);
        });
        this.metrics.jobFinished(job.queueName, job.name, 'dead', 0);
        this.logger.warn(
          { ...log, err: failure.error },
          'job abandoned; its work handed out again',
        );
      } catch (recordErr) {
        this.logger.error(
          { ...log, err: (recordErr as Error).message },
          'could not hand out the work of an abandoned job (the recovery sweep will)',
        );
      }
      return;
    }
    try {
      await this.recordFailure(
        job,
        failure,
        0,
        handler?.onFailure?.bind(handler),
        handler?.parksOnFailure !== false,
      );
      this.metrics.jobFinished(job.queueName, job.name, 'dead', 0);
      this.logger.warn({ ...log, err: failure.error }, 'job abandoned; dead-lettered');
    } catch (recordErr) {
      this.logger.error(
        { ...log, err: (recordErr as Error).message },
        'could not dead-letter an abandoned job',
      );
    }
  }

  private async recordAttempt(
    job: Job<BaseJobData>,
    attempt: number,
    outcome: string,
    durationMs: number,
  ) {
    // Once per job run: prepared SQL rather than a Prisma call (see the worker profile, ADR 0001).
    await this.prisma.pool.query({
      name: 'job_attempt_insert',
      text: `INSERT INTO job_attempt (event_id, queue, job_name, job_id, attempt, outcome, duration_ms,
                                       deal_id)
             VALUES ($1, $2, $3, $4, $5, $6::"JobOutcome", $7, $8)`,
      values: [
        job.data.eventId ?? null,
        job.queueName,
        job.name,
        String(job.id),
        attempt,
        outcome,
        durationMs,
        dealOf(job),
      ],
    });
  }

  private async recordFailure(
    job: Job<BaseJobData>,
    failure: JobFailure,
    durationMs: number,
    onFailure?: (job: Job, failure: JobFailure, tx: Prisma.TransactionClient) => Promise<void>,
    parks = true,
  ) {
    await this.prisma.$transaction(async (tx) => {
      await tx.jobAttempt.create({
        data: {
          eventId: job.data.eventId ?? null,
          queue: job.queueName,
          jobName: job.name,
          jobId: String(job.id),
          dealId: dealOf(job),
          attempt: failure.attempt,
          outcome: failure.final ? 'DEAD' : 'RETRYING',
          error: failure.error,
          durationMs,
        },
      });
      if (failure.final && parks) {
        // jobId is unique: a run repeated after a crash cannot park the same job twice.
        await tx.deadLetter.createMany({
          skipDuplicates: true,
          data: {
            id: newId('dl'),
            eventId: job.data.eventId ?? null,
            queue: job.queueName,
            jobName: job.name,
            jobId: String(job.id),
            data: job.data as object,
            reason: failure.reason,
            error: failure.error,
            attempts: failure.attempt,
          },
        });
      }
      await onFailure?.(job, failure, tx);
    });
  }
}

/** The deal a job works for, when its data names one (billing, envelope, CRM sync, reports). */
function dealOf(job: Job<BaseJobData>): string | null {
  const dealId = (job.data as { dealId?: unknown }).dealId;
  return typeof dealId === 'string' ? dealId : null;
}
