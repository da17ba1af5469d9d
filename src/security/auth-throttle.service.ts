import { createHash } from 'node:crypto';

import fastifyRateLimit, { normalizeIP } from '@fastify/rate-limit';
import { HttpStatus, Injectable, OnModuleDestroy } from '@nestjs/common';
import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';
import { PinoLogger } from 'nestjs-pino';

import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { AppConfig } from '../config/app-config';

/** How many leading characters of a presented token name its family for the per-prefix limit. */
export const TOKEN_PREFIX_LENGTH = 8;
/** Redis key prefix of the failure counters (`…ip:<address>`, `…token:<digest of the prefix>`). */
export const AUTH_FAILURES_NAMESPACE = 'closeloop:auth-failures:';
/** Longest a counter read or write may take before the in-process counters decide. */
const REDIS_TIMEOUT_MS = 500;
const RECONNECT_EVERY_MS = 1_000;
const REDIS_TROUBLE_LOG_EVERY_MS = 60_000;

type Dimension = 'ip' | 'token';
const DIMENSIONS: readonly Dimension[] = ['ip', 'token'];
type Store = 'redis' | 'local';
type Limiter = ReturnType<FastifyInstance['createRateLimit']>;
type LimiterAnswer = Awaited<ReturnType<Limiter>>;

/** What one authentication attempt is counted under: the client's address and its token's family. */
interface AttemptKeys {
  ip: string;
  token: string;
}
const ATTEMPT = Symbol('closeloop:auth-attempt');
type AttemptRequest = FastifyRequest & { [ATTEMPT]?: AttemptKeys };

/** An authentication attempt refused unchecked: too many failures from this client or token family. */
export class AuthThrottled extends DomainException {
  constructor(readonly retryAfterSeconds: number) {
    super(
      HttpStatus.TOO_MANY_REQUESTS,
      CommonErrorCode.TooManyRequests,
      `too many failed authentications; retry in ${retryAfterSeconds} s`,
    );
  }
}

export interface AuthAttempt {
  req: FastifyRequest;
  /** Gets `Retry-After` when the attempt is throttled. */
  reply?: FastifyReply;
  /** The token presented (never stored or logged: only a digest of its first characters is). */
  token: string;
}

/**
 * Brute-force brake on every door that takes a token (docs/decisions/0012): the admin API and
 * /docs (bearer tokens), the dashboard's login form, /metrics (METRICS_TOKEN) and the detailed
 * readiness answer. Only failures are counted, per client IP (AUTH_FAILURES_PER_IP) and per token
 * family (the first TOKEN_PREFIX_LENGTH characters, AUTH_FAILURES_PER_TOKEN_PREFIX, so one guessed
 * family is braked across IPs), in a window of AUTH_FAILURE_WINDOW_SECONDS. Once either budget is
 * spent, attempts are refused with 429 before the token is looked at; successful requests are
 * never counted, so a busy admin is never throttled. Webhooks never pass through here.
 *
 * The counters are @fastify/rate-limit's stores, read without counting (`increment: false`) before
 * the check and incremented after a failure: its Redis store, shared by every api process, and its
 * in-process store for while Redis does not answer (the limiter fails open to per-process
 * counting and says so in the log; a login never waits for Redis).
 */
@Injectable()
export class AuthThrottleService implements OnModuleDestroy {
  private limiters?: Record<Dimension, Record<Store, Limiter>>;
  private redis?: Redis;
  private lastTroubleLog = 0;

  constructor(
    private readonly config: AppConfig,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(AuthThrottleService.name);
  }

  /** Registers the counters on the HTTP server (app.factory.ts, before any route). */
  async attach(fastify: FastifyInstance): Promise<void> {
    const env = this.config.env;
    // Never queues a command: while Redis is away a counter call fails at once (in-process then).
    this.redis = new Redis(env.REDIS_URL, {
      connectionName: 'closeloop-auth-throttle',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2_000,
      commandTimeout: REDIS_TIMEOUT_MS,
      disconnectTimeout: 500,
      retryStrategy: () => RECONNECT_EVERY_MS,
    });
    this.redis.on('error', (err: Error) => this.trouble(err, 'connection'));
    const max: Record<Dimension, number> = {
      ip: env.AUTH_FAILURES_PER_IP,
      token: env.AUTH_FAILURES_PER_TOKEN_PREFIX,
    };
    const limiters = { ip: {}, token: {} } as Record<Dimension, Record<Store, Limiter>>;
    for (const dimension of DIMENSIONS) {
      for (const store of ['redis', 'local'] as const) {
        // One plugin instance per counter, each in a scope of its own: no route is limited by it
        // (global: false); the limiter function is all that is used.
        await fastify.register(async (scope) => {
          await scope.register(fastifyRateLimit, {
            global: false,
            max: max[dimension],
            timeWindow: env.AUTH_FAILURE_WINDOW_SECONDS * 1000,
            keyGenerator: (req) => `${dimension}:${(req as AttemptRequest)[ATTEMPT]![dimension]}`,
            ...(store === 'redis'
              ? { redis: this.redis, nameSpace: AUTH_FAILURES_NAMESPACE }
              : { cache: 10_000 }),
          });
          limiters[dimension][store] = scope.createRateLimit();
        });
      }
    }
    this.limiters = limiters;
  }

  /**
   * Runs `verify` for a presented token unless this client or this token's family has used up its
   * failures (then throws AuthThrottled, with `Retry-After` on the reply, and `verify` never runs).
   * A falsy result is a failed authentication and is counted; a thrown error is not.
   */
  async verify<T>(
    attempt: AuthAttempt,
    verify: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  ): Promise<T | undefined> {
    if (!this.limiters) return (await verify()) || undefined; // not attached (no HTTP server)
    const req = attempt.req as AttemptRequest;
    req[ATTEMPT] = {
      ip: normalizeIP(req.ip),
      token: createHash('sha256')
        .update(attempt.token.slice(0, TOKEN_PREFIX_LENGTH))
        .digest('base64url')
        .slice(0, 22),
    };
    const seen = await Promise.all(DIMENSIONS.map((d) => this.count(d, req, false)));
    const spent = seen.filter((s): s is Counted => s !== undefined && s.remaining === 0);
    if (spent.length > 0) {
      const retryAfter = Math.max(1, ...spent.map((s) => s.ttlInSeconds));
      attempt.reply?.header('retry-after', String(retryAfter));
      throw new AuthThrottled(retryAfter);
    }
    const result = await verify();
    if (result) return result;
    const counted = await Promise.all(DIMENSIONS.map((d) => this.count(d, req, true)));
    counted.forEach((c, i) => {
      if (c?.remaining !== 0) return;
      this.logger.warn(
        { dimension: DIMENSIONS[i], ip: req[ATTEMPT]!.ip, failures: c.max },
        `${c.max} failed authentications by ${DIMENSIONS[i] === 'ip' ? 'one client' : 'one token prefix'}: further attempts answer 429 for ${c.ttlInSeconds} s`,
      );
    });
    return undefined;
  }

  /** One counter's state (read, or incremented for a failure); undefined if neither store answered. */
  private async count(
    dimension: Dimension,
    req: FastifyRequest,
    increment: boolean,
  ): Promise<Counted | undefined> {
    const { redis, local } = this.limiters![dimension];
    try {
      return counted(await redis(req, { increment }));
    } catch (err) {
      this.trouble(err as Error, dimension);
    }
    try {
      return counted(await local(req, { increment }));
    } catch (err) {
      this.logger.error(
        { err: (err as Error).message },
        'auth throttle: in-process counter failed',
      );
      return undefined;
    }
  }

  private trouble(err: Error, where: string): void {
    if (Date.now() - this.lastTroubleLog < REDIS_TROUBLE_LOG_EVERY_MS) return;
    this.lastTroubleLog = Date.now();
    this.logger.warn(
      { err: err.message, where },
      'auth throttle: Redis unavailable, counting failed authentications in this process only',
    );
  }

  onModuleDestroy(): void {
    this.redis?.disconnect();
  }
}

interface Counted {
  max: number;
  /** Failures left before attempts are refused (0: refused). */
  remaining: number;
  ttlInSeconds: number;
}

function counted(answer: LimiterAnswer): Counted | undefined {
  if (answer.isAllowed) return undefined; // no allow list is configured: never happens
  const { max, remaining, ttlInSeconds } = answer;
  return { max, remaining, ttlInSeconds };
}
