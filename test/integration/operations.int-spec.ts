import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { AppConfig } from '../../src/config/app-config';
import { RedisProbeService } from '../../src/health/redis-probe.service';
import { send, stripeDelivery } from '../../tools/simulator/signed-delivery';
import { RunningHub, freePort, startHub, waitFor } from '../support/hub';
import { OwnRedis, stopAll } from '../support/failures';
import { TEST_DATABASE_URL, TEST_REDIS_URL, TEST_SECRETS, hubEnv } from '../support/test-env';

/**
 * Operations (CONTRACT §7) against built hub processes: readiness by role and metrics through Redis
 * and Postgres outages (on a redis-server of the test's own that it kills and restarts), and
 * /metrics and /docs closed to the public with METRICS_TOKEN and DOCS_PUBLIC=false (CONTRACT §2).
 */

interface Health {
  status: string;
  error?: Record<string, { status: string; message?: string }>;
  details: Record<string, { status: string; required?: boolean; message?: string }>;
}

/**
 * Answers of GET /health/ready with the time it took: with the details an admin token gets, or as
 * anyone gets it (`anonymous`: statuses only, no messages or figures).
 */
async function readiness(
  hub: RunningHub,
  opts: { anonymous?: boolean } = {},
): Promise<{ status: number; body: Health; ms: number }> {
  const started = Date.now();
  const res = await fetch(`${hub.url}/health/ready`, {
    headers: opts.anonymous ? {} : { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` },
  });
  const body = (await res.json()) as Health;
  return { status: res.status, body, ms: Date.now() - started };
}

/** The hub's JSON log lines. */
function logLines(hub: RunningHub): Record<string, unknown>[] {
  return hub
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Well inside a probe's ~2 s timeout: a readiness answer must not wait for an absent Redis. */
const PROMPT_MS = 1_500;

describe('readiness by role', () => {
  let redis: OwnRedis | undefined;
  let api: RunningHub | undefined;
  let worker: RunningHub | undefined;
  let all: RunningHub | undefined;
  let lateApi: RunningHub | undefined;

  beforeAll(async () => {
    redis = await OwnRedis.start();
    [api, worker, all] = await Promise.all(
      (['api', 'worker', 'all'] as const).map((ROLE) => startHub({ ROLE, REDIS_URL: redis!.url })),
    );
  });
  afterAll(async () => {
    await stopAll(api, worker, all, lateApi);
    await redis?.kill();
  });

  it('every role is ready while Postgres and Redis are up', async () => {
    // Just after boot a probe may still be connecting (a loaded machine): ready within seconds.
    for (const hub of [api!, worker!, all!]) {
      let last: Health | undefined;
      const ready = await waitFor(
        async () => {
          const r = await readiness(hub);
          last = r.body;
          return r.status === 200;
        },
        { timeoutMs: 20_000, what: `${hub.url} to be ready` },
      ).catch((err: Error) => new Error(`${err.message}; last answer ${JSON.stringify(last)}`));
      expect(ready).toBe(true);
      expect(last?.details.redis.status).toBe('up');
      expect(last?.details.queue.status).toBe('up');
    }
  });

  it('with Redis down the api stays ready (Redis and the queue reported, not required) and still stores webhooks', async () => {
    await redis!.kill();
    const { status, body, ms } = await readiness(api!);
    expect(status).toBe(200);
    expect(ms).toBeLessThan(PROMPT_MS);
    expect(body.status).toBe('ok');
    expect(body.error).toEqual({});
    expect(body.details.postgres.status).toBe('up');
    expect(body.details.outbox.status).toBe('up');
    expect(body.details.redis).toMatchObject({ status: 'down', required: false });
    expect(body.details.queue).toMatchObject({
      status: 'down',
      required: false,
      message: expect.stringContaining('unknown') as unknown,
    });
    // Anyone gets the same status and the statuses, without the messages.
    const anonymous = await readiness(api!, { anonymous: true });
    expect(anonymous.status).toBe(200);
    expect(anonymous.body.details).toEqual({
      postgres: { status: 'up' },
      outbox: { status: 'up' },
      redis: { status: 'down', required: false },
      queue: { status: 'down', required: false },
    });

    // Ready means it does its job: the door stores the event without Redis.
    const delivery = stripeDelivery(
      {
        id: `evt_ops_ready_${Date.now()}`,
        type: 'invoice.paid',
        created: 1795400000,
        data: { object: { id: 'in_ops_ready', object: 'invoice', metadata: {} } },
      },
      TEST_SECRETS.STRIPE_WEBHOOK_SECRET,
    );
    expect((await send(api!.url, delivery)).status).toBe(200);
  });

  it('with Redis down a worker and ROLE=all are not ready (503 naming Redis), promptly', async () => {
    expect(redis!.running).toBe(false);
    for (const hub of [worker!, all!]) {
      const { status, body, ms } = await readiness(hub);
      expect(status).toBe(503);
      expect(ms).toBeLessThan(PROMPT_MS);
      expect(body.status).toBe('error');
      expect(body.error?.redis?.status).toBe('down');
      expect(body.error?.queue?.status).toBe('down');
      expect(body.details.postgres.status).toBe('up');
      expect(body.error?.redis?.message).toMatch(/not connected/);
      // Anyone gets the same 503 and which checks are down, not why: that goes to the log.
      const anonymous = await readiness(hub, { anonymous: true });
      expect(anonymous.status).toBe(503);
      expect(anonymous.body.error).toEqual({
        redis: { status: 'down' },
        queue: { status: 'down' },
      });
      expect(JSON.stringify(anonymous.body)).not.toMatch(/message|ECONNREFUSED|not connected/);
      expect(logLines(hub)).toContainEqual(
        expect.objectContaining({
          check: 'redis',
          msg: expect.stringMatching(/^readiness: redis is down: not connected/),
        }),
      );
    }
  });

  it('an api that boots while Redis is down is ready, and every answer stays prompt', async () => {
    expect(redis!.running).toBe(false);
    lateApi = await startHub({ ROLE: 'api', REDIS_URL: redis!.url });
    // Repeated: a probe that waited on BullMQ would pile up behind the first.
    for (let i = 0; i < 3; i++) {
      const { status, body, ms } = await readiness(lateApi);
      expect(status).toBe(200);
      expect(ms).toBeLessThan(PROMPT_MS);
      expect(body.details.redis).toMatchObject({ status: 'down', required: false });
    }
  });

  it('with Redis down /metrics still answers promptly, leaving out only the queue depth', async () => {
    expect(redis!.running).toBe(false);
    // lateApi never saw Redis (BullMQ would wait for it forever); api lost it after boot.
    for (const hub of [lateApi!, api!]) {
      const started = Date.now();
      const res = await fetch(`${hub.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      expect(res.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(PROMPT_MS);
      expect(text).toMatch(/^closeloop_outbox_backlog \d+$/m);
      expect(text).not.toMatch(/^closeloop_queue_depth\{/m);
    }
    const apiText = await (await fetch(`${api!.url}/metrics`)).text();
    expect(apiText).toMatch(
      /^closeloop_webhooks_received_total\{provider="stripe",outcome="accepted"\} 1$/m,
    );
  });

  it('when Redis is back every role is ready again', async () => {
    await redis!.restart();
    for (const hub of [api!, worker!, all!, lateApi!]) {
      await waitFor(
        async () => {
          const { status, body } = await readiness(hub);
          return (
            status === 200 &&
            body.details.redis.status === 'up' &&
            body.details.queue.status === 'up'
          );
        },
        { timeoutMs: 20_000, what: `${hub.url} to be ready with Redis and the queue up` },
      );
    }
    const text = await (await fetch(`${lateApi!.url}/metrics`)).text();
    expect(text).toMatch(/^closeloop_queue_depth\{queue="webhooks",state="waiting"\} \d+$/m);
  });
});

describe('RedisProbeService', () => {
  const probe = (url: string) =>
    new RedisProbeService({ env: { REDIS_URL: url } } as unknown as AppConfig);

  it('a ping just after boot waits for the connection under way instead of failing', async () => {
    const p = probe(TEST_REDIS_URL);
    try {
      await expect(p.ping()).resolves.toBeUndefined();
      expect(p.connected).toBe(true);
    } finally {
      p.onModuleDestroy();
    }
  });

  it('with nothing listening a ping fails promptly, naming the connection error', async () => {
    const p = probe(`redis://127.0.0.1:${await freePort()}`);
    try {
      const started = Date.now();
      await expect(p.ping()).rejects.toThrow(/not connected .*ECONNREFUSED/);
      expect(Date.now() - started).toBeLessThan(PROMPT_MS);
    } finally {
      p.onModuleDestroy();
    }
  });
});

describe('readiness without Postgres', () => {
  let hubs: RunningHub[] = [];

  beforeAll(async () => {
    const nowhere = new URL(TEST_DATABASE_URL);
    nowhere.port = String(await freePort()); // nothing listens there
    hubs = await Promise.all(
      (['api', 'worker', 'all'] as const).map((ROLE) =>
        startHub({ ROLE, DATABASE_URL: nowhere.toString() }),
      ),
    );
  });
  afterAll(() => stopAll(...hubs));

  it('every role answers 503 naming Postgres while Redis is up', async () => {
    for (const hub of hubs) {
      // Once the hub's Redis probe is connected, so the 503 is Postgres's alone.
      let answer: { status: number; body: Health } | undefined;
      await waitFor(
        async () => {
          answer = await readiness(hub);
          return answer.body.details.redis.status === 'up';
        },
        { timeoutMs: 20_000, what: `${hub.url} to see Redis` },
      );
      const { status, body } = answer!;
      expect(status).toBe(503);
      expect(body.error?.postgres?.status).toBe('down');
      expect(body.error?.postgres?.message).toEqual(expect.any(String));
      expect(body.details.redis.status).toBe('up');
      // The database's error text only for an authenticated caller (and in the log).
      const anonymous = await readiness(hub, { anonymous: true });
      expect(anonymous.status).toBe(503);
      expect(anonymous.body.error?.postgres).toEqual({ status: 'down' });
      expect(JSON.stringify(anonymous.body)).not.toContain(body.error!.postgres!.message!);
      expect(logLines(hub)).toContainEqual(
        expect.objectContaining({
          check: 'postgres',
          message: body.error!.postgres!.message,
          msg: `readiness: postgres is down: ${body.error!.postgres!.message}`,
        }),
      );
    }
  });
});

const METRICS_TOKEN = 'metrics-token-for-the-ops-spec';

async function get(hub: RunningHub, path: string, token?: string) {
  const res = await fetch(`${hub.url}${path}`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', text };
}

/** The Swagger UI, one of its assets, the document it embeds, and the raw documents. */
const DOCS_PATHS = [
  '/docs',
  '/docs/',
  '/docs/swagger-ui.css',
  '/docs/swagger-ui-init.js',
  '/docs-json',
  '/docs-yaml',
];

describe('closed to the public: METRICS_TOKEN, DOCS_PUBLIC=false', () => {
  let api: RunningHub | undefined;
  let worker: RunningHub | undefined;
  const tokens: Record<'viewer' | 'finance' | 'admin' | 'revoked', string> = {
    viewer: '',
    finance: '',
    admin: '',
    revoked: '',
  };

  beforeAll(async () => {
    [api, worker] = await Promise.all([
      startHub({ ROLE: 'api', METRICS_TOKEN, DOCS_PUBLIC: 'false' }),
      startHub({ ROLE: 'worker', METRICS_TOKEN }),
    ]);
    const create = async (name: string, role: string) => {
      const res = await fetch(`${api!.url}/api/tokens`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ name: `ops-${name}-${Date.now()}`, role }),
      });
      if (res.status !== 201) throw new Error(`token ${name}: ${res.status} ${await res.text()}`);
      return (await res.json()) as { id: string; token: string };
    };
    for (const role of ['viewer', 'finance', 'admin'] as const) {
      tokens[role] = (await create(role, role)).token;
    }
    const revoked = await create('revoked', 'admin');
    const res = await fetch(`${api!.url}/api/tokens/${revoked.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` },
    });
    expect(res.status).toBe(204);
    tokens.revoked = revoked.token;
  });
  afterAll(() => stopAll(api, worker));

  it.each(['api', 'worker'])(
    'the %s role answers /metrics only to its bearer token (401 with the error JSON otherwise)',
    async (role) => {
      const hub = role === 'api' ? api! : worker!;
      const unauthenticated = (message: string) => ({
        status: 401,
        body: { error: { code: 'UNAUTHENTICATED', message } },
      });
      const refused = async (headers: Record<string, string>) => {
        const res = await fetch(`${hub.url}/metrics`, { headers });
        return { status: res.status, body: (await res.json()) as unknown };
      };
      expect(await refused({})).toEqual(unauthenticated('a bearer token is required'));
      expect(await refused({ authorization: 'Bearer not-the-metrics-token' })).toEqual(
        unauthenticated('wrong metrics token'),
      );
      expect(await refused({ authorization: `Basic ${METRICS_TOKEN}` })).toEqual(
        unauthenticated('a bearer token is required'),
      );
      // The admin token is no metrics token.
      expect(await refused({ authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` })).toEqual(
        unauthenticated('wrong metrics token'),
      );

      const ok = await get(hub, '/metrics', METRICS_TOKEN);
      expect(ok.status).toBe(200);
      expect(ok.type).toContain('text/plain');
      expect(ok.text).toMatch(/^closeloop_outbox_backlog \d+$/m);
    },
  );

  it('health stays open', async () => {
    expect((await get(api!, '/health/live')).status).toBe(200);
    await waitFor(async () => (await get(worker!, '/health/ready')).status === 200, {
      what: 'the worker to answer ready without a token',
    });
  });

  it.each(DOCS_PATHS)(
    '%s without a token, or a revoked one → 401 with the error JSON',
    async (path) => {
      for (const token of [undefined, 'clk_not-a-token', tokens.revoked, METRICS_TOKEN]) {
        const res = await get(api!, path, token);
        expect({ token, status: res.status }).toEqual({ token, status: 401 });
        expect(JSON.parse(res.text)).toEqual({
          error: {
            code: 'UNAUTHENTICATED',
            message:
              token === undefined ? 'a bearer token is required' : 'unknown or revoked token',
          },
        });
      }
    },
  );

  it.each(DOCS_PATHS)('%s with a viewer or finance token → 403', async (path) => {
    for (const role of ['viewer', 'finance'] as const) {
      const res = await get(api!, path, tokens[role]);
      expect({ role, status: res.status }).toEqual({ role, status: 403 });
      expect(JSON.parse(res.text)).toEqual({
        error: { code: 'FORBIDDEN', message: 'this action needs the admin role' },
      });
    }
  });

  it.each(DOCS_PATHS)('%s with ADMIN_TOKEN or an admin API token → 200', async (path) => {
    for (const token of [TEST_SECRETS.ADMIN_TOKEN, tokens.admin]) {
      const res = await get(api!, path, token);
      expect(res.status).toBe(200);
      expect(res.text.length).toBeGreaterThan(0);
    }
    const json = await get(api!, '/docs-json', tokens.admin);
    expect(JSON.parse(json.text)).toMatchObject({ info: { title: 'closeloop admin API' } });
  });

  it('the rest of the api is unchanged: webhooks, the admin API and its 401', async () => {
    expect((await get(api!, '/api/events', tokens.viewer)).status).toBe(200);
    expect((await get(api!, '/api/events')).status).toBe(401);
    const delivery = stripeDelivery(
      {
        id: `evt_ops_closed_${Date.now()}`,
        type: 'invoice.paid',
        created: 1795400000,
        data: { object: { id: 'in_ops_closed', object: 'invoice', metadata: {} } },
      },
      TEST_SECRETS.STRIPE_WEBHOOK_SECRET,
    );
    expect((await send(api!.url, delivery)).status).toBe(200);
  });
});

describe('open by default', () => {
  let api: RunningHub | undefined;

  beforeAll(async () => {
    api = await startHub({ ROLE: 'api' });
  });
  afterAll(() => stopAll(api));

  it('/metrics answers without a token (and whatever token is sent)', async () => {
    for (const token of [undefined, 'anything-at-all']) {
      const res = await get(api!, '/metrics', token);
      expect(res.status).toBe(200);
      expect(res.text).toMatch(/^closeloop_outbox_backlog \d+$/m);
    }
  });

  it.each(DOCS_PATHS)('%s answers without a token', async (path) => {
    const res = await get(api!, path);
    expect(res.status).toBe(200);
    expect(res.text.length).toBeGreaterThan(0);
  });
});

// As test/support/hub.ts runs it (TEST_HUB_MAIN: a copy of the build).
const MAIN = path.resolve(
  process.env.TEST_HUB_MAIN ?? path.join(__dirname, '../../dist/src/main.js'),
);

describe('start-up', () => {
  it('a bad METRICS_TOKEN or DOCS_PUBLIC stops the hub with one line naming each', () => {
    const run = spawnSync(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH,
        ...hubEnv({ METRICS_TOKEN: 'too-short', DOCS_PUBLIC: 'yes' }),
      },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(78);
    expect(run.stderr.trim().split('\n')).toEqual([
      'closeloop: configuration error: METRICS_TOKEN: must be at least 16 characters (invalid)',
      'closeloop: configuration error: DOCS_PUBLIC: must be true or false (invalid)',
    ]);
  });
});
