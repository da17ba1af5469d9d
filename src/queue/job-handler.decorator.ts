import { SetMetadata } from '@nestjs/common';
import { Job } from 'bullmq';
import { Prisma } from '../generated/prisma/client';

import { JobName } from './job-name.enum';

export const JOB_HANDLER = Symbol('closeloop:job-handler');

/** Marks a provider class as the one handler of a job name (checked at worker start-up). */
export const JobHandler = (name: JobName) => SetMetadata(JOB_HANDLER, name);

/**
 * SUCCEEDED / IGNORED / SKIPPED (nothing left to do); FAILED: the work failed and the handler has
 * already recorded it (its retry or dead letter is in Postgres), so the job itself is done.
 */
export type JobOutcomeKind = 'SUCCEEDED' | 'IGNORED' | 'SKIPPED' | 'FAILED';

export interface JobFailure {
  /** true when the job will not run again (permanent error or attempts exhausted). */
  final: boolean;
  reason: 'PERMANENT' | 'EXHAUSTED' | 'RETRYING';
  error: string;
  attempt: number;
}

export interface JobHandlerInterface<T = unknown> {
  /** The handler writes its own job_attempt rows (one per event it processed); the runner does not. */
  readonly recordsAttempts?: boolean;
  /**
   * false: a job that gives up on an infrastructure error is not parked as a dead letter, because
   * its work is still waiting in Postgres and the recovery sweep hands it out again (event batches).
   */
  readonly parksOnFailure?: boolean;
  /** Runs the job. Must be idempotent: at-least-once delivery means it can run again. */
  handle(job: Job<T>): Promise<JobOutcomeKind>;
  /**
   * The job stalled past BullMQ's limit (every worker that took it died or hung mid-job): hand
   * its work out again in a form that isolates the culprit, instead of parking the job. Runs in
   * the transaction that records the abandoned run.
   */
  onAbandoned?(job: Job<T>, tx: Prisma.TransactionClient): Promise<void>;
  /** Record a failure on the handler's own rows, inside the transaction that writes the dead letter. */
  onFailure?(job: Job<T>, failure: JobFailure, tx: Prisma.TransactionClient): Promise<void>;
}
