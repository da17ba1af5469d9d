import { Pool } from 'pg';

import { Delivery, send, stripeDelivery } from '../../tools/simulator/signed-delivery';
import { RunningHub, startHub, testDb, truncateAll, waitFor } from '../support/hub';
import {
  acceptance,
  count,
  flushTestRedis,
  milestoneDelivery,
  stopAll,
  seedTestDeals,
} from '../support/failures';
import { TEST_SECRETS } from '../support/test-env';

/** Sum of a Prometheus counter's samples whose labels include all of `labels`. */
async function counter(
  hub: RunningHub,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => m[2].includes(`${k}="${v}"`))) {
      total += Number(m[3]);
    }
  }
  return total;
}

/** Runs `tasks` with at most `limit` in flight. */
async function pool<T>(limit: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]();
      }
    }),
  );
  return results;
}

/**
 * CONTRACT §1: any number of api and worker processes against the same Postgres and Redis, with
 * no change in results. Duplicates race their originals through the other api process.
 */
describe('failures: several api and worker processes, same results', () => {
  let db: Pool;
  const hubs: RunningHub[] = [];

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await seedTestDeals(db);
    await flushTestRedis();
    const started = await Promise.all([
      startHub({ ROLE: 'api' }),
      startHub({ ROLE: 'api' }),
      startHub({ ROLE: 'worker', WORKER_CONCURRENCY: '8' }),
      startHub({ ROLE: 'worker', WORKER_CONCURRENCY: '8' }),
    ]);
    hubs.push(...started);
  });
  afterAll(async () => {
    await stopAll(...hubs);
    await db?.end();
  });

  it('200 distinct deliveries + 50 duplicates over 2 apis and 2 workers → 200 events, each processed once', async () => {
    const [apiA, apiB, workerA, workerB] = hubs;
    // 160 milestone acceptances over 20 deals (so the per-deal lock is contended) + 40 Stripe events.
    const distinct: Delivery[] = [
      ...Array.from({ length: 160 }, (_, i) =>
        milestoneDelivery(`msg_scale_${i}`, acceptance(`cl_deal_scale_${i % 20}`)),
      ),
      ...Array.from({ length: 40 }, (_, i) =>
        stripeDelivery(
          {
            id: `evt_scale_${i}`,
            type: 'invoice.paid',
            created: 1795400000 + i,
            data: {
              object: {
                id: `in_scale_${i}`,
                object: 'invoice',
                metadata: { closeloop_deal_id: `cl_deal_scale_${i % 20}` },
              },
            },
          },
          TEST_SECRETS.STRIPE_WEBHOOK_SECRET,
        ),
      ),
    ];
    // Each of the first 50 (25 milestones, 25 Stripe) also goes to the other api, right after it.
    const dupOf = [
      ...Array.from({ length: 25 }, (_, i) => i * 6),
      ...Array.from({ length: 25 }, (_, i) => 160 + i),
    ];
    const tasks: (() => Promise<{ status: number; body: unknown }>)[] = [];
    distinct.forEach((d, i) => {
      tasks.push(() => send((i % 2 ? apiB : apiA).url, d));
      if (dupOf.includes(i)) tasks.push(() => send((i % 2 ? apiA : apiB).url, d));
    });
    expect(tasks).toHaveLength(250);

    const answers = await pool(25, tasks);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const bodies = answers.map((a) => a.body as { received: number; duplicates: number });
    expect(bodies.reduce((n, b) => n + b.received, 0)).toBe(200);
    expect(bodies.reduce((n, b) => n + b.duplicates, 0)).toBe(50);

    expect(await count(db, 'SELECT count(*) FROM webhook_event')).toBe(200);
    await waitFor(
      async () =>
        (await count(
          db,
          `SELECT count(*) FROM webhook_event WHERE status IN ('PROCESSED', 'IGNORED')`,
        )) === 200,
      { timeoutMs: 30_000, what: 'all 200 events to be processed' },
    );
    await waitFor(
      async () =>
        (await count(
          db,
          `SELECT count(*) FROM job_attempt WHERE outcome IN ('SUCCEEDED', 'IGNORED')`,
        )) === 200,
      { what: '200 SUCCEEDED attempts' },
    );
    await new Promise((r) => setTimeout(r, 500));

    expect(await count(db, 'SELECT count(*) FROM webhook_event')).toBe(200);
    expect(
      await count(
        db,
        `SELECT count(*) FROM webhook_event WHERE status NOT IN ('PROCESSED', 'IGNORED')`,
      ),
    ).toBe(0);
    expect(await count(db, `SELECT count(*) FROM webhook_event WHERE attempts <> 1`)).toBe(0);
    expect(
      await count(
        db,
        `SELECT count(*) FROM (SELECT event_id FROM job_attempt WHERE outcome = 'SUCCEEDED'
           GROUP BY event_id HAVING count(*) = 1) one`,
      ),
    ).toBe(200);
    expect(
      await count(db, `SELECT count(*) FROM job_attempt WHERE outcome IN ('SUCCEEDED', 'IGNORED')`),
    ).toBe(200);
    expect(await count(db, 'SELECT count(*) FROM outbox')).toBe(0);
    expect(await count(db, 'SELECT count(*) FROM dead_letter')).toBe(0);
    expect(await count(db, `SELECT count(DISTINCT provider_event_id) FROM webhook_event`)).toBe(
      200,
    );

    // Both api processes stored and both workers processed (per-process counters).
    const accepted = await Promise.all(
      [apiA, apiB].map((h) =>
        counter(h, 'closeloop_webhooks_received_total', { outcome: 'accepted' }),
      ),
    );
    expect(accepted[0] + accepted[1]).toBe(200);
    expect(Math.min(...accepted)).toBeGreaterThan(0);
    const processed = await Promise.all(
      [workerA, workerB].map(
        async (h) =>
          (await counter(h, 'closeloop_events_processed_total', { outcome: 'processed' })) +
          (await counter(h, 'closeloop_events_processed_total', { outcome: 'ignored' })),
      ),
    );
    expect(processed[0] + processed[1]).toBe(200);
    expect(Math.min(...processed)).toBeGreaterThan(0);
  });
});
