import { InjectQueue } from '@nestjs/bullmq';
import { Controller, Get, Header, ServiceUnavailableException, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckResult,
  HealthCheckService,
  HealthIndicatorResult,
  HealthIndicatorService,
} from '@nestjs/terminus';
import { Queue } from 'bullmq';

import { withTimeout } from '../common/with-timeout';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../prisma/prisma.service';
import { QueueName } from '../queue/queue-name.enum';
import { MetricsTokenGuard } from './metrics-token.guard';
import { MetricsService } from '../observability/metrics.service';
import { RedisProbeService } from './redis-probe.service';

const CHECK_TIMEOUT_MS = 2_000;

/** Liveness, readiness by role (Postgres, Redis, outbox and queue backlog) and Prometheus metrics (CONTRACT §7). */
@ApiExcludeController()
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly redis: RedisProbeService,
    @InjectQueue(QueueName.Webhooks) private readonly queue: Queue,
    @InjectQueue(QueueName.Billing) private readonly billingQueue: Queue,
    @InjectQueue(QueueName.Connectors) private readonly connectorsQueue: Queue,
  ) {}

  @Get('health/live')
  @HealthCheck()
  live() {
    return this.health.check([
      () => this.indicator.check('process').up({ role: this.config.role }),
    ]);
  }

  /**
   * 503 only when this role cannot do its job (CONTRACT §7). Every role needs Postgres (and an
   * outbox that keeps up). Only a role that runs the worker needs Redis: the api stores webhooks
   * without it (the door never touches Redis), so for ROLE=api Redis and the queue backlog are
   * reported in `details` (marked `required: false`) without failing the check.
   */
  @Get('health/ready')
  @HealthCheck()
  async ready(): Promise<HealthCheckResult> {
    const limit = this.config.env.OUTBOX_BACKLOG_READY_LIMIT;
    const postgres = this.probe('postgres', async () => {
      await this.prisma.$queryRaw`SELECT 1`;
      return {};
    });
    const outbox = this.probe('outbox', async () => {
      const [row] = await this.prisma.$queryRaw<{ backlog: number; oldest_s: number | null }[]>`
        SELECT count(*)::int AS backlog,
               EXTRACT(EPOCH FROM now() - min(available_at))::float AS oldest_s
          FROM outbox WHERE available_at <= now()`;
      // Retries waiting for their backoff (available_at ahead) are scheduled work, not backlog.
      if (row.backlog > limit) throw new Error(`outbox backlog ${row.backlog} exceeds ${limit}`);
      return {
        backlog: row.backlog,
        oldestSeconds: row.oldest_s === null ? 0 : Math.round(row.oldest_s),
      };
    });
    // Answers at once while Redis is unreachable (RedisProbeService), never waits for BullMQ.
    const redis = this.probe('redis', async () => {
      await this.redis.ping();
      return {};
    });
    // The backlog lives in Redis: while Redis is down it is unknown, not waited for.
    const queue = redis.then((r) =>
      r.redis.status === 'up'
        ? this.probe('queue', async () => {
            // The webhook queue's counts at the top level; every queue's counts by name.
            const queues = [this.queue, this.billingQueue, this.connectorsQueue];
            const all = await Promise.all(
              queues.map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'failed')),
            );
            const busiest = all.reduce((max, c) => Math.max(max, c.waiting), 0);
            if (busiest > limit) throw new Error(`queue backlog ${busiest} exceeds ${limit}`);
            return {
              ...all[0],
              queues: Object.fromEntries(queues.map((q, i) => [q.name, all[i]])),
            };
          })
        : this.indicator.check('queue').down({ message: 'unknown while Redis is down' }),
    );

    const needsRedis = this.config.runsWorker;
    const required = needsRedis ? [postgres, outbox, redis, queue] : [postgres, outbox];
    const reported = needsRedis ? [] : [redis, queue];
    const extra: HealthIndicatorResult = {};
    for (const result of await Promise.all(reported)) {
      for (const [key, value] of Object.entries(result)) extra[key] = { ...value, required: false };
    }
    const withExtra = (result: HealthCheckResult): HealthCheckResult => ({
      ...result,
      info: {
        ...result.info,
        ...Object.fromEntries(Object.entries(extra).filter(([, v]) => v.status === 'up')),
      },
      details: { ...result.details, ...extra },
    });
    try {
      return withExtra(await this.health.check(required.map((p) => () => p)));
    } catch (err) {
      if (!(err instanceof ServiceUnavailableException)) throw err;
      throw new ServiceUnavailableException(withExtra(err.getResponse() as HealthCheckResult));
    }
  }

  /** Open, or behind METRICS_TOKEN when it is set (MetricsTokenGuard). */
  @Get('metrics')
  @UseGuards(MetricsTokenGuard)
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  async scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }

  private async probe(key: string, check: () => Promise<Record<string, unknown>>) {
    const session = this.indicator.check(key);
    try {
      const details = await withTimeout(check(), CHECK_TIMEOUT_MS, key);
      return session.up(details);
    } catch (err) {
      return session.down({ message: (err as Error).message });
    }
  }
}
