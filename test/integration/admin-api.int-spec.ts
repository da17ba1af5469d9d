import { seedTestDeals } from '../support/failures';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';

import { Pool } from 'pg';

import { send, standardDelivery, stripeDelivery } from '../../tools/simulator/signed-delivery';
import { RunningHub, flushTestRedis, startHub, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_DATABASE_URL, TEST_SECRETS } from '../support/test-env';

/** Admin API (CONTRACT §6): roles on every endpoint, tokens (API and CLI), events, replays, audit. */
const TOKENS_CLI = path.resolve(__dirname, '../../dist/src/ops/tokens.js');
const run = promisify(execFile);
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** For test names: the route pattern of an endpoint. */
const placeholder = { event: ':id', deadLetter: ':id', token: ':id' };

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

interface EventItem {
  id: string;
  provider: string;
  providerEventId: string;
  type: string;
  status: string;
  receivedAt: string;
  attempts: number;
  replayCount: number;
  dealId: string | null;
}

describe('admin API', () => {
  let hub: RunningHub;
  let db: Pool;
  const tokens: Record<'viewer' | 'finance' | 'admin' | 'revoked', string> = {
    viewer: '',
    finance: '',
    admin: '',
    revoked: '',
  };
  const seeded: { id: string; provider: string; dealId?: string }[] = [];

  async function call(method: string, urlPath: string, token?: string, body?: unknown) {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${hub.url}${urlPath}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined } as Answer;
  }
  const admin = (method: string, urlPath: string, body?: unknown) =>
    call(method, urlPath, TEST_SECRETS.ADMIN_TOKEN, body);

  async function createToken(name: string, role: string): Promise<{ id: string; token: string }> {
    const res = await admin('POST', '/api/tokens', { name, role });
    expect(res.status).toBe(201);
    return res.body as { id: string; token: string };
  }

  const stripeEvent = (n: number, dealId?: string) => ({
    id: `evt_admin_${n}`,
    object: 'event',
    type: 'invoice.paid',
    created: 1795400000 + n,
    data: {
      object: {
        id: `in_admin_${n}`,
        object: 'invoice',
        metadata: dealId ? { closeloop_deal_id: dealId } : {},
      },
    },
  });
  const eventRow = async (id: string) =>
    (await db.query(`SELECT * FROM webhook_event WHERE id = $1`, [id])).rows[0];
  const attemptRows = async (id: string) =>
    (
      await db.query(`SELECT job_id, outcome FROM job_attempt WHERE event_id = $1 ORDER BY id`, [
        id,
      ])
    ).rows;
  /** Waits until no event is waiting for or between runs. */
  const settle = () =>
    waitFor(
      async () => {
        const { rows } = await db.query(
          `SELECT (SELECT count(*) FROM outbox)::int + (SELECT count(*) FROM webhook_event
                   WHERE status IN ('RECEIVED', 'FAILED'))::int AS busy`,
        );
        return rows[0].busy === 0;
      },
      { timeoutMs: 20_000, what: 'the hub to settle' },
    );
  const openDeadLetters = async () =>
    (
      await db.query<{ id: string; event_id: string; job_id: string }>(
        `SELECT id, event_id, job_id FROM dead_letter WHERE status = 'OPEN' ORDER BY id`,
      )
    ).rows;

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await seedTestDeals(db, ['cl_deal_A', 'cl_deal_B', 'cl_deal_C', 'cl_deal_D']);
    await flushTestRedis();
    hub = await startHub();

    tokens.viewer = (await createToken('dashboard', 'viewer')).token;
    tokens.finance = (await createToken('accounting', 'finance')).token;
    tokens.admin = (await createToken('ops-admin', 'admin')).token;
    const revoked = await createToken('former', 'admin');
    expect((await admin('DELETE', `/api/tokens/${revoked.id}`)).status).toBe(204);
    tokens.revoked = revoked.token;

    // Events, sent one by one so that their order is known: 3 for deal A, 2 for deal B, 2 with
    // no deal, and 4 milestone events with invalid payloads (dead-lettered at once).
    const deals = ['cl_deal_A', 'cl_deal_B', 'cl_deal_A', undefined, 'cl_deal_B', 'cl_deal_A'];
    for (const [i, dealId] of [...deals, undefined].entries()) {
      const res = await send(
        hub.url,
        stripeDelivery(stripeEvent(i, dealId), TEST_SECRETS.STRIPE_WEBHOOK_SECRET),
      );
      expect(res.status).toBe(200);
      seeded.push({
        id: (res.body as { eventIds: string[] }).eventIds[0],
        provider: 'stripe',
        dealId,
      });
    }
    for (const n of [1, 2, 3, 4]) {
      const res = await send(
        hub.url,
        standardDelivery(
          '/webhooks/milestones',
          { type: 'milestone.accepted', data: { dealId: 'cl_deal_C' } }, // no itemKey
          { secret: TEST_SECRETS.MILESTONE_WEBHOOK_SECRET, id: `msg_admin_${n}` },
        ),
      );
      expect(res.status).toBe(200);
      seeded.push({ id: (res.body as { eventIds: string[] }).eventIds[0], provider: 'milestones' });
    }
    await waitFor(
      async () => {
        const { rows } = await db.query(
          `SELECT count(*)::int AS n FROM webhook_event WHERE status IN ('PROCESSED', 'IGNORED', 'DEAD')`,
        );
        return rows[0].n === seeded.length && (await openDeadLetters()).length === 4;
      },
      { timeoutMs: 20_000, what: 'the seeded events to be processed' },
    );
  });
  afterAll(async () => {
    await hub?.stop();
    await db?.end();
  });

  describe('roles on every endpoint', () => {
    /** Targets that exist, so that a refusal is never a 404 in disguise. */
    const target = async () => {
      const [dl] = await openDeadLetters();
      const { rows } = await db.query(
        `SELECT id FROM api_token WHERE revoked_at IS NULL AND name = 'victim'`,
      );
      const token = (rows[0]?.id as string) ?? (await createToken('victim', 'viewer')).id;
      return { event: seeded[0].id, deadLetter: dl.id, token };
    };
    type Target = Awaited<ReturnType<typeof target>>;
    const endpoints: {
      method: string;
      path: (t: Target) => string;
      body?: unknown;
      least: 'viewer' | 'admin';
    }[] = [
      { method: 'GET', path: () => '/api/events', least: 'viewer' },
      { method: 'GET', path: (t) => `/api/events/${t.event}`, least: 'viewer' },
      { method: 'POST', path: (t) => `/api/events/${t.event}/replay`, least: 'admin' },
      { method: 'GET', path: () => '/api/dead-letters', least: 'viewer' },
      { method: 'POST', path: (t) => `/api/dead-letters/${t.deadLetter}/replay`, least: 'admin' },
      { method: 'DELETE', path: (t) => `/api/dead-letters/${t.deadLetter}`, least: 'admin' },
      {
        method: 'POST',
        path: () => '/api/tokens',
        body: { name: 'sneaky', role: 'admin' },
        least: 'admin',
      },
      { method: 'GET', path: () => '/api/tokens', least: 'admin' },
      { method: 'DELETE', path: (t) => `/api/tokens/${t.token}`, least: 'admin' },
    ];
    const stateOf = async () =>
      (
        await db.query(
          `SELECT (SELECT json_agg(json_build_object('id', id, 'status', status, 'replays', replay_count) ORDER BY id) FROM webhook_event) AS events,
                  (SELECT json_agg(json_build_object('id', id, 'status', status) ORDER BY id) FROM dead_letter) AS dead_letters,
                  (SELECT json_agg(json_build_object('id', id, 'revoked', revoked_at) ORDER BY id) FROM api_token) AS tokens,
                  (SELECT count(*)::int FROM audit_log) AS audit,
                  (SELECT count(*)::int FROM outbox) AS outbox`,
        )
      ).rows[0];

    it.each(endpoints.map((e) => [`${e.method} ${e.path(placeholder)}`, e] as const))(
      '%s: 401 without a valid token, viewer/finance as their role allows; nothing changes',
      async (_name, ep) => {
        const t = await target();
        const p = ep.path(t);
        const before = await stateOf();
        const unauthenticated = { error: { code: 'UNAUTHENTICATED', message: expect.any(String) } };
        expect(await call(ep.method, p, undefined, ep.body)).toEqual({
          status: 401,
          body: unauthenticated,
        });
        expect(await call(ep.method, p, 'clk_unknown-token', ep.body)).toEqual({
          status: 401,
          body: unauthenticated,
        });
        expect(await call(ep.method, p, tokens.revoked, ep.body)).toEqual({
          status: 401,
          body: unauthenticated,
        });
        const basic = await fetch(`${hub.url}${p}`, {
          method: ep.method,
          headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
        });
        expect(basic.status).toBe(401);
        for (const role of ['viewer', 'finance'] as const) {
          const res = await call(ep.method, p, tokens[role], ep.body);
          if (ep.least === 'viewer') {
            expect(res.status).toBe(200);
          } else {
            expect(res).toEqual({
              status: 403,
              body: { error: { code: 'FORBIDDEN', message: expect.stringContaining('admin') } },
            });
          }
        }
        expect(await stateOf()).toEqual(before);
      },
    );

    it('admin (bootstrap ADMIN_TOKEN or a named admin token) may call every endpoint', async () => {
      const expected: Record<string, number> = {
        'GET /api/events': 200,
        'GET /api/events/:id': 200,
        'POST /api/events/:id/replay': 202,
        'GET /api/dead-letters': 200,
        'POST /api/dead-letters/:id/replay': 202,
        'DELETE /api/dead-letters/:id': 204,
        'POST /api/tokens': 201,
        'GET /api/tokens': 200,
        'DELETE /api/tokens/:id': 204,
      };
      const seen: Record<string, number> = {};
      for (const [i, ep] of endpoints.entries()) {
        const t = await target(); // a fresh open dead letter / active token each time
        const token = i % 2 === 0 ? TEST_SECRETS.ADMIN_TOKEN : tokens.admin;
        const res = await call(ep.method, ep.path(t), token, ep.body);
        seen[`${ep.method} ${ep.path(placeholder)}`] = res.status;
      }
      expect(seen).toEqual(expected);
      await settle(); // the replays above run to their end before the next tests look
    });
  });

  describe('tokens', () => {
    it('POST shows the token once; GET never shows tokens or hashes; the token works', async () => {
      const created = await admin('POST', '/api/tokens', { name: 'reporting', role: 'viewer' });
      expect(created).toEqual({
        status: 201,
        body: {
          id: expect.stringMatching(/^tok_/),
          name: 'reporting',
          role: 'viewer',
          token: expect.stringMatching(/^clk_[\w-]{40,}$/),
        },
      });
      const { id, token } = created.body as { id: string; token: string };

      const { rows } = await db.query(`SELECT * FROM api_token WHERE id = $1`, [id]);
      expect(rows[0].token_hash).toBe(sha256(token));
      expect(JSON.stringify(rows[0])).not.toContain(token);

      const list = await admin('GET', '/api/tokens');
      expect(list.status).toBe(200);
      const text = JSON.stringify(list.body);
      expect(text).not.toContain(token);
      expect(text).not.toContain(sha256(token));
      expect(text).not.toMatch(/clk_/);
      for (const item of list.body.items as Record<string, unknown>[]) {
        expect(Object.keys(item).sort()).toEqual(
          ['createdAt', 'id', 'lastUsedAt', 'name', 'revokedAt', 'role'].sort(),
        );
      }
      expect(list.body.items).toContainEqual(
        expect.objectContaining({ id, name: 'reporting', role: 'viewer', revokedAt: null }),
      );

      expect((await call('GET', '/api/events', token)).status).toBe(200);
      expect((await call('GET', '/api/tokens', token)).status).toBe(403);
      const used = (await admin('GET', '/api/tokens')).body.items.find(
        (t: { id: string }) => t.id === id,
      );
      expect(Date.parse(used.lastUsedAt)).toBeGreaterThan(Date.now() - 60_000);
    });

    it('DELETE revokes: the token stops working at once; a second DELETE is 404', async () => {
      const { id, token } = await createToken('temp', 'admin');
      expect((await call('GET', '/api/tokens', token)).status).toBe(200);
      expect((await admin('DELETE', `/api/tokens/${id}`)).status).toBe(204);
      expect((await call('GET', '/api/tokens', token)).status).toBe(401);
      expect((await call('GET', '/api/events', token)).status).toBe(401);
      const listed = (await admin('GET', '/api/tokens')).body.items.find(
        (t: { id: string }) => t.id === id,
      );
      expect(listed.revokedAt).toEqual(expect.any(String));
      expect(await admin('DELETE', `/api/tokens/${id}`)).toEqual({
        status: 404,
        body: { error: { code: 'NOT_FOUND', message: expect.any(String) } },
      });
      expect((await admin('DELETE', '/api/tokens/tok_nope')).status).toBe(404);
    });

    it.each([
      [{ name: 'x', role: 'root' }, 'role'],
      [{ role: 'viewer' }, 'name'],
      [{ name: '   ', role: 'viewer' }, 'name'],
      [{ name: 'x'.repeat(101), role: 'viewer' }, 'name'],
    ])('POST %j → 400 VALIDATION_FAILED naming %s', async (body, field) => {
      const before = (await db.query(`SELECT count(*)::int AS n FROM api_token`)).rows[0].n;
      const res = await admin('POST', '/api/tokens', body);
      expect(res).toEqual({
        status: 400,
        body: { error: { code: 'VALIDATION_FAILED', message: expect.stringContaining(field) } },
      });
      expect((await db.query(`SELECT count(*)::int AS n FROM api_token`)).rows[0].n).toBe(before);
    });

    it('POST with a body that is not JSON → 400 in the error shape', async () => {
      const res = await fetch(`${hub.url}/api/tokens`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}`,
          'content-type': 'application/json',
        },
        body: '{"name":',
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        error: { code: expect.any(String), message: expect.any(String) },
      });
    });

    it('the CLI creates a named role token that works against the API, lists and revokes it', async () => {
      const env = { PATH: process.env.PATH, DATABASE_URL: TEST_DATABASE_URL };
      const cli = (...args: string[]) => run(process.execPath, [TOKENS_CLI, ...args], { env });

      const created = await cli('create', 'ops', 'finance');
      const token = /token \(shown once\): (clk_\S+)/.exec(created.stdout)?.[1];
      const id = /\((tok_[^)]+)\)/.exec(created.stdout)?.[1];
      expect(created.stdout).toContain('finance token "ops"');
      expect(token).toBeDefined();
      expect(id).toBeDefined();

      // finance: reads yes, admin actions no.
      expect((await call('GET', '/api/events', token)).status).toBe(200);
      expect((await call('GET', '/api/dead-letters', token)).status).toBe(200);
      expect((await call('POST', `/api/events/${seeded[0].id}/replay`, token)).status).toBe(403);

      const listed = await cli('list');
      expect(listed.stdout.split('\n')).toContain(`${id}\tfinance\tops\tactive`);
      expect(listed.stdout).not.toContain(token!);
      // Tokens made through the API and the CLI are the same thing.
      expect(listed.stdout).toMatch(/\tviewer\tdashboard\tactive/);
      expect((await admin('GET', '/api/tokens')).body.items).toContainEqual(
        expect.objectContaining({ id, name: 'ops', role: 'finance' }),
      );

      const revoked = await cli('revoke', id!);
      expect(revoked.stdout.trim()).toBe(`revoked ${id}`);
      expect((await call('GET', '/api/events', token)).status).toBe(401);
      expect((await cli('list')).stdout).toMatch(new RegExp(`${id}\\tfinance\\tops\\trevoked `));

      await expect(cli('revoke', id!)).rejects.toMatchObject({ code: 1 });
      await expect(cli('create', 'ops', 'superuser')).rejects.toMatchObject({
        code: 2,
        stderr: expect.stringContaining('usage'),
      });
    });
  });

  describe('events', () => {
    const list = async (query: string, token = tokens.viewer) => {
      const res = await call('GET', `/api/events${query}`, token);
      expect(res.status).toBe(200);
      return res.body as { items: EventItem[]; nextCursor: string | null };
    };

    it('each event shows the fields of CONTRACT §6', async () => {
      const { items } = await list(`?provider=stripe&dealId=cl_deal_B&limit=1`);
      expect(items[0]).toEqual(
        expect.objectContaining({
          id: seeded[4].id,
          provider: 'stripe',
          providerEventId: 'evt_admin_4',
          type: 'invoice.paid',
          status: 'PROCESSED',
          receivedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
          attempts: 1,
          dealId: 'cl_deal_B',
        }),
      );
    });

    it('lists newest first and pages with limit and cursor', async () => {
      const all = await list('?limit=200');
      const ids = all.items.map((e) => e.id);
      // The seeded events are the oldest; sent one after another, newest first means reversed.
      expect(ids.slice(-seeded.length)).toEqual(seeded.map((s) => s.id).reverse());
      const times = all.items.map((e) => Date.parse(e.receivedAt));
      expect(times).toEqual([...times].sort((a, b) => b - a));
      expect(all.nextCursor).toBeNull();

      const paged: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await list(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.items.length).toBeLessThanOrEqual(2);
        paged.push(...page.items.map((e) => e.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor && pages < 50);
      expect(paged).toEqual(ids);
      expect(pages).toBe(Math.ceil(ids.length / 2));
    });

    it('filters by provider, status and dealId (and their combination)', async () => {
      const stripe = await list('?provider=stripe&limit=200');
      expect(new Set(stripe.items.map((e) => e.provider))).toEqual(new Set(['stripe']));
      expect(stripe.items.map((e) => e.id)).toEqual(
        expect.arrayContaining(seeded.filter((s) => s.provider === 'stripe').map((s) => s.id)),
      );

      const dead = await list('?status=DEAD&limit=200');
      expect(dead.items.map((e) => e.id).sort()).toEqual(
        seeded
          .filter((s) => s.provider === 'milestones')
          .map((s) => s.id)
          .sort(),
      );

      const dealA = await list('?dealId=cl_deal_A&limit=200');
      expect(dealA.items.map((e) => e.id)).toEqual(
        seeded
          .filter((s) => s.dealId === 'cl_deal_A')
          .map((s) => s.id)
          .reverse(),
      );

      const none = await list('?provider=milestones&status=PROCESSED');
      expect(none.items).toEqual([]);
      const combined = await list('?provider=stripe&status=PROCESSED&dealId=cl_deal_B&limit=1');
      expect(combined.items.map((e) => e.id)).toEqual([seeded[4].id]);
      expect(combined.nextCursor).toBe(seeded[4].id);
      const rest = await list(`?provider=stripe&dealId=cl_deal_B&cursor=${combined.nextCursor}`);
      expect(rest.items.map((e) => e.id)).toEqual([seeded[1].id]);
      expect(rest.nextCursor).toBeNull();
    });

    it.each([
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['limit=abc', 'limit'],
      ['provider=paypal', 'provider'],
      ['status=DONE', 'status'],
      ['dealId=', 'dealId'],
    ])('?%s → 400 VALIDATION_FAILED naming %s', async (query, field) => {
      expect(await call('GET', `/api/events?${query}`, tokens.viewer)).toEqual({
        status: 400,
        body: { error: { code: 'VALIDATION_FAILED', message: expect.stringContaining(field) } },
      });
    });

    it('GET /api/events/:id and the dead letters show stored headers and errors redacted, also rows stored before the allow-list', async () => {
      // A row as the deny-list era stored it: proxy credentials, a Cloudflare Access JWT and the
      // client address kept; errors written before they were redacted.
      const id = `evt_legacy_${Date.now()}`;
      await db.query(
        `INSERT INTO webhook_event (id, provider, provider_event_id, type, status, payload, headers,
                                    correlation_id, last_error)
         VALUES ($1, 'stripe', $1, 'invoice.paid', 'DEAD', '{}', $2, 'corr-legacy',
                 'StripeAuthenticationError: Invalid API Key provided: sk_live_abcdefgh12345678')`,
        [
          id,
          JSON.stringify({
            'content-type': 'application/json',
            'proxy-authorization': 'Basic dXNlcjpwYXNz',
            'cf-access-jwt-assertion': 'eyJhbGciOiJSUzI1NiJ9.eyJlbWFpbCI6ImEifQ.c2lnbmF0dXJl',
            'x-forwarded-for': '203.0.113.9',
            'stripe-signature': '[redacted]',
          }),
        ],
      );
      await db.query(
        `INSERT INTO job_attempt (event_id, queue, job_name, job_id, attempt, outcome, error, duration_ms)
         VALUES ($1, 'webhooks', 'WebhookEventProcess', $1, 1, 'DEAD', 'signer yamada@example.co.jp declined', 5)`,
        [id],
      );
      await db.query(
        `INSERT INTO dead_letter (id, event_id, queue, job_name, job_id, data, reason, error, attempts)
         VALUES ($1, $2, 'webhooks', 'WebhookEventProcess', $1, '{}', 'PERMANENT',
                 'refresh_token=0.AAAA-very-secret rejected for keiri@example.co.jp', 1)`,
        [`dl_legacy_${Date.now()}`, id],
      );
      const res = await call('GET', `/api/events/${id}`, tokens.viewer);
      expect(res.status).toBe(200);
      expect(res.body.headers).toEqual({
        'content-type': 'application/json',
        'proxy-authorization': '[redacted]',
        'cf-access-jwt-assertion': '[redacted]',
        'x-forwarded-for': '[redacted]',
        'stripe-signature': '[redacted]',
      });
      const text = JSON.stringify(res.body);
      for (const secret of [
        'dXNlcjpw',
        'eyJhbGci',
        '203.0.113.9',
        'sk_live_abcdefgh',
        'yamada@',
        'AAAA-very',
        'keiri@',
      ]) {
        expect(text).not.toContain(secret);
      }
      expect(res.body.lastError).toBe(
        'StripeAuthenticationError: Invalid API Key provided: sk_live_[redacted]',
      );
      const letters = await call('GET', '/api/dead-letters?limit=100', tokens.viewer);
      const letter = (letters.body.items as { eventId: string; error: string }[]).find(
        (d) => d.eventId === id,
      );
      expect(letter?.error).toBe('refresh_token=[redacted] rejected for [email]');
      await db.query('DELETE FROM dead_letter WHERE event_id = $1', [id]);
      await db.query('DELETE FROM job_attempt WHERE event_id = $1', [id]);
      await db.query('DELETE FROM webhook_event WHERE id = $1', [id]);
    });

    it('GET /api/events/:id shows one event with its job attempts; unknown id → 404', async () => {
      const res = await call('GET', `/api/events/${seeded[0].id}`, tokens.finance);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id: seeded[0].id,
        provider: 'stripe',
        providerEventId: 'evt_admin_0',
        dealId: 'cl_deal_A',
        jobAttempts: expect.arrayContaining([
          // The door's events travel to the worker in batches (docs/decisions/0007).
          expect.objectContaining({
            jobName: 'WebhookEventBatch',
            jobId: expect.stringMatching(/^events\|evt_/),
            outcome: 'SUCCEEDED',
          }),
        ]),
      });
      expect(await call('GET', '/api/events/evt_nope', tokens.viewer)).toEqual({
        status: 404,
        body: { error: { code: 'NOT_FOUND', message: expect.any(String) } },
      });
    });

    it('replay re-runs the event: RECEIVED → PROCESSED again, replayCount +1, a new job attempt', async () => {
      const id = seeded[2].id;
      const before = await eventRow(id);
      const attemptsBefore = await attemptRows(id);
      expect(before.status).toBe('PROCESSED');

      const res = await call('POST', `/api/events/${id}/replay`, tokens.admin);
      expect(res).toEqual({
        status: 202,
        body: {
          eventId: id,
          jobId: expect.stringContaining(id),
          status: 'RECEIVED',
          resolvedDeadLetters: 0,
        },
      });
      const jobId = res.body.jobId as string;
      expect(jobId).not.toBe(id);

      const after = await waitFor(
        async () => {
          const row = await eventRow(id);
          const attempts = await attemptRows(id);
          return row.status === 'PROCESSED' && attempts.length > attemptsBefore.length
            ? row
            : undefined;
        },
        { what: 'the replayed event to be processed again' },
      );
      expect(after.replay_count).toBe(before.replay_count + 1);
      expect(after.attempts).toBe(before.attempts + 1);
      expect(after.processed_at.getTime()).toBeGreaterThan(before.processed_at.getTime());
      expect(after.received_at).toEqual(before.received_at);
      expect(await attemptRows(id)).toEqual([
        ...attemptsBefore,
        { job_id: jobId, outcome: 'SUCCEEDED' },
      ]);

      // Another replay is another run with its own job id.
      const second = await admin('POST', `/api/events/${id}/replay`);
      expect(second.status).toBe(202);
      expect(second.body.jobId).not.toBe(jobId);
      await waitFor(async () => (await attemptRows(id)).length === attemptsBefore.length + 2);
      expect((await eventRow(id)).replay_count).toBe(before.replay_count + 2);

      expect((await admin('POST', '/api/events/evt_nope/replay')).status).toBe(404);
    });
  });

  describe('dead letters', () => {
    it('lists open dead letters with their event; replay and delete move them out of OPEN once', async () => {
      const res = await call('GET', '/api/dead-letters', tokens.viewer);
      expect(res.status).toBe(200);
      const items = res.body.items as {
        id: string;
        eventId: string;
        status: string;
        reason: string;
        event: { provider: string };
      }[];
      expect(items.length).toBeGreaterThan(0);
      for (const dl of items) {
        expect(dl).toMatchObject({ status: 'OPEN', reason: 'PERMANENT' });
        expect(dl.event.provider).toBe('milestones');
      }
      const [toReplay, toDiscard] = items;

      const replayed = await admin('POST', `/api/dead-letters/${toReplay.id}/replay`);
      expect(replayed).toMatchObject({
        status: 202,
        body: { deadLetterId: toReplay.id, eventId: toReplay.eventId, status: 'REPLAYED' },
      });
      expect((await admin('POST', `/api/dead-letters/${toReplay.id}/replay`)).body).toEqual({
        error: { code: 'DEAD_LETTER_NOT_OPEN', message: expect.any(String) },
      });
      // The event ran again (and, its payload still invalid, was parked again under a new job id).
      await waitFor(async () =>
        (await attemptRows(toReplay.eventId)).some((a) => a.job_id === replayed.body.jobId),
      );

      expect((await admin('DELETE', `/api/dead-letters/${toDiscard.id}`)).status).toBe(204);
      expect((await admin('DELETE', `/api/dead-letters/${toDiscard.id}`)).status).toBe(409);
      expect((await admin('DELETE', '/api/dead-letters/dl_nope')).status).toBe(404);
      const discarded = await call('GET', '/api/dead-letters?status=DISCARDED', tokens.viewer);
      expect(discarded.body.items.map((d: { id: string }) => d.id)).toContain(toDiscard.id);
      expect((await call('GET', '/api/dead-letters?status=GONE', tokens.viewer)).status).toBe(400);
    });
  });

  describe('bulk replay of dead letters by filter', () => {
    it('replays the open dead letters matching the filter, each once; the others stay open', async () => {
      const open = await openDeadLetters();
      expect(open.length).toBeGreaterThan(0);
      // A filter that matches nothing replays nothing.
      const none = await admin('POST', '/api/dead-letters/replay', { jobName: 'ReportDeliver' });
      expect(none).toMatchObject({ status: 202, body: { replayed: [], skipped: [] } });
      expect((await openDeadLetters()).map((d) => d.id)).toEqual(open.map((d) => d.id));
      expect((await admin('POST', '/api/dead-letters/replay', { jobName: 'Nope' })).status).toBe(
        400,
      );
      // Viewers may not.
      const refused = await call('POST', '/api/dead-letters/replay', tokens.viewer, {});
      expect(refused.status).toBe(403);

      const first = open[0];
      const res = await admin('POST', '/api/dead-letters/replay', {
        jobName: 'WebhookEventProcess',
        limit: 1,
      });
      expect(res).toMatchObject({ status: 202, body: { replayed: [first.id], skipped: [] } });
      const { rows } = await db.query(`SELECT status FROM dead_letter WHERE id = $1`, [first.id]);
      expect(rows[0].status).toBe('REPLAYED');
      expect((await openDeadLetters()).map((d) => d.id)).not.toContain(first.id);
    });
  });

  describe('replaying a dead event', () => {
    it('through /api/events/:id/replay also resolves its open dead letter, pointing at the replay', async () => {
      const res = await send(
        hub.url,
        standardDelivery(
          '/webhooks/milestones',
          { type: 'milestone.accepted', data: { dealId: 'cl_deal_D' } }, // no itemKey
          { secret: TEST_SECRETS.MILESTONE_WEBHOOK_SECRET, id: `msg_admin_dead_${Date.now()}` },
        ),
      );
      const eventId = (res.body as { eventIds: string[] }).eventIds[0];
      const parked = (await waitFor(async () =>
        (await openDeadLetters()).find((d) => d.event_id === eventId),
      ))!;
      const replay = await admin('POST', `/api/events/${eventId}/replay`);
      expect(replay).toMatchObject({ status: 202, body: { eventId, resolvedDeadLetters: 1 } });
      const { rows } = await db.query(
        `SELECT status, replay_job_id, resolved_by FROM dead_letter WHERE id = $1`,
        [parked.id],
      );
      expect(rows[0]).toEqual({
        status: 'REPLAYED',
        replay_job_id: replay.body.jobId,
        resolved_by: 'ADMIN_TOKEN',
      });
      // Still invalid, the replay is parked again: a new dead letter for the replay's job.
      const again = (await waitFor(async () =>
        (await openDeadLetters()).find((d) => d.event_id === eventId),
      ))!;
      expect(again.id).not.toBe(parked.id);
      expect(again.job_id).toBe(replay.body.jobId);
    });
  });

  describe('audit log', () => {
    it('records token creation/revocation and replays with the acting token', async () => {
      const { rows } = await db.query(
        `SELECT actor, role, action, target, details FROM audit_log ORDER BY id`,
      );
      const creates = rows.filter((r) => r.action === 'token.create');
      expect(creates).toContainEqual({
        actor: 'ADMIN_TOKEN',
        role: 'admin',
        action: 'token.create',
        target: expect.stringMatching(/^tok_/),
        details: { name: 'dashboard', role: 'viewer' },
      });
      expect(JSON.stringify(rows)).not.toMatch(/clk_/);
      expect(rows.filter((r) => r.action === 'token.revoke').length).toBeGreaterThan(0);

      const replays = rows.filter((r) => r.action === 'event.replay');
      expect(replays).toContainEqual({
        actor: 'ops-admin',
        role: 'admin',
        action: 'event.replay',
        target: seeded[2].id,
        details: { jobId: expect.stringContaining(seeded[2].id), resolvedDeadLetters: 0 },
      });
      expect(rows.map((r) => r.action)).toEqual(
        expect.arrayContaining(['dead_letter.replay', 'dead_letter.discard']),
      );
      // Refused calls (401/403 above) left no audit rows: every row names an admin.
      expect(new Set(rows.map((r) => r.role))).toEqual(new Set(['admin']));
    });

    it('GET /api/audit lists it newest first, filters by action and pages; admins only', async () => {
      const all = await admin('GET', '/api/audit?limit=200');
      expect(all.status).toBe(200);
      const items = all.body.items as { id: string; action: string; actor: string; role: string }[];
      const ids = items.map((i) => Number(i.id));
      expect(ids).toEqual([...ids].sort((a, b) => b - a));
      const replays = await admin('GET', '/api/audit?action=dead_letter.replay');
      expect(
        (replays.body.items as { action: string }[]).every(
          (i) => i.action === 'dead_letter.replay',
        ),
      ).toBe(true);
      expect(replays.body.items.length).toBeGreaterThan(0);
      const page1 = await admin('GET', '/api/audit?limit=2');
      const page2 = await admin('GET', `/api/audit?limit=2&cursor=${page1.body.nextCursor}`);
      expect(page2.body.items[0].id).toBe(items[2].id);
      expect((await call('GET', '/api/audit', tokens.finance)).status).toBe(403);
    });
  });
});
