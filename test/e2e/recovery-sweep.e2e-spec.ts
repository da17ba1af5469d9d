import { Redis } from 'ioredis';
import { Pool } from 'pg';

import { REDIS_EPOCH_KEY } from '../../src/recovery/recovery-sweep.service';
import { E2E, admin, milestone, startE2EHub, startProviders } from '../support/e2e';
import { RunningHub, flushTestRedis, freePort, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_REDIS_URL } from '../support/test-env';

/**
 * Work handed to Redis and then lost there without Redis losing everything (a job removed by hand
 * in Bull Board, a lost write): the recovery sweep finds the committed work that has gone quiet
 * for RECOVERY_GRACE_MS — here an event still RECEIVED and an invoice still PENDING, whose jobs
 * had left the outbox — and hands it out again; each is then done once.
 */
describe('the recovery sweep hands out quiet work whose job is gone (CONTRACT §7)', () => {
  let e2e: E2E;
  let api: RunningHub;
  let worker: RunningHub | undefined;
  let db: Pool;

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await flushTestRedis();
    e2e = await startProviders();
    api = await startE2EHub(e2e, { ROLE: 'api', LOG_LEVEL: 'error' });
  });

  afterAll(async () => {
    await worker?.stop();
    await api?.stop();
    await e2e?.close();
    await db?.end();
  });

  it('an event and an invoice whose jobs vanished are each done once after the grace', async () => {
    const res = await fetch(`${api.url}/api/deals`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'lost jobs',
        customer: { company: 'Example K.K.', email: 'tanaka@example.jp' },
        currency: 'jpy',
        stage: 'WON',
        billingPlan: {
          currency: 'jpy',
          taxRatePercent: 10,
          billingCount: 'monthly_variable',
          items: [
            { key: 'deposit', label: '着手金', amount: 100000, trigger: 'contract.signed' },
            { key: 'balance', label: '残金', amount: 50000, trigger: 'milestone.accepted' },
          ],
        },
      }),
    });
    expect(res.status).toBe(201);
    const dealId = ((await res.json()) as { id: string }).id;
    const accepted = await milestone(api.url, 'milestone.accepted', {
      dealId,
      itemKey: 'balance',
      acceptedAt: '2026-11-23T10:00:00Z',
    });
    expect(accepted.status).toBe(200);
    const eventId = (accepted.body as { eventIds: string[] }).eventIds[0];

    // Their jobs leave the outbox (as the relay does once Redis has them) and Redis never keeps
    // them; Redis itself has lost nothing else (its epoch key is there).
    const { rowCount } = await db.query('DELETE FROM outbox');
    expect(rowCount).toBe(2); // the deposit's invoice job and the event
    const redis = new Redis(TEST_REDIS_URL);
    await redis.set(REDIS_EPOCH_KEY, 'still-here');
    redis.disconnect();

    const graceMs = 1_500;
    const port = await freePort();
    worker = await startE2EHub(e2e, {
      ROLE: 'worker',
      PORT: String(port),
      LOG_LEVEL: 'error',
      RECOVERY_GRACE_MS: String(graceMs),
      RECOVERY_SWEEP_MS: '300',
    });

    const state = async () =>
      (
        await db.query<{ event: string; invoices: string[] }>(
          `SELECT (SELECT status::text FROM webhook_event WHERE id = $1) AS event,
                  (SELECT array_agg(billing_key || ':' || state ORDER BY billing_key)
                     FROM invoice WHERE deal_id = $2) AS invoices`,
          [eventId, dealId],
        )
      ).rows[0];
    await waitFor(
      async () => {
        const s = await state();
        return s.event === 'PROCESSED' && s.invoices?.every((i) => i.endsWith(':POSTED'))
          ? s
          : undefined;
      },
      { timeoutMs: 30_000, what: 'the lost work to be done' },
    );
    const s = await state();
    expect(s.invoices).toEqual([`${dealId}|balance:POSTED`, `${dealId}|deposit:POSTED`]);
    expect(
      e2e.sim.stripe
        .invoicesByMetadata('closeloop_deal_id', dealId)
        .map((i) => i.metadata.closeloop_billing_key)
        .sort(),
    ).toEqual([`${dealId}|balance`, `${dealId}|deposit`]);
    const metrics = await (await fetch(`${worker.url}/metrics`)).text();
    expect(metrics).toMatch(/closeloop_recovered_work_total\{kind="events"\} [1-9]/);
    expect(metrics).toMatch(/closeloop_recovered_work_total\{kind="invoices"\} [1-9]/);
  }, 60_000);
});
