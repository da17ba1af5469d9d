import { createHash, randomBytes } from 'node:crypto';

import { Test, TestingModule } from '@nestjs/testing';
import { LoggerModule } from 'nestjs-pino';
import { Pool, PoolClient } from 'pg';

import { hashToken } from '../../src/admin/tokens.service';
import { loadConfig } from '../../src/config/app-config';
import { ConfigModule } from '../../src/config/config.module';
import { MetricsService } from '../../src/observability/metrics.service';
import { ObservabilityModule } from '../../src/observability/observability.module';
import { PrismaModule } from '../../src/prisma/prisma.module';
import { PURGE_LOCK_KEY, RetentionService } from '../../src/retention/retention.service';
import { send, standardDelivery } from '../../tools/simulator/signed-delivery';
import { RunningHub, flushTestRedis, startHub, testDb, truncateAll } from '../support/hub';
import { TEST_DATABASE_URL, TEST_REDIS_URL, TEST_SECRETS } from '../support/test-env';

/**
 * Retention (RETENTION_DAYS, CONTRACT §2; docs/decisions/0010-retention.md) against the real
 * Postgres: the purge runs in-process (RetentionService, as the worker runs it), the doors it must
 * keep working — the webhook door, the admin API, the dashboard — on a built api-only hub.
 */
const DAYS = 400;
const ADMIN = { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` };

/** A RetentionService of its own (own pool, own metrics registry): one per "worker". */
async function retentionModule(): Promise<TestingModule> {
  const config = loadConfig({
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    LOG_LEVEL: 'silent',
    RETENTION_DAYS: String(DAYS),
  });
  return Test.createTestingModule({
    imports: [
      ConfigModule.forRoot(config),
      LoggerModule.forRoot({ pinoHttp: { level: 'silent' } }),
      PrismaModule,
      ObservabilityModule,
    ],
    providers: [RetentionService],
  }).compile();
}

interface EventRow {
  id: string;
  provider: string;
  provider_event_id: string;
  type: string;
  status: string;
  payload: unknown;
  headers: unknown;
  normalized: unknown;
  last_error: string | null;
  received_at: Date;
  deal_id: string | null;
  purged_at: Date | null;
}

describe('retention', () => {
  let db: Pool;
  let hub: RunningHub;
  let moduleRef: TestingModule;
  let other: TestingModule;
  let retention: RetentionService;

  /**
   * `n` events named `<prefix>-<i>` received `ageDays` ago (minus i seconds), with the personal data
   * a real one carries in payload, headers, normalized event and last error.
   */
  async function seedEvents(prefix: string, n: number, ageDays: number, status: string) {
    await db.query(
      `INSERT INTO webhook_event (id, provider, provider_event_id, type, status, payload, headers,
                                  correlation_id, received_at, processed_at, deal_id, normalized,
                                  last_error)
       SELECT $1 || '-' || g, 'milestones', 'msg_' || $1 || '-' || g, 'milestone.accepted',
              $2::"EventStatus",
              jsonb_build_object('data', jsonb_build_object('acceptedBy', 'client' || g || '@example.com')),
              '{"user-agent":"Svix","x-forwarded-for":"203.0.113.7"}',
              'corr-' || g, now() - make_interval(days => $3::int, secs => g), now(), 'cl_deal_ret',
              jsonb_build_object('data', jsonb_build_object('acceptedBy', 'client' || g || '@example.com')),
              'no item for client' || g || '@example.com'
         FROM generate_series(1, $4::int) g`,
      [prefix, status, ageDays, n],
    );
  }

  const events = async (prefix: string) =>
    (
      await db.query<EventRow>(
        `SELECT id, provider, provider_event_id, type, status::text AS status, payload, headers,
                normalized, last_error, received_at, deal_id, purged_at
           FROM webhook_event WHERE id LIKE $1 || '-%' ORDER BY id`,
        [prefix],
      )
    ).rows;

  const identity = ({ payload, headers, normalized, last_error, purged_at, ...rest }: EventRow) => {
    void [payload, headers, normalized, last_error, purged_at];
    return rest;
  };

  /** A dashboard session row for the bootstrap admin token; returns its cookie value. */
  async function session(expiresAt: Date): Promise<string> {
    const cookie = randomBytes(32).toString('base64url');
    await db.query(
      `INSERT INTO dashboard_session (id, token_hash, role, actor_name, csrf_token, expires_at, created_at)
       VALUES ($1, $2, 'admin', 'ADMIN_TOKEN', 'csrf', $3, $3::timestamptz - interval '8 hours')`,
      [
        createHash('sha256').update(cookie).digest('hex'),
        hashToken(TEST_SECRETS.ADMIN_TOKEN),
        expiresAt,
      ],
    );
    return cookie;
  }

  const api = (method: string, path: string) =>
    fetch(`${hub.url}${path}`, { method, headers: ADMIN }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as Record<string, unknown> & {
        error?: { code: string; message: string };
      },
    }));

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await db.query('TRUNCATE dashboard_session');
    await flushTestRedis();
    moduleRef = await retentionModule();
    other = await retentionModule();
    retention = moduleRef.get(RetentionService);
    hub = await startHub({ ROLE: 'api' });
  });

  beforeEach(async () => {
    await db.query(
      'TRUNCATE webhook_event, outbox, dead_letter, job_attempt, dashboard_session, audit_log',
    );
  });

  afterAll(async () => {
    await hub?.stop();
    await moduleRef?.close();
    await other?.close();
    await db?.end();
  });

  it('empties old finished events in batches, keeps their identity, and leaves recent and pending ones alone', async () => {
    await seedEvents('old-processed', 13, DAYS + 1, 'PROCESSED');
    await seedEvents('old-ignored', 6, DAYS + 30, 'IGNORED');
    await seedEvents('old-dead', 6, DAYS + 2, 'DEAD');
    await seedEvents('old-received', 3, DAYS + 5, 'RECEIVED');
    await seedEvents('old-failed', 3, DAYS + 5, 'FAILED');
    await seedEvents('recent', 5, DAYS - 1, 'PROCESSED');
    const before = await events('');
    const kept = before.filter((e) => !/^old-(processed|ignored|dead)-/.test(e.id));

    const result = await retention.runOnce({ batchSize: 4 });

    expect(result.ran).toBe(true);
    expect(result.purged.webhook_event).toBe(25);
    expect(result.batches.webhook_event).toBe(7); // 6 full batches of 4, then 1 row
    const after = await events('');
    for (const e of after.filter((r) => /^old-(processed|ignored|dead)-/.test(r.id))) {
      expect(e).toMatchObject({ payload: null, headers: null, normalized: null, last_error: null });
      expect(e.purged_at).toBeInstanceOf(Date);
      expect(identity(e)).toEqual(identity(before.find((b) => b.id === e.id)!));
    }
    expect(after.filter((e) => kept.some((k) => k.id === e.id))).toEqual(kept);
    for (const e of after) {
      const purged = /^old-(processed|ignored|dead)-/.test(e.id);
      expect({ id: e.id, personal: JSON.stringify(e).includes('@example.com') }).toEqual({
        id: e.id,
        personal: !purged,
      });
    }

    const metrics = await moduleRef.get(MetricsService).registry.getMetricsAsJSON();
    const purged = metrics.find((m) => m.name === 'closeloop_retention_purged_rows_total');
    expect(purged?.values.find((v) => v.labels.table === 'webhook_event')?.value).toBe(25);
  });

  it('deletes job attempts finished more than RETENTION_DAYS ago, in batches per job name', async () => {
    await seedEvents('old-processed', 2, DAYS + 1, 'PROCESSED');
    await db.query(
      `INSERT INTO job_attempt (event_id, queue, job_name, job_id, attempt, outcome, error,
                                duration_ms, finished_at)
       SELECT CASE WHEN g <= 2 THEN 'old-processed-' || g END, q, name, name || '-' || g, 1,
              'SUCCEEDED', NULL, 5, now() - make_interval(days => age)
         FROM generate_series(1, 7) g,
              (VALUES ('webhooks', 'WebhookEventBatch'), ('billing', 'BillingInvoiceIssue')) AS j(q, name),
              (VALUES (${DAYS + 1}), (${DAYS - 1})) AS a(age)`,
    );
    const result = await retention.runOnce({ batchSize: 3 });
    expect(result.purged.job_attempt).toBe(14); // 7 old rows of each job name
    expect(result.batches.job_attempt).toBe(6); // 3 + 3 + 1 per name
    const { rows } = await db.query<{ job_name: string; n: number; oldest: number }>(
      `SELECT job_name, count(*)::int AS n,
              max(extract(day FROM now() - finished_at))::int AS oldest
         FROM job_attempt GROUP BY job_name ORDER BY job_name`,
    );
    expect(rows).toEqual([
      { job_name: 'BillingInvoiceIssue', n: 7, oldest: DAYS - 1 },
      { job_name: 'WebhookEventBatch', n: 7, oldest: DAYS - 1 },
    ]);
    // The events those attempts named are still there (the identity rows stay).
    expect((await events('old-processed')).map((e) => e.purged_at !== null)).toEqual([true, true]);
  });

  it('deletes expired dashboard sessions and keeps live ones, which still open the dashboard', async () => {
    const expired = await session(new Date(Date.now() - 60_000));
    await session(new Date(Date.now() - (DAYS + 1) * 86_400_000));
    const live = await session(new Date(Date.now() + 3_600_000));

    const result = await retention.runOnce({ batchSize: 1 });
    expect(result.purged.dashboard_session).toBe(2);
    expect(result.batches.dashboard_session).toBe(3);
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM dashboard_session',
    );
    expect(rows[0].n).toBe(1);
    const page = (cookie: string) =>
      fetch(`${hub.url}/dashboard`, {
        redirect: 'manual',
        headers: { cookie: `cl_session=${cookie}` },
      });
    expect((await page(live)).status).toBe(200);
    expect((await page(expired)).status).toBe(302);
  });

  it('is safe to run twice: the second run finds nothing and changes nothing', async () => {
    await seedEvents('old-processed', 5, DAYS + 1, 'PROCESSED');
    expect((await retention.runOnce({ batchSize: 2 })).purged.webhook_event).toBe(5);
    const once = await events('');
    const again = await retention.runOnce({ batchSize: 2 });
    expect(again.purged).toEqual({ webhook_event: 0, job_attempt: 0, dashboard_session: 0 });
    expect(await events('')).toEqual(once);
  });

  it('runs one at a time: a run beside a runner holding the lock does nothing, two at once purge each row once', async () => {
    await seedEvents('old-processed', 40, DAYS + 1, 'PROCESSED');
    const holder = await db.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [PURGE_LOCK_KEY]);
      const skipped = await retention.runOnce({ batchSize: 5 });
      expect(skipped).toMatchObject({ ran: false, purged: { webhook_event: 0 } });
      expect((await events('')).every((e) => e.purged_at === null)).toBe(true);
    } finally {
      await holder.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [PURGE_LOCK_KEY]);
      holder.release();
    }
    const runs = await Promise.all([
      retention.runOnce({ batchSize: 3 }),
      other.get(RetentionService).runOnce({ batchSize: 3 }),
    ]);
    expect(runs.some((r) => r.ran)).toBe(true);
    expect(runs[0].purged.webhook_event + runs[1].purged.webhook_event).toBe(40);
    expect((await events('')).every((e) => e.purged_at !== null)).toBe(true);
  });

  it('never waits for a row another transaction holds: it is left for the next run', async () => {
    await seedEvents('old-processed', 6, DAYS + 1, 'PROCESSED');
    let tx: PoolClient | undefined = await db.connect();
    try {
      await tx.query('BEGIN');
      await tx.query(`SELECT 1 FROM webhook_event WHERE id = 'old-processed-3' FOR UPDATE`);
      const first = await retention.runOnce({ batchSize: 2 });
      expect(first.purged.webhook_event).toBe(5);
      await tx.query('COMMIT');
      tx.release();
      tx = undefined;
      const second = await retention.runOnce({ batchSize: 2 });
      expect(second.purged.webhook_event).toBe(1);
      expect((await events('')).every((e) => e.purged_at !== null)).toBe(true);
    } finally {
      await tx?.query('ROLLBACK');
      tx?.release();
    }
  });

  describe('a purged event', () => {
    const id = `msg_ret_${Date.now().toString(36)}`;
    const delivery = () =>
      standardDelivery(
        '/webhooks/milestones',
        {
          type: 'milestone.accepted',
          data: { dealId: 'cl_deal_ret', itemKey: 'design', acceptedBy: 'client@example.com' },
        },
        { secret: TEST_SECRETS.MILESTONE_WEBHOOK_SECRET, id },
      );
    let eventId: string;
    const state = async () =>
      (
        await db.query(
          `SELECT (SELECT json_agg(e ORDER BY e.id) FROM webhook_event e) AS events,
                  (SELECT json_agg(o ORDER BY o.id) FROM outbox o) AS outbox,
                  (SELECT json_agg(d ORDER BY d.id) FROM dead_letter d) AS dead_letters,
                  (SELECT count(*)::int FROM audit_log) AS audits`,
        )
      ).rows[0];

    beforeEach(async () => {
      // Delivered through the door, dead-lettered long ago, then purged.
      const res = await send(hub.url, delivery());
      expect(res.status).toBe(200);
      eventId = (res.body as { eventIds: string[] }).eventIds[0];
      await db.query(
        `UPDATE webhook_event SET status = 'DEAD', received_at = now() - interval '${DAYS + 3} days',
                last_error = 'no item design for client@example.com' WHERE id = $1`,
        [eventId],
      );
      await db.query(
        `INSERT INTO dead_letter (id, event_id, queue, job_name, job_id, data, reason, error, attempts)
         VALUES ('dl_ret', $1, 'webhooks', 'WebhookEventProcess', $1, $2, 'PERMANENT', 'no item', 1)`,
        [eventId, { eventId, correlationId: 'c' }],
      );
      await db.query('TRUNCATE outbox');
      expect((await retention.runOnce()).purged.webhook_event).toBe(1);
    });

    it('is still its identity: a late duplicate delivery answers 2xx and changes nothing', async () => {
      const before = await state();
      const again = await send(hub.url, delivery());
      expect(again.status).toBe(200);
      expect(again.body).toEqual({ received: 0, duplicates: 1, eventIds: [] });
      expect(await state()).toEqual(before);
    });

    it('cannot be replayed: 410 EVENT_PURGED for the event, its dead letter and the preview; nothing changes', async () => {
      const before = await state();
      for (const path of [
        `/api/events/${eventId}/replay`,
        '/api/dead-letters/dl_ret/replay',
        `/api/events/${eventId}/replay-preview`,
        '/api/dead-letters/dl_ret/replay-preview',
      ]) {
        const res = await api(path.endsWith('preview') ? 'GET' : 'POST', path);
        expect({ path, status: res.status, code: res.body.error?.code }).toEqual({
          path,
          status: 410,
          code: 'EVENT_PURGED',
        });
        expect(res.body.error?.message).toMatch(
          new RegExp(
            `^event ${eventId} cannot be replayed: its payload, headers, .* purged on \\d{4}-\\d\\d-\\d\\d \\(${DAYS + 3} days after it was received, RETENTION_DAYS\\)$`,
          ),
        );
      }
      // The bulk replay skips it and goes on.
      const bulk = await fetch(`${hub.url}/api/dead-letters/replay`, {
        method: 'POST',
        headers: { ...ADMIN, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(bulk.status).toBe(202);
      expect(await bulk.json()).toEqual({ replayed: [], skipped: ['dl_ret'] });
      expect(await state()).toEqual(before);
    });

    it('says so in the admin API and on the dashboard, and shows no payload', async () => {
      const res = await api('GET', `/api/events/${eventId}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id: eventId,
        providerEventId: id,
        status: 'DEAD',
        payload: null,
        headers: null,
        normalized: null,
        lastError: null,
        purgedAt: expect.any(String),
        purgeNote: expect.stringMatching(/purged on .* \(403 days after it was received/),
      });
      const list = await api('GET', `/api/events?provider=milestones`);
      expect(list.body.items).toEqual([
        expect.objectContaining({ id: eventId, purgedAt: expect.any(String) }),
      ]);

      const cookie = await session(new Date(Date.now() + 3_600_000));
      const page = await fetch(`${hub.url}/dashboard/events/${eventId}`, {
        headers: { cookie: `cl_session=${cookie}; cl_lang=en` },
      });
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain('data-testid="payload-purged"');
      expect(html).toMatch(/purged on .* \(403 days after it was received, RETENTION_DAYS\)/);
      expect(html).not.toContain('data-testid="payload"');
      expect(html).not.toContain('data-testid="preview-replay"');
      expect(html).not.toContain('client@example.com');
    });
  });
});
