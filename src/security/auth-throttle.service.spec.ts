import Fastify, { FastifyInstance } from 'fastify';
import { PinoLogger } from 'nestjs-pino';

import { AppConfig } from '../config/app-config';
import { AuthThrottleService, AuthThrottled } from './auth-throttle.service';

const GOOD = 'clk_the-one-good-token';

/**
 * The throttle on a bare Fastify server whose Redis does not answer (nothing listens on port 1):
 * it counts in-process, as an api does while Redis is down. The Redis store itself is exercised by
 * test/integration/security.int-spec.ts.
 */
describe('AuthThrottleService', () => {
  let server: FastifyInstance;
  let throttle: AuthThrottleService;
  const warnings: string[] = [];

  beforeEach(async () => {
    warnings.length = 0;
    const logger = {
      setContext: () => undefined,
      warn: (_obj: unknown, msg: string) => warnings.push(msg),
      error: (_obj: unknown, msg: string) => warnings.push(msg),
    } as unknown as PinoLogger;
    const config = {
      env: {
        REDIS_URL: 'redis://127.0.0.1:1',
        AUTH_FAILURES_PER_IP: 10,
        AUTH_FAILURES_PER_TOKEN_PREFIX: 20,
        AUTH_FAILURE_WINDOW_SECONDS: 300,
      },
    } as unknown as AppConfig;
    throttle = new AuthThrottleService(config, logger);
    // X-Forwarded-For stands for the client's address here.
    server = Fastify({ trustProxy: true });
    await throttle.attach(server);
    server.post('/login', async (req, reply) => {
      const { token } = req.body as { token: string };
      try {
        const who = await throttle.verify({ req, reply, token }, () =>
          token === GOOD ? 'ok' : null,
        );
        return reply.code(who ? 200 : 401).send({ who: who ?? null });
      } catch (err) {
        if (!(err instanceof AuthThrottled)) throw err;
        return reply.code(429).send({ retryAfter: err.retryAfterSeconds });
      }
    });
    await server.ready();
  });

  afterEach(async () => {
    throttle.onModuleDestroy();
    await server.close();
  });

  let n = 0;
  /** A token no one has: a new family (first 8 characters) each time unless `prefix` is given. */
  const wrong = (prefix = `w${String(++n).padStart(7, '0')}`) => `${prefix}${Math.random()}`;

  async function attempt(token: string, ip = '198.51.100.1') {
    const res = await server.inject({
      method: 'POST',
      url: '/login',
      headers: { 'x-forwarded-for': ip },
      payload: { token },
    });
    return { status: res.statusCode, retryAfter: res.headers['retry-after'] };
  }

  it('refuses the 11th attempt of a client after 10 failures, even with the right token, with Retry-After', async () => {
    for (let i = 0; i < 10; i++) expect((await attempt(wrong())).status).toBe(401);
    const refused = await attempt(wrong());
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThan(290);
    expect(Number(refused.retryAfter)).toBeLessThanOrEqual(300);
    expect((await attempt(GOOD)).status).toBe(429);
    // Another client is not held back by it.
    expect((await attempt(GOOD, '198.51.100.2')).status).toBe(200);
    expect((await attempt(wrong(), '198.51.100.2')).status).toBe(401);
  });

  it('never counts a success: a busy client with the right token is never refused', async () => {
    for (let i = 0; i < 200; i++) expect((await attempt(GOOD)).status).toBe(200);
    for (let i = 0; i < 9; i++) expect((await attempt(wrong())).status).toBe(401);
    expect((await attempt(GOOD)).status).toBe(200);
    expect((await attempt(wrong())).status).toBe(401);
    expect((await attempt(wrong())).status).toBe(429);
  });

  it('brakes one token family across clients: 20 failures with the same first 8 characters', async () => {
    for (let i = 0; i < 20; i++) {
      expect((await attempt(wrong('clk_Abcd'), `203.0.113.${i + 1}`)).status).toBe(401);
    }
    const refused = await attempt(wrong('clk_Abcd'), '203.0.113.200');
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    // Other families, from that same fresh client, are still checked.
    expect((await attempt(wrong('clk_Wxyz'), '203.0.113.200')).status).toBe(401);
    expect((await attempt(GOOD, '203.0.113.201')).status).toBe(200);
  });

  it('counts in this process while Redis does not answer, and says so in the log', async () => {
    expect((await attempt(wrong())).status).toBe(401);
    expect(warnings).toContainEqual(expect.stringContaining('Redis unavailable'));
  });

  it('lets everything be checked when it was never attached to a server', async () => {
    const bare = new AuthThrottleService(
      { env: {} } as unknown as AppConfig,
      {
        setContext: () => undefined,
      } as unknown as PinoLogger,
    );
    const req = { ip: '198.51.100.9' } as never;
    for (let i = 0; i < 30; i++) {
      expect(await bare.verify({ req, token: 'nope' }, () => null)).toBeUndefined();
    }
    expect(await bare.verify({ req, token: GOOD }, () => 'ok')).toBe('ok');
  });
});
