import { Pool } from 'pg';

import { send, stripeDelivery } from '../../tools/simulator/signed-delivery';
import { RunningHub, startHub, testDb, truncateAll, waitFor } from '../support/hub';
import {
  OwnRedis,
  acceptance,
  attemptsOf,
  count,
  milestoneDelivery,
  stopAll,
  seedTestDeals,
} from '../support/failures';
import { TEST_SECRETS } from '../support/test-env';

/**
 * The door never needs Redis: 2xx means committed to Postgres (inbox row and outbox row in one
 * statement). With Redis gone the deliveries wait in the outbox; when Redis is back the relay
 * catches up and every event is processed exactly once.
 */
describe('failures: Redis down during receipt', () => {
  let db: Pool;
  let redis: OwnRedis | undefined;
  let hub: RunningHub | undefined;
  const late: RunningHub[] = [];

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await seedTestDeals(db);
    redis = await OwnRedis.start();
    hub = await startHub({ REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await stopAll(hub, ...late);
    await redis?.kill();
    await db?.end();
  });

  it('answers 2xx with Redis down, reports not ready, and processes once Redis is back', async () => {
    // The hub works with this Redis first (so the test proves recovery, not a cold start).
    const warm = await send(
      hub!.url,
      milestoneDelivery('msg_redis_warm', acceptance('cl_deal_warm')),
    );
    expect(warm.status).toBe(200);
    await waitFor(
      async () =>
        (await count(
          db,
          `SELECT count(*) FROM webhook_event WHERE status IN ('PROCESSED', 'IGNORED')`,
        )) === 1,
      { what: 'the warm-up event to be processed' },
    );

    await redis!.kill();
    // Processes that boot during the outage start too (the api never needs Redis).
    late.push(
      ...(await Promise.all([
        startHub({ REDIS_URL: redis!.url, ROLE: 'api' }),
        startHub({ REDIS_URL: redis!.url, ROLE: 'worker' }),
      ])),
    );
    const [lateApi, lateWorker] = late;

    const deliveries = [
      ...Array.from({ length: 8 }, (_, i) =>
        milestoneDelivery(`msg_redis_down_${i}`, acceptance(`cl_deal_rd_${i % 3}`)),
      ),
      stripeDelivery(
        {
          id: 'evt_redis_down_1',
          type: 'invoice.paid',
          created: 1795400000,
          data: {
            object: {
              id: 'in_rd_1',
              object: 'invoice',
              metadata: { closeloop_deal_id: 'cl_deal_rd_0' },
            },
          },
        },
        TEST_SECRETS.STRIPE_WEBHOOK_SECRET,
      ),
    ];
    const started = Date.now();
    const answers = await Promise.all(
      deliveries.map((d, i) => send((i % 2 ? lateApi : hub!).url, d)),
    );
    const elapsed = Date.now() - started;
    expect(answers.map((a) => a.status)).toEqual(deliveries.map(() => 200));
    // The door does not wait for Redis (no reconnect timeout in the request path).
    expect(elapsed).toBeLessThan(3_000);
    const ids = answers.flatMap((a) => (a.body as { eventIds: string[] }).eventIds);
    expect(ids).toHaveLength(deliveries.length);

    // Committed: inbox rows RECEIVED, each with its outbox row waiting for the relay.
    const { rows: stored } = await db.query<{ id: string; status: string }>(
      `SELECT id, status FROM webhook_event WHERE id = ANY($1)`,
      [ids],
    );
    expect(stored).toHaveLength(ids.length);
    expect(stored.every((r) => r.status === 'RECEIVED')).toBe(true);
    const { rows: waiting } = await db.query<{ job_id: string }>(`SELECT job_id FROM outbox`);
    expect(waiting.map((r) => r.job_id).sort()).toEqual([...ids].sort());

    // A duplicate is still answered 2xx and adds nothing, Redis or not.
    const dup = await send(hub!.url, deliveries[0]);
    expect(dup.status).toBe(200);
    expect(dup.body).toMatchObject({ received: 0, duplicates: 1 });

    // Readiness says Redis is down (503), while Postgres is fine and the backlog is visible (to an
    // admin token: anyone else gets the statuses only).
    const ready = await fetch(`${hub!.url}/health/ready`, {
      headers: { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` },
    });
    expect(ready.status).toBe(503);
    const health = (await ready.json()) as {
      error?: Record<string, { status: string }>;
      details: Record<string, { status: string; backlog?: number }>;
    };
    expect(health.details.redis.status).toBe('down');
    expect(health.details.postgres.status).toBe('up');
    expect(health.details.outbox).toMatchObject({ status: 'up', backlog: ids.length });
    expect((await fetch(`${hub!.url}/health/live`)).status).toBe(200);

    // Stay down a little longer than a relay attempt's backoff grows, then come back (empty).
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await db.query(`SELECT count(*)::int AS n FROM outbox`)).rows[0].n).toBe(ids.length);
    await redis!.restart();

    await waitFor(
      async () =>
        (await count(
          db,
          `SELECT count(*) FROM webhook_event WHERE id = ANY($1) AND status IN ('PROCESSED', 'IGNORED')`,
          [ids],
        )) === ids.length,
      { timeoutMs: 30_000, what: 'every event stored while Redis was down to be processed' },
    );
    await waitFor(
      async () =>
        (await count(
          db,
          `SELECT count(*) FROM job_attempt WHERE event_id = ANY($1) AND outcome = 'SUCCEEDED'`,
          [ids],
        )) === ids.length,
      { what: 'the SUCCEEDED attempts' },
    );
    // Exactly once: one successful run each, each event counted one attempt, outbox drained.
    await new Promise((r) => setTimeout(r, 500));
    for (const id of ids) {
      const attempts = await attemptsOf(db, id);
      expect(attempts.filter((a) => a.outcome === 'SUCCEEDED')).toHaveLength(1);
      expect(attempts.filter((a) => a.outcome !== 'SUCCEEDED' && a.outcome !== 'SKIPPED')).toEqual(
        [],
      );
    }
    expect(
      await count(db, `SELECT count(*) FROM webhook_event WHERE id = ANY($1) AND attempts <> 1`, [
        ids,
      ]),
    ).toBe(0);
    expect(await count(db, 'SELECT count(*) FROM outbox')).toBe(0);
    expect(await count(db, 'SELECT count(*) FROM dead_letter')).toBe(0);
    for (const h of [hub!, lateApi, lateWorker]) {
      await waitFor(async () => (await fetch(`${h.url}/health/ready`)).status === 200, {
        what: 'readiness to recover',
      });
    }
  });
});
