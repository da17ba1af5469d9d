import { SetMetadata } from '@nestjs/common';
import { Job } from 'bullmq';
import { Prisma } from '../generated/prisma/client';

import { JobName } from './job-name.enum';

export const JOB_HANDLER = Symbol('closeloop:job-handler');

/** Marks a provider class as the one handler of a job name (checked at worker start-up). */
export const JobHandler = (name: JobName) => SetMetadata(JOB_HANDLER, name);

export type JobOutcomeKind = 'SUCCEEDED' | 'IGNORED' | 'SKIPPED';

export interface JobFailure {
  /** true when the job will not run again (permanent error or attempts exhausted). */
  final: boolean;
  reason: 'PERMANENT' | 'EXHAUSTED' | 'RETRYING';
  error: string;
  attempt: number;
}

export interface JobHandlerInterface<T = unknown> {
  /** Runs the job. Must be idempotent: at-least-once delivery means it can run again. */
  handle(job: Job<T>): Promise<JobOutcomeKind>;
  /** Record a failure on the handler's own rows, inside the transaction that writes the dead letter. */
  onFailure?(job: Job<T>, failure: JobFailure, tx: Prisma.TransactionClient): Promise<void>;
}
