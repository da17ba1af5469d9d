import { InjectQueue } from '@nestjs/bullmq';
import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { Queue } from 'bullmq';

import { withTimeout } from '../common/with-timeout';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../prisma/prisma.service';
import { QueueName } from '../queue/queue-name.enum';
import { MetricsService } from './metrics.service';

const CHECK_TIMEOUT_MS = 2_000;

/** Liveness, readiness (Postgres, Redis, outbox and queue backlog) and Prometheus metrics (CONTRACT §7). */
@ApiExcludeController()
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
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

  @Get('health/ready')
  @HealthCheck()
  ready() {
    const limit = this.config.env.OUTBOX_BACKLOG_READY_LIMIT;
    return this.health.check([
      () =>
        this.probe('postgres', async () => {
          await this.prisma.$queryRaw`SELECT 1`;
          return {};
        }),
      () =>
        this.probe('redis', async () => {
          await this.queue.getJobCounts('waiting');
          return {};
        }),
      () =>
        this.probe('outbox', async () => {
          const [row] = await this.prisma.$queryRaw<{ backlog: number; oldest_s: number | null }[]>`
            SELECT count(*)::int AS backlog, EXTRACT(EPOCH FROM now() - min(created_at))::float AS oldest_s FROM outbox`;
          if (row.backlog > limit)
            throw new Error(`outbox backlog ${row.backlog} exceeds ${limit}`);
          return {
            backlog: row.backlog,
            oldestSeconds: row.oldest_s === null ? 0 : Math.round(row.oldest_s),
          };
        }),
      () =>
        this.probe('queue', async () => {
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
        }),
    ]);
  }

  @Get('metrics')
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
