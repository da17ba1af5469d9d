import { Injectable } from '@nestjs/common';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics (CONTRACT §7): one registry per process with its counters and histograms, for
 * every layer to count into (it depends on nothing of the hub). The gauges that describe shared
 * state — queue depth, dead letters, outbox backlog — are added to this registry by the health
 * module (src/health/state-gauges.ts), read from Redis/Postgres at scrape time so every process
 * reports the same cluster-wide figure.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  private readonly webhooks = new Counter({
    name: 'closeloop_webhooks_received_total',
    help: 'Webhook deliveries by provider and outcome',
    labelNames: ['provider', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly jobs = new Counter({
    name: 'closeloop_jobs_total',
    help: 'Job runs by queue, job name and outcome',
    labelNames: ['queue', 'job', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly jobDuration = new Histogram({
    name: 'closeloop_job_duration_seconds',
    help: 'Handler duration by queue and job name',
    labelNames: ['queue', 'job'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly endToEnd = new Histogram({
    name: 'closeloop_event_end_to_end_seconds',
    help: 'From webhook receipt to the event being processed, by provider',
    labelNames: ['provider'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
    registers: [this.registry],
  });
  readonly invoicesCreated = new Counter({
    name: 'closeloop_invoices_created_total',
    help: 'Stripe invoices created by the hub, by currency',
    labelNames: ['currency'] as const,
    registers: [this.registry],
  });
  private readonly events = new Counter({
    name: 'closeloop_events_processed_total',
    help: 'Webhook events the worker finished, by provider and outcome (processed, ignored, failed)',
    labelNames: ['provider', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly recovered = new Counter({
    name: 'closeloop_recovered_work_total',
    help: 'Pending work the recovery sweep handed to BullMQ again, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  private readonly purged = new Counter({
    name: 'closeloop_retention_purged_rows_total',
    help: 'Rows the retention purge (RETENTION_DAYS) emptied or deleted, by table',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });
  readonly providerCalls = new Counter({
    name: 'closeloop_provider_calls_total',
    help: 'Outbound provider calls by provider and HTTP status (or error)',
    labelNames: ['provider', 'status'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'closeloop_' });
  }

  webhookReceived(provider: string, outcome: string, n = 1): void {
    this.webhooks.inc({ provider, outcome }, n);
  }

  jobFinished(queue: string, job: string, outcome: string, durationMs: number): void {
    this.jobs.inc({ queue, job, outcome });
    this.jobDuration.observe({ queue, job }, durationMs / 1000);
  }

  workRecovered(kind: string, n: number): void {
    this.recovered.inc({ kind }, n);
  }

  /** Rows one batch of the retention purge emptied (webhook_event) or deleted (the others). */
  rowsPurged(table: string, n: number): void {
    this.purged.inc({ table }, n);
  }

  invoiceCreated(currency: string): void {
    this.invoicesCreated.inc({ currency });
  }

  /**
   * An inbox event finished (whichever path decided it: the batch's quick outcomes or its lane):
   * counted by outcome, and a processed one's time from receipt observed.
   */
  eventFinished(
    event: { provider: string; received_at: Date },
    status: 'PROCESSED' | 'IGNORED' | 'FAILED',
  ): void {
    const outcome =
      status === 'PROCESSED' ? 'processed' : status === 'IGNORED' ? 'ignored' : 'failed';
    this.events.inc({ provider: event.provider, outcome });
    if (status === 'PROCESSED') {
      this.endToEnd.observe(
        { provider: event.provider },
        Math.max(0, Date.now() - event.received_at.getTime()) / 1000,
      );
    }
  }
}
