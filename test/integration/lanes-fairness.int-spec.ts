import { Pool } from 'pg';

import { send, standardDelivery } from '../../tools/simulator/signed-delivery';
import { admin, stopAll } from '../support/failures';
import { RunningHub, flushTestRedis, startHub, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';

/**
 * One busy deal never holds up the others (CONTRACT §7, docs/decisions/0007): while thousands of
 * events for one deal are queued, an event for another deal is processed within 5 seconds of its
 * acknowledgement; the busy deal's own events still run once each, in arrival order. The same with
 * two api and two worker processes.
 */

const BURST = 3_000;
const PROBES = 5;
const PLAN = {
  currency: 'jpy',
  taxRatePercent: 10,
  billingCount: 'one_time',
  items: [{ key: 'design', label: 'Design', amount: 100000, trigger: 'milestone.accepted' }],
};

function acceptance(dealId: string, id: string) {
  return standardDelivery(
    '/webhooks/milestones',
    {
      type: 'milestone.accepted',
      data: { dealId, itemKey: 'design', acceptedAt: '2026-11-23T10:00:00Z', acceptedBy: id },
    },
    { secret: TEST_SECRETS.MILESTONE_WEBHOOK_SECRET, id },
  );
}

/** Runs `tasks` with at most `n` in flight. */
async function pool<T>(n: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]();
      }
    }),
  );
  return out;
}

describe.each([
  ['one process (ROLE=all)', 1, 0],
  ['two api and two worker processes', 2, 2],
])('lanes: a 3,000-event burst on one deal, with %s', (_name, apis, workers) => {
  let db: Pool;
  const hubs: RunningHub[] = [];
  let doors: RunningHub[];

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await flushTestRedis();
    const started = await Promise.all([
      ...Array.from({ length: apis }, () =>
        startHub({ ROLE: workers === 0 ? 'all' : 'api', LOG_LEVEL: 'error' }),
      ),
      ...Array.from({ length: workers }, () => startHub({ ROLE: 'worker', LOG_LEVEL: 'error' })),
    ]);
    hubs.push(...started);
    doors = started.slice(0, apis);
  });
  afterAll(async () => {
    await stopAll(...hubs);
    await db?.end();
  });

  async function createDeal(name: string): Promise<string> {
    const res = await admin(doors[0], 'POST', '/api/deals', {
      name,
      customer: { company: 'Example K.K.', email: 'tanaka@example.jp' },
      currency: 'jpy',
      stage: 'CONTRACT_SENT',
      billingPlan: PLAN,
    });
    expect(res.status).toBe(201);
    return (res.body as { id: string }).id;
  }

  const eventOf = async (provider: string, providerEventId: string) =>
    (
      await db.query<{ id: string; status: string; processed_at: Date | null }>(
        `SELECT id, status, processed_at FROM webhook_event
          WHERE provider = $1 AND provider_event_id = $2`,
        [provider, providerEventId],
      )
    ).rows[0];

  it('processes every other deal within 5 s of its 2xx while the burst runs, in order, once each', async () => {
    const busy = await createDeal('busy deal');
    const others = await Promise.all(
      Array.from({ length: PROBES }, (_, i) => createDeal(`probe ${i}`)),
    );

    // The burst: 3,000 distinct acceptances for one deal, as fast as the doors take them.
    const ids = Array.from({ length: BURST }, (_, i) => `msg_burst_${busy}_${i}`);
    const answers = await pool(
      50,
      ids.map((id, i) => () => send(doors[i % doors.length].url, acceptance(busy, id))),
    );
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const waiting = async () =>
      (
        await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM webhook_event WHERE deal_id IS NULL AND status = 'RECEIVED'`,
        )
      ).rows[0].n;

    // Probes for other deals, one every 200 ms while the burst is worked through.
    const probes: { ms: number; burstLeft: number }[] = [];
    for (const [i, deal] of others.entries()) {
      const id = `msg_probe_${deal}`;
      const burstLeft = await waiting();
      const res = await send(doors[i % doors.length].url, acceptance(deal, id));
      const acked = Date.now();
      expect(res.status).toBe(200);
      await waitFor(async () => (await eventOf('milestones', id))?.status === 'PROCESSED', {
        timeoutMs: 10_000,
        intervalMs: 20,
        what: `probe ${i} to be processed`,
      });
      probes.push({ ms: Date.now() - acked, burstLeft });
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const p of probes) expect(p.ms).toBeLessThan(5_000);
    // Real fairness: the burst was still waiting when they came (they overtook it).
    expect(probes[0].burstLeft).toBeGreaterThan(100);

    // More of the busy deal's events, one after the other (each sent once the previous one was
    // acknowledged): the lane must apply them in that order, after the burst.
    const tail = Array.from({ length: 20 }, (_, i) => `msg_tail_${busy}_${i}`);
    for (const id of tail)
      expect((await send(doors[0].url, acceptance(busy, id))).status).toBe(200);

    // The busy deal's own events: every one finished once …
    await waitFor(async () => (await waiting()) === 0, {
      timeoutMs: 120_000,
      what: 'the burst to be processed',
    });
    const { rows: mine } = await db.query<{
      id: string;
      provider_event_id: string;
      status: string;
      attempts: number;
    }>(
      `SELECT e.id, e.provider_event_id, e.status, e.attempts FROM webhook_event e
        WHERE e.provider = 'milestones' AND e.provider_event_id = ANY($1) ORDER BY e.id`,
      [[...ids, ...tail]],
    );
    expect(mine).toHaveLength(BURST + tail.length);
    expect(mine.filter((e) => e.status !== 'PROCESSED' || e.attempts !== 1)).toEqual([]);
    // … one timeline entry each, the first accepting the item and every other a duplicate …
    const { rows: timeline } = await db.query<{ event_id: string; message: string }>(
      `SELECT event_id, message FROM timeline_entry WHERE deal_id = $1 AND event_id IS NOT NULL
        ORDER BY id`,
      [busy],
    );
    const name = new Map(mine.map((e) => [e.id, e.provider_event_id]));
    const applied = timeline.map((t) => name.get(t.event_id));
    expect([...applied].sort()).toEqual([...ids, ...tail].sort());
    expect(timeline[0].message).toMatch(/^Design \(design\) accepted by msg_burst_/);
    expect(timeline.slice(1).every((t) => /duplicate ignored$/.test(t.message))).toBe(true);
    // … and what arrived one after the other was applied in that order, after the burst.
    expect(applied.slice(-tail.length)).toEqual(tail);
    // The item was accepted once, by the first delivery the lane applied.
    const { rows: item } = await db.query<{ accepted_by: string }>(
      `SELECT accepted_by FROM billing_item WHERE deal_id = $1 AND key = 'design'`,
      [busy],
    );
    expect(item[0].accepted_by).toBe(applied[0]);
  }, 240_000);
});
