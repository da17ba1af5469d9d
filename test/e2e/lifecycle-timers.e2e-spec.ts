import 'reflect-metadata';

import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Queue } from 'bullmq';
import { Pool } from 'pg';

import { loadConfig } from '../../src/config/app-config';
import { LifecycleTimerService } from '../../src/lifecycle/lifecycle-timer.service';
import { LifecycleService } from '../../src/lifecycle/lifecycle.service';
import { QueueName } from '../../src/queue/queue-name.enum';
import { AppModule } from '../../src/roles/app.module';
import {
  DealDetail,
  E2E,
  admin,
  getDeal,
  startE2EHub,
  startProviders,
  milestone,
  quiesce,
} from '../support/e2e';
import { RunningHub, flushTestRedis, freePort, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_REDIS_URL, hubEnv } from '../support/test-env';

/**
 * The worker's clock (LifecycleTimerService): silent approval fires once however many workers
 * look, a rejection within the window prevents it, and monthly items bill once per month on the
 * billing day in the deal's time zone (Asia/Tokyo by default) — CONTRACT §4, ADR 0004.
 */

const TIMER_MS = 200;
/**
 * The hub processes' business clock (CLOCK_START): a fixed instant before every billing date used
 * below, so their own timers bill nothing on their own whatever today's date is; only the instants
 * this file chooses (runOnce, or a due date set before this one) make anything due.
 */
const HUB_CLOCK_START = '2026-10-01T00:00:00.000Z';

interface ItemDetail {
  key: string;
  billingStatus: string;
  acceptanceDueAt: string | null;
  submittedAt: string | null;
  acceptedAt: string | null;
  acceptedBy: string | null;
  rejectedAt: string | null;
  rejectionReason: string | null;
  invoices: { billingKey: string; state: string; stripeInvoiceId: string | null }[];
}

const itemOf = (d: DealDetail, key: string) =>
  d.items.find((i) => i.key === key) as unknown as ItemDetail;

describe('lifecycle timers (silent approval, monthly billing)', () => {
  let e2e: E2E;
  let hub: RunningHub;
  let worker: RunningHub;
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
    // Two processes run the timer every 200 ms: the api+worker hub and a second worker.
    [hub, worker] = await Promise.all([
      startE2EHub(e2e, { LIFECYCLE_TIMER_MS: String(TIMER_MS), CLOCK_START: HUB_CLOCK_START }),
      freePort().then((port) =>
        startE2EHub(e2e, {
          ROLE: 'worker',
          PORT: String(port),
          LIFECYCLE_TIMER_MS: String(TIMER_MS),
          CLOCK_START: HUB_CLOCK_START,
        }),
      ),
    ]);
  });

  afterAll(async () => {
    await worker?.stop();
    await hub?.stop();
    await e2e?.close();
    await Promise.all((queues ?? []).map((q) => q.close()));
    await db?.end();
  });

  async function createDeal(body: Record<string, unknown>): Promise<string> {
    const res = await fetch(`${hub.url}/api/deals`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({
        customer: {
          company: 'Example K.K.',
          contactName: 'Taro Tanaka',
          email: 'tanaka@example.jp',
        },
        currency: 'jpy',
        ...body,
      }),
    });
    const json = (await res.json()) as { id: string };
    expect(res.status).toBe(201);
    return json.id;
  }

  const quiet = () => quiesce(e2e, db, queues);

  function stripeKeys(dealId: string): string[] {
    return e2e.sim.stripe
      .invoicesByMetadata('closeloop_deal_id', dealId)
      .map((i) => i.metadata.closeloop_billing_key)
      .sort();
  }

  async function hubInvoiceKeys(dealId: string): Promise<string[]> {
    const { rows } = await db.query<{ billing_key: string }>(
      'SELECT billing_key FROM invoice WHERE deal_id = $1 ORDER BY billing_key',
      [dealId],
    );
    return rows.map((r) => r.billing_key);
  }

  // ---- silent approval --------------------------------------------------------------------------

  it('silent approval fires once with two timer processes; a rejection within the window prevents it', async () => {
    const plan = {
      currency: 'jpy',
      taxRatePercent: 10,
      billingCount: 'one_time',
      items: [
        {
          key: 'design',
          label: 'Design',
          amount: 100000,
          trigger: 'milestone.accepted',
          acceptanceDays: 5,
          silentApproval: true,
        },
      ],
    };
    const approved = await createDeal({
      name: 'silent',
      amount: 100000,
      stage: 'WON',
      billingPlan: plan,
    });
    const rejected = await createDeal({
      name: 'rejected',
      amount: 100000,
      stage: 'WON',
      billingPlan: plan,
    });

    // The work is submitted (progress 100 %): the 5-day acceptance window opens for both.
    for (const dealId of [approved, rejected]) {
      const r = await milestone(hub.url, 'milestone.progress', {
        dealId,
        itemKey: 'design',
        progressPercent: 100,
      });
      expect(r.status).toBe(200);
    }
    const submitted = Date.now();
    for (const dealId of [approved, rejected]) {
      const item = await waitFor(
        async () => {
          const i = itemOf(await getDeal(hub.url, dealId), 'design');
          return i.acceptanceDueAt ? i : undefined;
        },
        { what: `acceptance window of ${dealId}`, timeoutMs: 20_000 },
      );
      const due = Date.parse(item!.acceptanceDueAt!);
      // Five calendar days in Asia/Tokyo (no DST there): 5 × 24 h after the submission.
      expect(Math.abs(due - submitted - 5 * 86_400_000)).toBeLessThan(60_000);
      expect(item!.billingStatus).toBe('NOT_READY');
    }

    // The client rejects the second deal's item within the window.
    expect(
      (
        await milestone(hub.url, 'milestone.rejected', {
          dealId: rejected,
          itemKey: 'design',
          reason: 'the colours are wrong',
        })
      ).status,
    ).toBe(200);
    await waitFor(
      async () => itemOf(await getDeal(hub.url, rejected), 'design').rejectedAt !== null,
      { what: 'rejection recorded' },
    );
    await quiet();

    // Time passes: the approved deal's window is over for the hubs' clock (it ends just before
    // that clock's start); the rejected deal is moved 6 days into its past as a whole (its window,
    // if any, is over too).
    await db.query(
      "UPDATE billing_item SET acceptance_due_at = $2::timestamptz - interval '1 second' WHERE deal_id = $1 AND key = 'design'",
      [approved, HUB_CLOCK_START],
    );
    await db.query(
      `UPDATE billing_item SET submitted_at = submitted_at - interval '6 days',
              rejected_at = rejected_at - interval '6 days',
              acceptance_due_at = acceptance_due_at - interval '6 days'
       WHERE deal_id = $1`,
      [rejected],
    );

    const billed = await waitFor(
      async () => {
        const d = await getDeal(hub.url, approved);
        return itemOf(d, 'design').billingStatus === 'INVOICE_POSTED' ? d : undefined;
      },
      { what: 'silent approval billed', timeoutMs: 20_000 },
    );
    expect(itemOf(billed!, 'design').acceptedBy).toBe('silent approval');
    await quiet();
    // Absence cannot be polled: give both timer processes several more passes (≥ 5 each) to
    // fire a second time if they were going to, then check again.
    await new Promise((r) => setTimeout(r, TIMER_MS * 6));
    await quiet();

    const a = await getDeal(hub.url, approved);
    const item = itemOf(a, 'design');
    expect(item.acceptedBy).toBe('silent approval');
    expect(item.invoices).toHaveLength(1);
    expect(await hubInvoiceKeys(approved)).toEqual([`${approved}|design`]);
    expect(stripeKeys(approved)).toEqual([`${approved}|design`]);
    expect(a.timeline.filter((t) => t.kind === 'timer')).toEqual([
      expect.objectContaining({
        cause: 'timer: silent approval',
        message: expect.stringContaining('Design (design) accepted by silent approval'),
      }),
    ]);
    expect(
      a.timeline.filter(
        (t) => t.kind === 'billing' && t.message.includes('accepted by silent approval'),
      ),
    ).toHaveLength(1);
    expect(a.stage).toBe('DELIVERED');

    const r = await getDeal(hub.url, rejected);
    const ritem = itemOf(r, 'design');
    expect(ritem.acceptedAt).toBeNull();
    expect(ritem.acceptedBy).toBeNull();
    expect(ritem.rejectionReason).toBe('the colours are wrong');
    expect(ritem.acceptanceDueAt).toBeNull();
    expect(ritem.billingStatus).toBe('NOT_READY');
    expect(ritem.invoices).toEqual([]);
    expect(r.timeline.filter((t) => t.kind === 'timer')).toEqual([]);
    expect(await hubInvoiceKeys(rejected)).toEqual([]);
    expect(stripeKeys(rejected)).toEqual([]);
    expect(r.stage).toBe('WON');
  });

  // ---- monthly billing across month ends in Asia/Tokyo ------------------------------------------

  describe('monthly items, driven in-process with a chosen clock', () => {
    let ctx: INestApplicationContext;
    let timer: LifecycleTimerService;

    beforeAll(async () => {
      // The production modules of a worker, against the same Postgres, Redis and simulator; its
      // own interval is set to an hour so that only the runOnce calls below move its clock.
      const env = Object.fromEntries(
        Object.entries(e2e.env).filter(
          ([k]) => !k.startsWith('DOCUSIGN_') && k !== 'NODE_EXTRA_CA_CERTS',
        ),
      );
      const config = loadConfig(
        hubEnv({ ...env, ROLE: 'worker', LIFECYCLE_TIMER_MS: '3600000', LOG_LEVEL: 'error' }),
      );
      ctx = await NestFactory.createApplicationContext(AppModule.forRole(config), {
        logger: false,
      });
      timer = ctx.get(LifecycleTimerService);
    });

    afterAll(async () => {
      await ctx?.close();
    });

    it('bills a monthly_fixed plan once per month on the billing day in Asia/Tokyo', async () => {
      // The hub processes' own timers run on HUB_CLOCK_START's clock (long before
      // 2026-11-29T15:00Z), so they bill nothing here; only the instants passed to runOnce do.
      const dealId = await createDeal({
        name: 'monthly retainer',
        stage: 'WON',
        billingPlan: {
          currency: 'jpy',
          taxRatePercent: 10,
          billingCount: 'monthly_fixed',
          monthly: { amount: 50000, startOn: '2026-11-30', months: 3 },
        },
      });
      const created = await getDeal(hub.url, dealId);
      expect(created.stage).toBe('WON');
      expect(created.items.map((i) => i.key)).toEqual(['monthly']);
      expect(await hubInvoiceKeys(dealId)).toEqual([]);

      const key = (period: string) => `${dealId}|monthly|${period}`;
      const mine = (invoices: string[]) => invoices.filter((k) => k.startsWith(`${dealId}|`));
      // A pass aborted by a deadlock is simply run again, as the worker's interval would on its
      // next tick: the deadlock itself is a hub bug shown by the next test, and this test is
      // about what the passes bill.
      const run = async (iso: string): Promise<string[]> => {
        for (let attempt = 1; ; attempt++) {
          try {
            return mine((await timer.runOnce(new Date(iso))).invoices);
          } catch (err) {
            if (attempt >= 5 || !String((err as Error).message).includes('40P01')) throw err;
          }
        }
      };

      // Each pass that bills waits for the workers to issue that invoice before the next
      // sequential pass.
      // 23:59:59 JST on 11-29: not yet the billing day.
      expect(await run('2026-11-29T14:59:59.999Z')).toEqual([]);
      expect(await hubInvoiceKeys(dealId)).toEqual([]);
      // 00:00 JST on 11-30: November is due.
      expect(await run('2026-11-29T15:00:00Z')).toEqual([key('2026-11')]);
      await quiet();
      // The same instant again, and three concurrent passes: nothing more.
      expect(await run('2026-11-29T15:00:00Z')).toEqual([]);
      const concurrent = await Promise.all(
        Array.from({ length: 3 }, () => run('2026-11-30T03:00:00Z')),
      );
      expect(concurrent.flat()).toEqual([]);
      expect(await hubInvoiceKeys(dealId)).toEqual([key('2026-11')]);

      // December's billing day is the 30th (startOn's day of month).
      expect(await run('2026-12-29T14:59:59.999Z')).toEqual([]);
      expect(await run('2026-12-29T15:00:00Z')).toEqual([key('2026-12')]);
      await quiet();
      expect(await run('2026-12-30T15:00:00Z')).toEqual([]);
      // January 30th (three concurrent passes bill it once); then no more (3 months).
      expect(await run('2027-01-29T14:59:59.999Z')).toEqual([]);
      const january = await Promise.all([
        run('2027-01-31T00:00:00Z'),
        run('2027-01-31T00:00:00Z'),
        run('2027-01-31T00:00:00Z'),
      ]);
      expect(january.flat()).toEqual([key('2027-01')]);
      await quiet();
      expect(await run('2027-03-01T00:00:00Z')).toEqual([]);
      expect(await run('2027-12-31T00:00:00Z')).toEqual([]);

      const all = [key('2026-11'), key('2026-12'), key('2027-01')];
      expect(await hubInvoiceKeys(dealId)).toEqual(all);
      // BIGINT columns: pg returns int8 as text.
      const { rows } = await db.query<{ period: string; amount: string; tax_amount: string }>(
        'SELECT period, amount, tax_amount FROM invoice WHERE deal_id = $1 ORDER BY period',
        [dealId],
      );
      expect(rows).toEqual([
        { period: '2026-11', amount: '50000', tax_amount: '5000' },
        { period: '2026-12', amount: '50000', tax_amount: '5000' },
        { period: '2027-01', amount: '50000', tax_amount: '5000' },
      ]);

      // The workers (the in-process one and the hub processes) issue one Stripe invoice each.
      await waitFor(
        async () => {
          const d = await getDeal(hub.url, dealId);
          return d.items[0].invoices.length === 3 &&
            d.items[0].invoices.every((i) => i.state === 'POSTED')
            ? d
            : undefined;
        },
        { what: 'three monthly invoices posted', timeoutMs: 30_000 },
      );
      await quiet();
      expect(stripeKeys(dealId)).toEqual(all);
      const d = await getDeal(hub.url, dealId);
      expect(
        d.timeline.filter((t) => t.kind === 'billing' && t.message.startsWith('invoice due for')),
      ).toHaveLength(3);
      expect(
        d.timeline.filter((t) => t.message.includes('monthly billing date 2026-12-30')),
      ).toHaveLength(1);
    });

    it('looks only at monthly items whose next billing instant has come (an index), not every monthly deal', async () => {
      const monthly = (startOn: string, months: number) => ({
        currency: 'jpy',
        taxRatePercent: 10,
        billingCount: 'monthly_fixed',
        monthly: { amount: 20000, startOn, months },
      });
      const later = await Promise.all(
        [0, 1, 2].map((i) =>
          createDeal({ name: `later ${i}`, stage: 'WON', billingPlan: monthly('2027-06-15', 2) }),
        ),
      );
      const due = await createDeal({
        name: 'due in May',
        stage: 'WON',
        billingPlan: monthly('2027-05-01', 1),
      });
      // Applying and settling the plan recorded each item's first billing instant (00:00 JST).
      const nextDue = async (dealId: string) =>
        (
          await db.query<{ next_due_at: Date | null }>(
            `SELECT next_due_at FROM billing_item WHERE deal_id = $1 AND trigger = 'monthly'`,
            [dealId],
          )
        ).rows[0].next_due_at?.toISOString() ?? null;
      await waitFor(async () => (await nextDue(due)) === '2027-04-30T15:00:00.000Z', {
        what: 'the first billing instant to be recorded',
      });
      for (const d of later) expect(await nextDue(d)).toBe('2027-06-14T15:00:00.000Z');

      const lifecycle = ctx.get(LifecycleService);
      const billDue = jest.spyOn(lifecycle, 'billDue');
      try {
        const mine = () =>
          billDue.mock.calls.map(([dealId]) => dealId).filter((d) => [due, ...later].includes(d));
        const at = new Date('2027-05-10T00:00:00Z');
        const first = await timer.runOnce(at);
        expect(mine()).toEqual([due]);
        expect(first.invoices.filter((k) => k.startsWith(`${due}|`))).toEqual([
          `${due}|monthly|2027-05`,
        ]);
        // Its only month billed, the item has no next instant: the next pass looks at none of them.
        expect(await nextDue(due)).toBeNull();
        billDue.mockClear();
        await timer.runOnce(at);
        expect(mine()).toEqual([]);
        // June 15th in Tokyo: the three others are looked at, once each.
        await timer.runOnce(new Date('2027-06-14T15:00:00Z'));
        expect(mine().sort()).toEqual([...later].sort());
        for (const d of later) expect(await nextDue(d)).toBe('2027-07-14T15:00:00.000Z');
      } finally {
        billDue.mockRestore();
      }
      await quiet();
    });

    it('timer passes are not aborted by invoice issuance running for the same deal (lock order)', async () => {
      // Passes run while the workers issue (and Stripe reports on) the invoices the previous
      // passes created. The timer holds the deal row FOR UPDATE and re-inserts the deal's existing
      // billing keys (INSERT … ON CONFLICT DO NOTHING waits for a concurrent UPDATE of that
      // invoice row); the invoice issuer updates an invoice row, then inserts a timeline row that
      // references the deal (FK → KEY SHARE on the deal row). Exactly-once holds either way; this
      // checks that the passes themselves are not aborted by deadlocks.
      const dealId = await createDeal({
        name: 'monthly, passes racing issuance',
        stage: 'WON',
        billingPlan: {
          currency: 'jpy',
          taxRatePercent: 10,
          billingCount: 'monthly_fixed',
          monthly: { amount: 30000, startOn: '2026-12-31', months: 6 },
        },
      });
      const failures: string[] = [];
      const billed: string[] = [];
      for (let m = 0; m < 6; m++) {
        const at = new Date(Date.UTC(2027, m, 1)); // the 1st, 09:00 JST: the previous month is due
        const passes = await Promise.allSettled(Array.from({ length: 3 }, () => timer.runOnce(at)));
        for (const p of passes) {
          if (p.status === 'rejected') failures.push(String((p.reason as Error).message));
          else billed.push(...p.value.invoices.filter((k) => k.startsWith(`${dealId}|`)));
        }
      }
      await quiet();
      // Each month billed once, whatever happened …
      expect(new Set(billed).size).toBe(billed.length);
      expect(await hubInvoiceKeys(dealId)).toHaveLength(6);
      expect(stripeKeys(dealId)).toEqual(await hubInvoiceKeys(dealId));
      // … and no pass was aborted.
      expect(failures.map((f) => f.split('\n').filter(Boolean).pop())).toEqual([]);
    });
  });
});
