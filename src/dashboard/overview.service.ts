import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { Queue } from 'bullmq';

import { Clock } from '../common/clock';
import { withTimeout } from '../common/with-timeout';
import { AppConfig } from '../config/app-config';
import { Prisma } from '../generated/prisma/client';
import { PrismaService } from '../prisma/prisma.service';
import { PROVIDERS, PortName, ProviderKey } from '../config/providers';
import { JobName } from '../queue/job-name.enum';
import { QueueName } from '../queue/queue-name.enum';

const QUEUE_TIMEOUT_MS = 2_000;
const LIST_LIMIT = 20;

export type ConnectorKey = ProviderKey;

/** The job that makes each port's outbound calls (ReportDeliver splits by the report's channel). */
const JOB_OF_PORT: Record<PortName, JobName> = {
  invoicing: JobName.BillingInvoiceIssue,
  crm: JobName.CrmDealSync,
  'e-signature': JobName.ContractEnvelopeCreate,
  'referral-platform': JobName.ReportDeliver,
  'alert-channel': JobName.AlertDeliver,
};

/** Every provider of the registry (config/providers.ts), with the job that calls it. */
const CONNECTORS = PROVIDERS.map((p) => ({
  key: p.key as ConnectorKey,
  job: JOB_OF_PORT[p.port],
  channel: 'channel' in p ? p.channel : undefined,
}));
const JOBS = [...new Set(CONNECTORS.map((c) => c.job as string))];

export interface ConnectorStatus {
  key: ConnectorKey;
  job: string;
  configured: boolean;
  lastSuccessAt: Date | null;
  attempts: number;
  failed: number;
  /** failed / attempts over the last hour; null without attempts. */
  errorRate: number | null;
  rateLimited: number;
}

interface AttemptStats {
  connector: string;
  attempts: number;
  failed: number;
  rate_limited: number;
}

/**
 * The overview's numbers, read from Postgres (shared by every api and worker process, unlike the
 * per-process Prometheus counters) and from the BullMQ queues, as the readiness probe does.
 */
@Injectable()
export class OverviewService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    @InjectQueue(QueueName.Webhooks) private readonly webhooksQueue: Queue,
    @InjectQueue(QueueName.Billing) private readonly billingQueue: Queue,
    @InjectQueue(QueueName.Connectors) private readonly connectorsQueue: Queue,
  ) {}

  async read() {
    const readAt = new Date();
    const [connectors, webhooks, queues, deadLetters, overdueReports, expiringReferrals] =
      await Promise.all([
        this.connectors(),
        this.webhooks(),
        this.queues(),
        this.deadLetters(),
        this.overdueReports(),
        this.expiringReferrals(),
      ]);
    return { readAt, connectors, webhooks, queues, deadLetters, overdueReports, expiringReferrals };
  }

  configured(key: ConnectorKey): boolean {
    return this.config.providerConfigured(key);
  }

  /**
   * Per connector over the last hour: attempts, failed attempts (RETRYING or DEAD), those whose
   * error names a 429 / rate limit ((job_name, finished_at) index; a report delivery's channel is
   * read from its report by primary key, for those rows only, never by joining the report table);
   * and its last success.
   */
  private async connectors(): Promise<ConnectorStatus[]> {
    const connectorOf = Prisma.sql`CASE
        WHEN ja.job_name = 'ReportDeliver' THEN
          CASE (SELECT r.channel FROM report r WHERE r.id = substr(ja.job_id, 8))
            WHEN 'partner-center' THEN 'partner-center' ELSE 'report-webhook' END
        WHEN ja.job_name = 'BillingInvoiceIssue' THEN 'stripe'
        WHEN ja.job_name = 'CrmDealSync' THEN 'hubspot'
        WHEN ja.job_name = 'ContractEnvelopeCreate' THEN 'docusign'
        WHEN ja.job_name = 'AlertDeliver' THEN 'alert-webhook' END`;
    const [hour, last] = await Promise.all([
      this.prisma.$queryRaw<AttemptStats[]>`
        SELECT ${connectorOf} AS connector,
               count(*)::int AS attempts,
               count(*) FILTER (WHERE ja.outcome IN ('RETRYING', 'DEAD'))::int AS failed,
               count(*) FILTER (WHERE ja.outcome IN ('RETRYING', 'DEAD')
                 AND ja.error ~* '(^|[^0-9])429([^0-9]|$)|rate.?limit|too many requests')::int
                 AS rate_limited
          FROM job_attempt ja
         WHERE ja.job_name IN (${Prisma.join(JOBS)})
           AND ja.finished_at > now() - interval '1 hour'
         GROUP BY 1`,
      Promise.all(CONNECTORS.map(async (c) => [c.key, await this.lastSuccess(c)] as const)),
    ]);
    const lastSuccess = new Map(last);
    const byKey = new Map(hour.map((r) => [r.connector, r]));
    return CONNECTORS.map(({ key, job, channel }) => {
      const r = byKey.get(key);
      const attempts = r?.attempts ?? 0;
      const failed = r?.failed ?? 0;
      return {
        key,
        job: channel ? `${job} (${channel})` : job,
        configured: this.configured(key),
        lastSuccessAt: lastSuccess.get(key) ?? null,
        attempts,
        failed,
        errorRate: attempts > 0 ? failed / attempts : null,
        rateLimited: r?.rate_limited ?? 0,
      };
    });
  }

  /**
   * The newest success of a connector, one index lookup whatever came after it: a report channel's
   * from its reports (channel_succeeded_at, which the ReportDeliver handler sets when its job
   * succeeds and which outlives RETENTION_DAYS), any other job's from its successful attempts
   * (partial index job_attempt_connector_success_idx, which only holds SUCCEEDED attempts outside
   * the webhooks queue: thousands of newer failures are never walked).
   */
  private async lastSuccess({ job, channel }: (typeof CONNECTORS)[number]): Promise<Date | null> {
    const [row] = channel
      ? await this.prisma.$queryRaw<{ at: Date }[]>`
          SELECT channel_succeeded_at AS at FROM report
           WHERE channel = ${channel} AND channel_succeeded_at IS NOT NULL
           ORDER BY channel_succeeded_at DESC LIMIT 1`
      : await this.prisma.$queryRaw<{ at: Date }[]>`
          SELECT finished_at AS at FROM job_attempt
           WHERE job_name = ${job} AND outcome = 'SUCCEEDED' AND queue <> 'webhooks'
           ORDER BY finished_at DESC LIMIT 1`;
    return row?.at ?? null;
  }

  /** Webhook events stored per provider in the last 15 minutes and hour. */
  private webhooks() {
    return this.prisma.$queryRaw<{ provider: string; last15m: number; last1h: number }[]>`
      SELECT provider,
             count(*) FILTER (WHERE received_at > now() - interval '15 minutes')::int AS last15m,
             count(*)::int AS last1h
        FROM webhook_event
       WHERE received_at > now() - interval '1 hour'
       GROUP BY provider ORDER BY provider`;
  }

  private async queues() {
    const queues = [this.webhooksQueue, this.billingQueue, this.connectorsQueue];
    try {
      const counts = await withTimeout(
        Promise.all(queues.map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'failed'))),
        QUEUE_TIMEOUT_MS,
        'redis',
      );
      return { ok: true as const, rows: queues.map((q, i) => ({ name: q.name, ...counts[i] })) };
    } catch (err) {
      return { ok: false as const, error: (err as Error).message, rows: [] };
    }
  }

  private async deadLetters() {
    const byJob = await this.prisma.deadLetter.groupBy({
      by: ['jobName'],
      where: { status: 'OPEN' },
      _count: { _all: true },
      orderBy: { jobName: 'asc' },
    });
    return {
      total: byJob.reduce((n, r) => n + r._count._all, 0),
      byJob: byJob.map((r) => ({ jobName: r.jobName, count: r._count._all })),
    };
  }

  private async overdueReports() {
    const where = { status: 'OVERDUE' as const };
    const [total, rows] = await Promise.all([
      this.prisma.report.count({ where }),
      this.prisma.report.findMany({
        where,
        select: { id: true, dealId: true, kind: true, platform: true, dueAt: true },
        orderBy: [{ dueAt: 'asc' }, { id: 'asc' }],
        take: LIST_LIMIT,
      }),
    ]);
    return { total, rows };
  }

  /** Open referrals whose response clock runs out within 24 hours (or already has, unswept). */
  private async expiringReferrals() {
    const where = {
      state: 'OPEN' as const,
      respondBy: { not: null, lte: new Date(this.clock.nowMs() + 24 * 60 * 60 * 1000) },
    };
    const [total, rows] = await Promise.all([
      this.prisma.referral.count({ where }),
      this.prisma.referral.findMany({
        where,
        select: {
          id: true,
          dealId: true,
          platform: true,
          externalId: true,
          title: true,
          respondBy: true,
        },
        orderBy: { respondBy: 'asc' },
        take: LIST_LIMIT,
      }),
    ]);
    return { total, rows };
  }
}
