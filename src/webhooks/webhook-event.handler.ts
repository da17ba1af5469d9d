import { Injectable } from '@nestjs/common';
import { Job } from 'bullmq';

import { Prisma } from '../generated/prisma/client';
import {
  JobFailure,
  JobHandler,
  JobHandlerInterface,
  JobOutcomeKind,
} from '../queue/job-handler.decorator';
import {
  WebhookEventBatchData,
  WebhookEventProcessData,
  WebhookLaneDrainData,
} from '../queue/job-data.types';
import { JobName } from '../queue/job-name.enum';
import { EventEffects } from './event-effects';
import { EventPipeline } from './event-pipeline.service';

const runOf = (job: Job) => ({ jobName: job.name, jobId: String(job.id) });

/**
 * A batch of the door's events (docs/decisions/0007). Its events wait in Postgres whatever becomes
 * of the job, so a batch that keeps failing is not parked: the recovery sweep hands its events out
 * again. The pipeline writes one attempt row per event.
 */
@Injectable()
@JobHandler(JobName.WebhookEventBatch)
export class WebhookEventBatchHandler implements JobHandlerInterface<WebhookEventBatchData> {
  readonly recordsAttempts = true;
  readonly parksOnFailure = false;

  constructor(private readonly pipeline: EventPipeline) {}

  handle(job: Job<WebhookEventBatchData>): Promise<JobOutcomeKind> {
    return this.pipeline.processBatch(job.data.eventIds, runOf(job));
  }

  /** A batch that keeps killing its worker: each of its waiting events retried on its own. */
  onAbandoned(job: Job<WebhookEventBatchData>, tx: Prisma.TransactionClient): Promise<void> {
    return this.pipeline.isolate(tx, { eventIds: job.data.eventIds });
  }
}

/** Carries on draining a lane (handed on by a drain that ran out of time, or by the sweep). */
@Injectable()
@JobHandler(JobName.WebhookLaneDrain)
export class WebhookLaneDrainHandler implements JobHandlerInterface<WebhookLaneDrainData> {
  readonly recordsAttempts = true;
  readonly parksOnFailure = false;

  constructor(private readonly pipeline: EventPipeline) {}

  async handle(job: Job<WebhookLaneDrainData>): Promise<JobOutcomeKind> {
    const result = await this.pipeline.drainLane(job.data.lane, runOf(job));
    return result === 'busy' ? 'SKIPPED' : 'SUCCEEDED';
  }

  /** A drain that keeps killing its worker: the lane's next events retried one by one. */
  onAbandoned(job: Job<WebhookLaneDrainData>, tx: Prisma.TransactionClient): Promise<void> {
    return this.pipeline.isolate(tx, { lane: job.data.lane });
  }
}

/**
 * One stored event on its own: an admin replay, or the retry of an event that failed in its lane.
 * Idempotent: a second run of a finished event changes nothing. The event's own failures are
 * recorded by the pipeline (retry scheduled or dead letter); a failure of the job itself (the
 * database away) is retried by BullMQ and, at the end, parked here like any job's.
 */
@Injectable()
@JobHandler(JobName.WebhookEventProcess)
export class WebhookEventHandler implements JobHandlerInterface<WebhookEventProcessData> {
  readonly recordsAttempts = true;

  constructor(private readonly pipeline: EventPipeline) {}

  handle(job: Job<WebhookEventProcessData>): Promise<JobOutcomeKind> {
    return this.pipeline.processOne(job.data.eventId, runOf(job));
  }

  /** What replaying the event would do, found by a rolled-back run (the admin API's preview). */
  dryRun(eventId: string): Promise<EventEffects> {
    return this.pipeline.dryRun(eventId);
  }

  async onFailure(
    job: Job<WebhookEventProcessData>,
    failure: JobFailure,
    tx: Prisma.TransactionClient,
  ): Promise<void> {
    await this.pipeline.markJobFailure(job.data.eventId, failure.final, failure.error, tx);
  }
}
