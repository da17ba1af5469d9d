import { JobsOptions } from 'bullmq';

import { AppConfig } from '../config/app-config';
import { JobName } from './job-name.enum';

export const FULL_JITTER = 'fullJitter';

/**
 * Retry policy next to the job names. Attempts are capped; the delay is exponential with full
 * jitter (see backoff.ts). Failed jobs stay in Redis for inspection, but the record of a job that
 * gave up is the dead_letter row in Postgres.
 */
export function jobOptions(name: JobName, config: AppConfig): JobsOptions {
  const base: JobsOptions = {
    attempts: config.env.JOB_ATTEMPTS,
    backoff: { type: FULL_JITTER },
    removeOnComplete: { age: 3600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
  switch (name) {
    case JobName.WebhookEventBatch:
    case JobName.WebhookLaneDrain:
      // Their events wait in Postgres whatever happens to the job: keep Redis small.
      return { ...base, removeOnComplete: { age: 60, count: 1_000 }, removeOnFail: { age: 3600 } };
    case JobName.WebhookEventProcess:
    case JobName.BillingInvoiceIssue:
    case JobName.ContractEnvelopeCreate:
    case JobName.ReportDeliver:
    case JobName.AlertDeliver:
    case JobName.ReferralCosellCreate:
      return base;
    case JobName.CrmDealSync:
      // A sync writes the deal's current state: a newer sync supersedes a failed one sooner.
      return { ...base, removeOnComplete: { age: 600, count: 10_000 } };
  }
}
