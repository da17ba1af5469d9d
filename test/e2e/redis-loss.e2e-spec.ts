import { Queue } from 'bullmq';
import { Pool } from 'pg';

import { QueueName } from '../../src/queue/queue-name.enum';
import { E2E, admin, milestone, quiesce, startE2EHub, startProviders } from '../support/e2e';
import { RunningHub, flushTestRedis, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_REDIS_URL } from '../support/test-env';

/**
 * Redis holds nothing that matters (CONTRACT §7, docs/decisions/0007): the hub's Redis is wiped
 * (FLUSHDB) three times in the middle of a billing burst — jobs waiting, running and delayed are
 * lost, and the events of a milestone burst with them. Within two minutes of Redis answering
 * again every item is billed, exactly once, by the recovery sweep and the business keys. The hub
 * runs with the default sweep settings.
 */

const DEALS = 40;
const PLAN = {
  currency: 'jpy',
  taxRatePercent: 10,
  billingCount: 'monthly_variable',
  items: [
    { key: 'deposit', label: '着手金', amount: 100000, trigger: 'contract.signed' },
    { key: 'balance', label: '残金', amount: 50000, trigger: 'milestone.accepted' },
  ],
};

describe('Redis loses everything mid-burst: every item billed exactly once (CONTRACT §7)', () => {
  let e2e: E2E;
  let hub: RunningHub;
  let db: Pool;
  let queues: Queue[];

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await flushTestRedis();
    queues = Object.values(QueueName).map(
      (name) => new Queue(name, { connection: { url: TEST_REDIS_URL } }),
    );
    e2e = await startProviders();
    hub = await startE2EHub(e2e, {
      LOG_LEVEL: 'error',
      STRIPE_RATE_LIMIT_PER_SEC: '1000',
      WORKER_CONCURRENCY: '8',
    });
  });

  afterAll(async () => {
    await hub?.stop();
    await e2e?.close();
    await Promise.all((queues ?? []).map((q) => q.close()));
    await db?.end();
  });

  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`${hub.url}/metrics`)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  };

  it('bills each of 80 items once within two minutes of three FLUSHDBs during the burst', async () => {
    // Stripe answers slowly, so that the flushes find invoice jobs waiting, running and retrying.
    e2e.sim.faults.add({
      provider: 'stripe',
      method: 'POST',
      path: '/v1/invoices',
      responses: Array.from({ length: 400 }, () => ({ delayMs: 150 })),
    });

    // Forty deals won at once: forty deposit invoices are owed.
    const deals = await Promise.all(
      Array.from({ length: DEALS }, async (_, i) => {
        const res = await fetch(`${hub.url}/api/deals`, {
          method: 'POST',
          headers: { ...admin, 'content-type': 'application/json' },
          body: JSON.stringify({
            name: `flush ${i}`,
            customer: { company: `Customer ${i % 5} K.K.`, email: `billing${i % 5}@example.jp` },
            currency: 'jpy',
            stage: 'WON',
            billingPlan: PLAN,
          }),
        });
        expect(res.status).toBe(201);
        return ((await res.json()) as { id: string }).id;
      }),
    );
    // … and forty balance acceptances arrive as webhooks while Redis is wiped.
    const accepted = Promise.all(
      deals.map(async (dealId, i) => {
        await new Promise((r) => setTimeout(r, i * 40));
        const r = await milestone(hub.url, 'milestone.accepted', {
          dealId,
          itemKey: 'balance',
          acceptedAt: '2026-11-23T10:00:00Z',
        });
        expect(r.status).toBe(200);
      }),
    );
    // Wiped at 0.3 s, 0.9 s and 1.6 s into the burst.
    for (const pause of [300, 600, 700]) {
      await new Promise((r) => setTimeout(r, pause));
      await flushTestRedis();
    }
    await accepted;
    const lastFlush = Date.now();

    // Every owed invoice is issued once, within two minutes of the last flush.
    const keys = deals.flatMap((d) => [`${d}|deposit`, `${d}|balance`]).sort();
    await waitFor(
      async () => {
        const { rows } = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM invoice WHERE state = 'POSTED' AND deal_id = ANY($1)`,
          [deals],
        );
        return rows[0].n === keys.length;
      },
      { timeoutMs: 120_000, intervalMs: 500, what: 'every item invoiced and sent' },
    );
    expect(Date.now() - lastFlush).toBeLessThan(120_000);
    await quiesce(e2e, db, queues);

    const inStripe = deals
      .flatMap((d) => e2e.sim.stripe.invoicesByMetadata('closeloop_deal_id', d))
      .map((i) => i.metadata.closeloop_billing_key)
      .sort();
    expect(inStripe).toEqual(keys); // one Stripe invoice per billing key, none twice
    const { rows: hub_ } = await db.query<{ billing_key: string }>(
      'SELECT billing_key FROM invoice WHERE deal_id = ANY($1) ORDER BY billing_key',
      [deals],
    );
    expect(hub_.map((r) => r.billing_key)).toEqual(keys);
    const { rows: open } = await db.query<{ events: number; letters: number }>(
      `SELECT (SELECT count(*) FROM webhook_event WHERE status <> 'PROCESSED'
                 AND provider = 'milestones')::int AS events,
              (SELECT count(*) FROM dead_letter)::int AS letters`,
    );
    expect(open[0]).toEqual({ events: 0, letters: 0 });
    // The sweep is what brought the lost work back.
    expect(await metric('closeloop_recovered_work_total')).toBeGreaterThan(0);
  }, 200_000);
});
