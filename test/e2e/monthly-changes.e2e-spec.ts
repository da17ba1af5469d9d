import 'reflect-metadata';

import { randomUUID } from 'node:crypto';

import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Queue } from 'bullmq';
import { Pool } from 'pg';

import { loadConfig } from '../../src/config/app-config';
import { LifecycleTimerService } from '../../src/lifecycle/lifecycle-timer.service';
import { QueueName } from '../../src/queue/queue-name.enum';
import { AppModule } from '../../src/roles/app.module';
import { E2E, admin, getDeal, quiesce, startE2EHub, startProviders } from '../support/e2e';
import { RunningHub, flushTestRedis, testDb, truncateAll } from '../support/hub';
import { TEST_REDIS_URL, hubEnv } from '../support/test-env';

/**
 * A monthly_fixed fee changed from a month on and ended early through the admin API (CONTRACT
 * §4): the hub bills each month at the amount in force through Stripe (the simulator), never
 * changes a month already invoiced, bills nothing after the end, and tells PRONI アイミツ each
 * change and the end once (a manual 確定報告 task each, §5). The months are billed by the worker's
 * clock run in-process at chosen instants, as in lifecycle-timers.e2e-spec.ts.
 */

/** The hub processes' business clock: before every billing date below, so they bill nothing by themselves. */
const HUB_CLOCK_START = '2026-10-01T00:00:00.000Z';

interface ReportRow {
  id: string;
  fact_key: string;
  channel: string;
  status: string;
  data: Record<string, unknown>;
  fields: { key: string; label: string; value: string }[];
}

describe('monthly fee changes and early end (admin API, Stripe simulator)', () => {
  let e2e: E2E;
  let hub: RunningHub;
  let db: Pool;
  let queues: Queue[];
  let ctx: INestApplicationContext;
  let timer: LifecycleTimerService;

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await flushTestRedis();
    queues = Object.values(QueueName).map(
      (name) => new Queue(name, { connection: { url: TEST_REDIS_URL } }),
    );
    e2e = await startProviders();
    hub = await startE2EHub(e2e, { CLOCK_START: HUB_CLOCK_START });
    // The production modules of a worker against the same Postgres, Redis and simulator; its own
    // interval is an hour, so only the runOnce calls below move its clock.
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
    await hub?.stop();
    await e2e?.close();
    await Promise.all((queues ?? []).map((q) => q.close()));
    await db?.end();
  });

  const quiet = () => quiesce(e2e, db, queues);

  async function api(method: string, path: string, body?: unknown) {
    const res = await fetch(`${hub.url}${path}`, {
      method,
      headers: { ...admin, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return {
      status: res.status,
      body: (await res.json()) as { id?: string; error?: { details?: string[] } },
    };
  }

  /** ¥50,000 a month from 2026-11-30 for 6 months (2026-11 to 2027-04), plus the given terms. */
  const plan = (monthly: Record<string, unknown> = {}) => ({
    currency: 'jpy',
    taxRatePercent: 10,
    billingCount: 'monthly_fixed',
    monthly: { amount: 50000, startOn: '2026-11-30', months: 6, ...monthly },
  });

  /** One pass of the worker's clock at `iso`: the billing keys of `dealId` it created. */
  async function bill(dealId: string, iso: string): Promise<string[]> {
    const { invoices } = await timer.runOnce(new Date(iso));
    const mine = invoices.filter((k) => k.startsWith(`${dealId}|`));
    await quiet();
    return mine;
  }

  /** Stripe's invoices of the deal (the simulator): billing key → subtotal, by key. */
  const stripeInvoices = (dealId: string) =>
    e2e.sim.stripe
      .invoicesByMetadata('closeloop_deal_id', dealId)
      .map((i) => [i.metadata.closeloop_billing_key, i.subtotal, i.status])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0])));

  const confirmedReports = async (dealId: string) =>
    (
      await db.query<ReportRow>(
        `SELECT id, fact_key, channel, status::text AS status, data, fields FROM report
          WHERE deal_id = $1 AND kind = 'confirmed_amount' ORDER BY created_at, fact_key`,
        [dealId],
      )
    ).rows;
  const planOf = (d: object) => (d as { plan?: unknown }).plan;
  const field = (r: ReportRow, label: string) => r.fields.find((f) => f.label === label)?.value;

  it('bills the new amount from its month, refuses a change of an invoiced month, stops at the end, and reports each once', async () => {
    const created = await api('POST', '/api/deals', {
      name: 'Monthly retainer',
      customer: {
        company: 'Retainer K.K.',
        contactName: 'Jiro Suzuki',
        email: 'suzuki@example.jp',
      },
      currency: 'jpy',
      stage: 'WON',
      billingPlan: plan(),
    });
    expect(created.status).toBe(201);
    const dealId = created.body.id!;
    // A PRONI アイミツ referral (manual queue: each report is a task with the form's fields).
    await db.query(
      `UPDATE deal SET referral_platform = 'aimitsu', referral_id = $2 WHERE id = $1`,
      [dealId, `R-${randomUUID().slice(0, 8)}`],
    );
    const key = (period: string) => `${dealId}|monthly|${period}`;

    // November and December, billed on the 30th in Tokyo and sent by the workers.
    expect(await bill(dealId, '2026-11-29T15:00:00Z')).toEqual([key('2026-11')]);
    expect(await bill(dealId, '2026-12-29T15:00:00Z')).toEqual([key('2026-12')]);
    expect(stripeInvoices(dealId)).toEqual([
      [key('2026-11'), 50000, 'open'],
      [key('2026-12'), 50000, 'open'],
    ]);
    expect((await confirmedReports(dealId)).map((r) => r.fact_key)).toEqual([
      `${dealId}|confirmed_amount|monthly`,
    ]);

    // A change of December, already invoiced: 400, and nothing changes.
    const before = await getDeal(hub.url, dealId);
    const refused = await api(
      'PUT',
      `/api/deals/${dealId}/billing-plan`,
      plan({ changes: [{ fromMonth: '2026-12', amount: 60000 }] }),
    );
    expect(refused.status).toBe(400);
    expect(refused.body.error).toEqual({
      code: 'INVALID_BILLING_PLAN',
      message:
        'billing plan refused: monthly.changes[0].fromMonth: 2026-12 would bill ¥60,000 for 2026-12, already invoiced at ¥50,000; months already invoiced never change (a change can start from 2027-01)',
      details: [
        'monthly.changes[0].fromMonth: 2026-12 would bill ¥60,000 for 2026-12, already invoiced at ¥50,000; months already invoiced never change (a change can start from 2027-01)',
      ],
    });
    const endedBefore = await api(
      'PUT',
      `/api/deals/${dealId}/billing-plan`,
      plan({ endMonth: '2026-11' }),
    );
    expect(endedBefore.status).toBe(400);
    expect(endedBefore.body.error?.details).toEqual([
      'monthly.endMonth: 2026-11 ends before 2026-12, which is already invoiced; months already invoiced never change (the earliest end is 2026-12)',
    ]);
    const unchanged = await getDeal(hub.url, dealId);
    expect(planOf(before)).toMatchObject({ monthly: { amount: 50000 } });
    expect(planOf(unchanged)).toEqual(planOf(before));
    expect(unchanged.items).toEqual(before.items);
    expect((await confirmedReports(dealId)).map((r) => r.fact_key)).toEqual([
      `${dealId}|confirmed_amount|monthly`,
    ]);

    // ¥60,000 from January, PUT twice: one change report.
    const changed = plan({ changes: [{ fromMonth: '2027-01', amount: 60000 }] });
    for (let i = 0; i < 2; i++) {
      expect((await api('PUT', `/api/deals/${dealId}/billing-plan`, changed)).status).toBe(200);
    }
    const afterChange = await confirmedReports(dealId);
    expect(afterChange.map((r) => r.fact_key)).toEqual([
      `${dealId}|confirmed_amount|monthly`,
      `${dealId}|confirmed_amount|monthly|change|2027-01`,
    ]);
    const change = afterChange[1];
    expect(change).toMatchObject({ channel: 'manual', status: 'PENDING' });
    expect(change.data).toMatchObject({
      amountExTax: 60000,
      taxAmount: 6000,
      billingCount: 'monthly_fixed',
      itemKey: 'monthly',
      effectiveMonth: '2027-01',
      issueDate: '2027-01-30',
    });
    expect(field(change, '変更月')).toBe('2027-01');
    expect(change.fields.at(-1)).toEqual({
      key: 'effectiveMonth',
      label: '変更月',
      labelEn: 'Month the new amount applies from',
      value: '2027-01',
    });
    const item = (await getDeal(hub.url, dealId)).items[0] as unknown as Record<string, unknown>;
    expect(item).toMatchObject({
      key: 'monthly',
      amount: 50000,
      monthlyChanges: [{ fromMonth: '2027-01', amount: 60000 }],
      endMonth: null,
    });

    // January bills ¥60,000; November and December stay as they were billed.
    expect(await bill(dealId, '2027-01-29T15:00:00Z')).toEqual([key('2027-01')]);
    expect(stripeInvoices(dealId)).toEqual([
      [key('2026-11'), 50000, 'open'],
      [key('2026-12'), 50000, 'open'],
      [key('2027-01'), 60000, 'open'],
    ]);

    // The fee ends after February (two months early), PUT twice: one end report.
    const ended = plan({ changes: [{ fromMonth: '2027-01', amount: 60000 }], endMonth: '2027-02' });
    for (let i = 0; i < 2; i++) {
      expect((await api('PUT', `/api/deals/${dealId}/billing-plan`, ended)).status).toBe(200);
    }
    const afterEnd = await confirmedReports(dealId);
    expect(afterEnd.map((r) => r.fact_key)).toEqual([
      `${dealId}|confirmed_amount|monthly`,
      `${dealId}|confirmed_amount|monthly|change|2027-01`,
      `${dealId}|confirmed_amount|monthly|end|2027-02`,
    ]);
    expect(afterEnd[2].data).toMatchObject({ amountExTax: 60000, endMonth: '2027-02' });
    expect(field(afterEnd[2], '最終請求月')).toBe('2027-02');

    // February (its 28th) is the last month billed; nothing after it, however late the clock.
    expect(await bill(dealId, '2027-02-27T15:00:00Z')).toEqual([key('2027-02')]);
    expect(await bill(dealId, '2027-03-29T15:00:00Z')).toEqual([]);
    expect(await bill(dealId, '2027-12-31T00:00:00Z')).toEqual([]);
    expect(stripeInvoices(dealId)).toEqual([
      [key('2026-11'), 50000, 'open'],
      [key('2026-12'), 50000, 'open'],
      [key('2027-01'), 60000, 'open'],
      [key('2027-02'), 60000, 'open'],
    ]);
    const { rows } = await db.query<{ next_due_at: Date | null }>(
      `SELECT next_due_at FROM billing_item WHERE deal_id = $1 AND key = 'monthly'`,
      [dealId],
    );
    expect(rows).toEqual([{ next_due_at: null }]);
    expect((await confirmedReports(dealId)).length).toBe(3);
  });
});
