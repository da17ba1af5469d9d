import { randomUUID } from 'node:crypto';

import { send, stripeDelivery } from '../../tools/simulator/signed-delivery';
import { OwnRedis, stopAll } from '../support/failures';
import { RunningHub, flushTestRedis, startHub, waitFor } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';

/**
 * Issue 12, item 4 (docs/decisions/0012) against built hub processes: TRUST_PROXY, the throttle on
 * failed token authentications (admin API, docs, /metrics, dashboard login) with its Redis store
 * shared by api processes and its in-process fallback, webhooks never throttled, the security
 * headers, and readiness details only for authenticated callers.
 */

/** The production limits (test-env.ts lifts them for the rest of the suite). */
const REAL_LIMITS = { AUTH_FAILURES_PER_IP: undefined, AUTH_FAILURES_PER_TOKEN_PREFIX: undefined };
const METRICS_TOKEN = 'metrics-token-for-the-security-spec';
const ADMIN = TEST_SECRETS.ADMIN_TOKEN;

let family = 0;
/** A token no one has; its first 8 characters (its family) are its own unless given. */
const wrongToken = (prefix = `clk_${(++family).toString(36).padStart(4, '0')}`) =>
  `${prefix}${randomUUID()}`;

interface Answer {
  status: number;
  retryAfter: string | null;
  headers: Headers;
  text: string;
  cookies: string[];
}

async function call(
  hub: RunningHub,
  path: string,
  opts: { token?: string; headers?: Record<string, string>; method?: string; body?: string } = {},
): Promise<Answer> {
  const res = await fetch(`${hub.url}${path}`, {
    method: opts.method ?? 'GET',
    redirect: 'manual',
    headers: {
      ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }),
      ...opts.headers,
    },
    body: opts.body,
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    headers: res.headers,
    text: await res.text(),
    cookies: res.headers.getSetCookie(),
  };
}

/** GET /api/events with a bearer token, as the client `ip` (X-Forwarded-For) when given. */
const adminApi = (hub: RunningHub, token: string, ip?: string) =>
  call(hub, '/api/events', { token, headers: ip ? { 'x-forwarded-for': ip } : {} });

/** Fails `n` times with tokens of their own families; every answer must be a 401. */
async function fail(hub: RunningHub, n: number, ip?: string | ((i: number) => string)) {
  for (let i = 0; i < n; i++) {
    const from = typeof ip === 'function' ? ip(i) : ip;
    const res = await adminApi(hub, wrongToken(), from);
    expect({ attempt: i + 1, status: res.status }).toEqual({ attempt: i + 1, status: 401 });
  }
}

function expectThrottledJson(res: Answer) {
  expect(res.status).toBe(429);
  expect(Number(res.retryAfter)).toBeGreaterThan(0);
  expect(Number(res.retryAfter)).toBeLessThanOrEqual(300);
  expect(res.headers.get('content-type')).toContain('application/json');
  expect(JSON.parse(res.text)).toEqual({
    error: {
      code: 'TOO_MANY_REQUESTS',
      message: expect.stringMatching(/^too many failed authentications; retry in \d+ s$/),
    },
  });
}

/** The dashboard login form as a browser posts it (with its login CSRF cookie), in English. */
async function dashboardLogin(hub: RunningHub, token: string, ip?: string): Promise<Answer> {
  const headers = { 'accept-language': 'en', ...(ip ? { 'x-forwarded-for': ip } : {}) };
  const form = await call(hub, '/dashboard/login', { headers });
  const csrf = /name="_csrf" value="([^"]+)"/.exec(form.text)![1];
  return call(hub, '/dashboard/login', {
    method: 'POST',
    headers: {
      ...headers,
      cookie: `cl_login=${csrf}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ _csrf: csrf, token, next: '/dashboard' }).toString(),
  });
}

let stripeSeq = 0;
const stripeEvent = () =>
  stripeDelivery(
    {
      id: `evt_sec_${Date.now()}_${++stripeSeq}`,
      type: 'invoice.paid',
      created: 1795400000,
      data: { object: { id: `in_sec_${stripeSeq}`, object: 'invoice', metadata: {} } },
    },
    TEST_SECRETS.STRIPE_WEBHOOK_SECRET,
  );

describe('security (issue 12, item 4)', () => {
  /** TRUST_PROXY off (the default), with METRICS_TOKEN and DOCS_PUBLIC=false. */
  let direct: RunningHub | undefined;
  /** TRUST_PROXY=1: one proxy hop in front. */
  let hop: RunningHub | undefined;
  /** TRUST_PROXY=127.0.0.1: the proxy named by its address. */
  let named: RunningHub | undefined;

  beforeAll(async () => {
    [direct, hop, named] = await Promise.all([
      startHub({ ROLE: 'api', ...REAL_LIMITS, METRICS_TOKEN, DOCS_PUBLIC: 'false' }),
      startHub({ ROLE: 'api', ...REAL_LIMITS, TRUST_PROXY: '1' }),
      startHub({ ROLE: 'api', ...REAL_LIMITS, TRUST_PROXY: '127.0.0.1' }),
    ]);
  });
  afterAll(() => stopAll(direct, hop, named));
  // The counters live in the shared test Redis: every test starts from none.
  beforeEach(() => flushTestRedis());

  describe('TRUST_PROXY', () => {
    it('off (the default): a spoofed X-Forwarded-For is not the client the throttle counts', async () => {
      await fail(direct!, 10, (i) => `203.0.113.${i + 1}`);
      // A fresh spoofed address does not escape: every attempt came from 127.0.0.1.
      expectThrottledJson(await adminApi(direct!, ADMIN, '203.0.113.99'));
      expectThrottledJson(await adminApi(direct!, wrongToken(), '198.51.100.7'));
    });

    it.each([
      ['1 (a hop count)', () => hop!],
      ['127.0.0.1 (the proxy’s address)', () => named!],
    ])('%s: the address in X-Forwarded-For is the client', async (_what, hub) => {
      await fail(hub(), 10, '198.51.100.1');
      expectThrottledJson(await adminApi(hub(), ADMIN, '198.51.100.1'));
      // Another client behind the same proxy is not held back.
      expect((await adminApi(hub(), ADMIN, '198.51.100.2')).status).toBe(200);
      expect((await adminApi(hub(), wrongToken(), '198.51.100.2')).status).toBe(401);
    });

    it('HSTS only on a request that came over https through a trusted proxy', async () => {
      const https = { 'x-forwarded-proto': 'https' };
      const hsts = async (hub: RunningHub, headers: Record<string, string> = {}) =>
        (await call(hub, '/health/live', { headers })).headers.get('strict-transport-security');
      expect(await hsts(hop!, https)).toBe('max-age=15552000');
      expect(await hsts(named!, https)).toBe('max-age=15552000');
      expect(await hsts(hop!)).toBeNull();
      // Not trusted: anyone could claim https.
      expect(await hsts(direct!, https)).toBeNull();
    });
  });

  describe('failed authentications', () => {
    it('the 11th attempt after 10 failed bearer tokens answers 429 with Retry-After and the error JSON, the right token included', async () => {
      await fail(hop!, 10, '198.51.100.10');
      const refused = await adminApi(hop!, wrongToken(), '198.51.100.10');
      expectThrottledJson(refused);
      expect(Number(refused.retryAfter)).toBeGreaterThan(290);
      expectThrottledJson(await adminApi(hop!, ADMIN, '198.51.100.10'));
    });

    it('never throttles a busy admin: hundreds of successful requests count nothing, only failures do', async () => {
      for (let batch = 0; batch < 6; batch++) {
        const answers = await Promise.all(
          Array.from({ length: 50 }, () => adminApi(direct!, ADMIN)),
        );
        expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
      }
      await fail(direct!, 9);
      expect((await adminApi(direct!, ADMIN)).status).toBe(200);
      await fail(direct!, 1);
      expectThrottledJson(await adminApi(direct!, ADMIN));
    });

    it('brakes one token family across clients: after 20 failures with the same first 8 characters from 20 addresses, the 21st answers 429 from a fresh address', async () => {
      for (let i = 0; i < 20; i++) {
        const res = await adminApi(hop!, wrongToken('clk_Fam1'), `192.0.2.${i + 1}`);
        expect({ attempt: i + 1, status: res.status }).toEqual({ attempt: i + 1, status: 401 });
      }
      expectThrottledJson(await adminApi(hop!, wrongToken('clk_Fam1'), '192.0.2.200'));
      // The fresh address itself is not throttled: another family is still checked.
      expect((await adminApi(hop!, wrongToken('clk_Fam2'), '192.0.2.200')).status).toBe(401);
      expect((await adminApi(hop!, ADMIN, '192.0.2.200')).status).toBe(200);
    });

    it('counts failures across api processes (the Redis store)', async () => {
      await fail(direct!, 5);
      await fail(named!, 5);
      expectThrottledJson(await adminApi(direct!, wrongToken()));
      expectThrottledJson(await adminApi(named!, ADMIN));
    });

    it('one budget per client for every door: wrong METRICS_TOKENs throttle /metrics, the docs and the admin API', async () => {
      for (let i = 0; i < 10; i++) {
        const res = await call(direct!, '/metrics', { token: wrongToken() });
        expect({ attempt: i + 1, status: res.status }).toEqual({ attempt: i + 1, status: 401 });
      }
      expectThrottledJson(await call(direct!, '/metrics', { token: METRICS_TOKEN }));
      expectThrottledJson(await call(direct!, '/docs-json', { token: ADMIN }));
      expectThrottledJson(await adminApi(direct!, ADMIN));
      // A request without a token guesses nothing: a plain 401 as before.
      expect((await call(direct!, '/api/events')).status).toBe(401);
    });

    it('the 11th dashboard login after 10 failures answers 429 with Retry-After and a readable page, not JSON', async () => {
      for (let i = 0; i < 10; i++) {
        const res = await dashboardLogin(direct!, wrongToken());
        expect({ attempt: i + 1, status: res.status }).toEqual({ attempt: i + 1, status: 401 });
        expect(res.text).toContain('That token is unknown or revoked.');
      }
      for (const token of [wrongToken(), ADMIN]) {
        const res = await dashboardLogin(direct!, token);
        expect(res.status).toBe(429);
        expect(Number(res.retryAfter)).toBeGreaterThan(0);
        expect(res.headers.get('content-type')).toContain('text/html');
        expect(res.text).toMatch(
          /data-testid="login-error">Too many failed logins from this network or with this token\. Try again in [1-5] min\.</,
        );
        expect(res.cookies.some((c) => c.startsWith('cl_session='))).toBe(false);
      }
      // Another client logs in.
      const other = await dashboardLogin(hop!, ADMIN, '198.51.100.30');
      expect(other.status).toBe(302);
      expect(other.cookies.some((c) => c.startsWith('cl_session='))).toBe(true);
    });

    it('never throttles the webhook doors: bursts from one client, before and while it is throttled, and they count nothing', async () => {
      const burst = async () => {
        const answers = await Promise.all(
          Array.from({ length: 150 }, (_, i) => {
            const d = stripeEvent();
            // Every other delivery carries a broken signature (401 from the door).
            const headers: Record<string, string> =
              i % 2 ? { 'stripe-signature': 't=1,v1=00' } : {};
            return send(direct!.url, d, headers);
          }),
        );
        return answers.map((a) => a.status);
      };
      const first = await burst();
      expect(first).not.toContain(429);
      expect(first.filter((s) => s === 200)).toHaveLength(75);
      expect(first.filter((s) => s === 401)).toHaveLength(75);
      // The burst used none of the client's budget: 10 failures still answer 401.
      await fail(direct!, 10);
      expectThrottledJson(await adminApi(direct!, ADMIN));
      const second = await burst();
      expect(second).not.toContain(429);
      expect(second.filter((s) => s === 200)).toHaveLength(75);
    });
  });

  describe('security headers', () => {
    const DASHBOARD_CSP =
      "default-src 'none';script-src 'self';style-src 'self';img-src 'self';connect-src 'self';" +
      "form-action 'self';frame-ancestors 'none';base-uri 'none'";

    function expectCommon(res: Answer) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('referrer-policy')).toBe('same-origin');
      expect(res.headers.get('strict-transport-security')).toBeNull();
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    }

    it('JSON answers (admin API, health, metrics, webhooks) carry nosniff and a CSP that loads nothing', async () => {
      const answers = [
        await adminApi(direct!, ADMIN),
        await call(direct!, '/api/events'),
        await call(direct!, '/health/live'),
        await call(direct!, '/metrics', { token: METRICS_TOKEN }),
      ];
      const webhook = stripeEvent();
      const res = await fetch(`${direct!.url}${webhook.path}`, {
        method: 'POST',
        headers: webhook.headers,
        body: webhook.body,
      });
      expect(res.status).toBe(200);
      answers.push({
        status: res.status,
        retryAfter: null,
        headers: res.headers,
        text: await res.text(),
        cookies: [],
      });
      for (const a of answers) {
        expectCommon(a);
        expect(a.headers.get('content-security-policy')).toBe(
          "default-src 'none';frame-ancestors 'none'",
        );
      }
    });

    it("the dashboard's pages and assets get its CSP: own scripts, styles and requests only, no inline code, no framing", async () => {
      const login = await call(direct!, '/dashboard/login');
      expect(login.status).toBe(200);
      expectCommon(login);
      expect(login.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
      expect(login.text).not.toMatch(/<script>|<style|\sstyle=|\son[a-z]+=/);
      expect(login.text).toContain(
        '<meta name="htmx-config" content=\'{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}\'>',
      );
      for (const asset of ['dashboard.js', 'htmx.min.js', 'dashboard.css']) {
        const res = await call(direct!, `/dashboard/assets/${asset}`);
        expect(res.status).toBe(200);
        expectCommon(res);
      }
    });

    it('Bull Board and the docs get policies of their own', async () => {
      const queues = await call(direct!, '/dashboard/queues');
      expect(queues.status).toBe(302); // no session: to the login form
      expectCommon(queues);
      expect(queues.headers.get('content-security-policy')).toContain(
        "style-src 'self' 'unsafe-inline' https://fonts.googleapis.com",
      );
      expect(queues.headers.get('content-security-policy')).toContain("script-src 'self';");
      const docs = await call(direct!, '/docs', { token: ADMIN });
      expect(docs.status).toBe(200);
      expectCommon(docs);
      expect(docs.headers.get('content-security-policy')).toContain(
        "script-src 'self';style-src 'self' 'unsafe-inline'",
      );
    });
  });

  describe('GET /health/ready', () => {
    interface Health {
      status: string;
      details: Record<string, Record<string, unknown>>;
    }
    const ready = async (token?: string) => {
      const res = await call(direct!, '/health/ready', { token });
      return { status: res.status, body: JSON.parse(res.text) as Health };
    };

    it('anonymous callers get up/down only; an admin token or METRICS_TOKEN gets the details; same status', async () => {
      await waitFor(async () => (await ready()).status === 200, { what: 'the api to be ready' });
      const anonymous = await ready();
      expect(anonymous.body.details).toEqual({
        postgres: { status: 'up' },
        outbox: { status: 'up' },
        redis: { status: 'up', required: false },
        queue: { status: 'up', required: false },
      });
      for (const token of [ADMIN, METRICS_TOKEN]) {
        const detailed = await ready(token);
        expect(detailed.status).toBe(200);
        expect(detailed.body.details.outbox).toMatchObject({
          status: 'up',
          backlog: expect.any(Number),
        });
        expect(detailed.body.details.queue).toHaveProperty('queues');
      }
      // A wrong token is an anonymous caller (never a 401 from readiness).
      const wrong = await ready(wrongToken());
      expect(wrong).toEqual(anonymous);
    });

    it('a viewer token is not enough, and a throttled client gets the anonymous answer', async () => {
      const created = await call(direct!, '/api/tokens', {
        method: 'POST',
        token: ADMIN,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: `sec-viewer-${Date.now()}`, role: 'viewer' }),
      });
      const viewer = (JSON.parse(created.text) as { token: string }).token;
      expect((await ready(viewer)).body.details.outbox).toEqual({ status: 'up' });
      await fail(direct!, 10);
      const throttled = await ready(ADMIN);
      expect(throttled.status).toBe(200);
      expect(throttled.body.details.outbox).toEqual({ status: 'up' });
    });
  });
});

describe('the throttle while Redis is down', () => {
  let redis: OwnRedis | undefined;
  let hub: RunningHub | undefined;

  beforeAll(async () => {
    redis = await OwnRedis.start();
    hub = await startHub({ ROLE: 'api', ...REAL_LIMITS, REDIS_URL: redis.url });
    await redis.kill();
  });
  afterAll(async () => {
    await stopAll(hub);
    await redis?.kill();
  });

  it('fails open to per-process counting: logins, the admin API and webhooks work promptly, and it is logged', async () => {
    const started = Date.now();
    expect((await adminApi(hub!, ADMIN)).status).toBe(200);
    const login = await dashboardLogin(hub!, ADMIN);
    expect(login.status).toBe(302);
    expect((await send(hub!.url, stripeEvent())).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(5_000);

    await fail(hub!, 10);
    expectThrottledJson(await adminApi(hub!, ADMIN));
    await waitFor(() => hub!.output().includes('auth throttle: Redis unavailable'), {
      what: 'the Redis trouble in the log',
      timeoutMs: 5_000,
    });
  });
});
