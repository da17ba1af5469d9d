import { InjectQueue } from '@nestjs/bullmq';
import {
  Controller,
  Get,
  Header,
  Req,
  ServiceUnavailableException,
  UseGuards,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckResult,
  HealthCheckService,
  HealthIndicatorResult,
  HealthIndicatorService,
} from '@nestjs/terminus';
import { Queue } from 'bullmq';
import { FastifyRequest } from 'fastify';
import { PinoLogger } from 'nestjs-pino';

import { TokensService, roleAtLeast } from '../admin/tokens.service';
import { withTimeout } from '../common/with-timeout';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../prisma/prisma.service';
import { QueueName } from '../queue/queue-name.enum';
import { AuthThrottleService } from '../security/auth-throttle.service';
import { MetricsTokenGuard } from './metrics-token.guard';
import { MetricsService } from '../observability/metrics.service';
import { RedisProbeService } from './redis-probe.service';

const CHECK_TIMEOUT_MS = 2_000;

type Checks = HealthCheckResult['details'];

/** Checks as anyone may see them: up or down (and whether this role needs it), nothing else. */
function publicChecks<T extends Partial<Checks>>(checks: T): T {
  const out: Partial<Checks> = {};
  for (const [key, check] of Object.entries(checks)) {
    if (!check) continue;
    out[key] =
      check.required === undefined
        ? { status: check.status }
        : { status: check.status, required: check.required as unknown };
  }
  return out as T;
}

/** The readiness answer for an anonymous caller: the same statuses, no messages or figures. */
export function publicHealth(result: HealthCheckResult): HealthCheckResult {
  return {
    status: result.status,
    ...(result.info ? { info: publicChecks(result.info) } : {}),
    ...(result.error ? { error: publicChecks(result.error) } : {}),
    details: publicChecks(result.details),
  };
}

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
    private readonly metricsToken: MetricsTokenGuard,
    private readonly tokens: TokensService,
    private readonly throttle: AuthThrottleService,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(HealthController.name);
  }

  /** The message each check was last logged down with (a change is logged, not every probe). */
  private readonly downLogged = new Map<string, string>();

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
   *
   * Anyone gets the statuses (the answer and each check's up/down); the error messages and figures
   * go to the log (when a check's state changes) and to callers with an admin bearer token or
   * METRICS_TOKEN. The HTTP status is the same for both.
   */
  @Get('health/ready')
  @HealthCheck()
  async ready(@Req() req: FastifyRequest): Promise<HealthCheckResult> {
    const [detailed, result] = await Promise.all([this.mayReadDetails(req), this.readiness()]);
    this.logChanges(result.details);
    const answer = detailed ? result : publicHealth(result);
    if (result.status !== 'ok') throw new ServiceUnavailableException(answer);
    return answer;
  }

  private async readiness(): Promise<HealthCheckResult> {
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
      return withExtra(err.getResponse() as HealthCheckResult);
    }
  }

  /**
   * Whether the caller presents METRICS_TOKEN or an admin token. A wrong token counts as a failed
   * authentication (AuthThrottleService); a throttled caller, or one whose token cannot be checked
   * now (Postgres down), gets the anonymous answer: readiness never answers 401 or 429.
   */
  private async mayReadDetails(req: FastifyRequest): Promise<boolean> {
    const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!match) return false;
    const token = match[1];
    try {
      const who = await withTimeout(
        this.throttle.verify({ req, token }, async () =>
          this.metricsToken.accepts(token) ? ('metrics' as const) : this.tokens.authenticate(token),
        ),
        CHECK_TIMEOUT_MS,
        'token check',
      );
      return who === 'metrics' || (who !== undefined && roleAtLeast(who.role, 'admin'));
    } catch {
      return false;
    }
  }

  /** Logs each check that goes down (with its message, or a new message) and each that comes back. */
  private logChanges(checks: Checks): void {
    for (const [key, check] of Object.entries(checks)) {
      const before = this.downLogged.get(key);
      if (check.status === 'up') {
        if (before === undefined) continue;
        this.downLogged.delete(key);
        this.logger.info({ check: key }, `readiness: ${key} is up again`);
        continue;
      }
      const message = typeof check.message === 'string' ? check.message : check.status;
      if (before === message) continue;
      this.downLogged.set(key, message);
      this.logger.warn(
        { check: key, message, required: check.required !== false },
        `readiness: ${key} is down: ${message}`,
      );
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
