import { Pool } from 'pg';

import { DealStage } from '../../src/domain/deal-stage';
import { DeadLetterStatus, InvoiceState } from '../../src/generated/prisma/client';
import { PrismaService } from '../../src/prisma/prisma.service';
import { ProviderSimulator } from '../../tools/simulator/provider-sim/simulator';
import {
  closeTestPrisma,
  createDeadLetter,
  createDeal,
  createInvoice,
  openTestPrisma,
} from '../factories';
import { parseCsv } from '../support/csv';
import { RunningHub, flushTestRedis, startHub, testDb, truncateAll } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';

/**
 * The deals that need a person (CONTRACT §6 `GET /api/deals?attention=true`) and reconciliation's
 * `due_not_issued`, against the built hub (ROLE=api: no worker picks the seeded work up) over
 * real Postgres, Stripe played by the simulator. Deals are seeded in the database as the hub
 * leaves them: won without a plan, a refused plan, an invoice gone quiet, one whose billing job is
 * an open dead letter, and healthy ones around them that must not be listed.
 */

interface Answer {
  status: number;
  text: string;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const GRACE_MS = 60_000;
const PLAN = {
  currency: 'jpy',
  items: [{ key: 'deposit', label: '着手金', amount: 100_000, trigger: 'contract.signed' }],
};
const TOO_MANY = 'items: a plan has at most 500 items (this one has 501)';

describe('deals that need a person, and work due but not issued', () => {
  let sim: ProviderSimulator;
  let hub: RunningHub;
  let db: Pool;
  let prisma: PrismaService;
  let viewer = '';
  let n = 0;
  const ids = {} as Record<
    | 'healthy'
    | 'notWon'
    | 'wonNoPlan'
    | 'refused'
    | 'keptPlan'
    | 'quiet'
    | 'fresh'
    | 'parked'
    | 'replayed',
    string
  >;
  const wonAt = new Date('2026-11-20T01:00:00.000Z');

  async function api(urlPath: string, token = viewer): Promise<Answer> {
    const res = await fetch(`${hub.url}${urlPath}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined; // text/csv, text/html
    }
    return { status: res.status, text, body };
  }

  /** A deal as the hub stores it; ids sort by creation like the hub's UUIDv7 ids. */
  async function seedDeal(
    name: string,
    stage: DealStage,
    opts: { plan?: boolean; planError?: string } = {},
  ): Promise<string> {
    const id = `cl_deal_0199${String(++n).padStart(4, '0')}-0000-7000-8000-000000000000`;
    await createDeal(prisma, {
      id,
      name,
      stage,
      amount: 100_000,
      ...(opts.plan === false ? {} : { billingPlan: PLAN }),
      planError: opts.planError ?? null,
      wonAt: ['WON', 'DELIVERED', 'CLOSED'].includes(stage) ? wonAt : null,
      bare: true,
      history: false,
    });
    return id;
  }

  /** The deal's deposit invoice in `state`, last touched `quietMs` ago. */
  async function seedInvoice(
    dealId: string,
    state: InvoiceState,
    quietMs: number,
    lastError: string | null = null,
  ): Promise<string> {
    const { billingKey } = await createInvoice(prisma, {
      id: `inv_${dealId}|deposit`,
      dealId,
      itemKey: 'deposit',
      amount: 100_000,
      taxRatePercent: 10,
      description: '着手金',
      state,
      lastError,
      issueAttempts: 1,
      createdAt: new Date(Date.now() - 2 * 3600_000),
      updatedAt: new Date(Date.now() - quietMs),
      bare: true,
    });
    return billingKey;
  }

  async function seedDeadLetter(billingKey: string, status: DeadLetterStatus, error: string) {
    await createDeadLetter(prisma, {
      id: `dl_${billingKey}_${status}`,
      queue: 'billing',
      jobName: 'BillingInvoiceIssue',
      jobId: `bill|${billingKey}|${status}`,
      data: { billingKey, dealId: billingKey.split('|')[0], correlationId: 'test' },
      reason: 'PERMANENT',
      error,
      attempts: 1,
      status,
    });
  }

  beforeAll(async () => {
    db = testDb();
    prisma = openTestPrisma();
    await truncateAll(db);
    await flushTestRedis();
    sim = await ProviderSimulator.start({ port: 0 });
    hub = await startHub({
      ROLE: 'api',
      RECOVERY_GRACE_MS: String(GRACE_MS),
      STRIPE_SECRET_KEY: 'sk_test_closeloop_attention',
      STRIPE_API_BASE: sim.url,
    });
    const token = await fetch(`${hub.url}/api/tokens`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ name: 'attention-viewer', role: 'viewer' }),
    });
    viewer = ((await token.json()) as { token: string }).token;

    // Oldest first. Healthy: its invoice was issued long ago.
    ids.healthy = await seedDeal('Healthy K.K.', 'WON');
    await seedInvoice(ids.healthy, 'POSTED', 2 * 3600_000);
    // Not won yet and without a plan: nothing to bill yet.
    ids.notWon = await seedDeal('Negotiating K.K.', 'NEGOTIATING', { plan: false });
    // Won without any plan.
    ids.wonNoPlan = await seedDeal('No plan K.K.', 'WON', { plan: false });
    // Delivered, its plan refused.
    ids.refused = await seedDeal('Refused K.K.', 'DELIVERED', { plan: false, planError: TOO_MANY });
    // A refused change while an earlier plan stays in force: billable.
    ids.keptPlan = await seedDeal('Kept plan K.K.', 'WON', { planError: TOO_MANY });
    // An invoice quiet for two minutes (grace: one minute), failing.
    ids.quiet = await seedDeal('Quiet K.K.', 'WON');
    await seedInvoice(ids.quiet, 'PENDING', 120_000, 'stripe 500 api_error: Stripe is down');
    // An invoice touched 30 s ago: still inside the grace.
    ids.fresh = await seedDeal('Fresh K.K.', 'WON');
    await seedInvoice(ids.fresh, 'CREATING', 30_000);
    // Just touched, but its billing job is parked as an open dead letter.
    ids.parked = await seedDeal('Parked K.K.', 'CLOSED');
    const parkedKey = await seedInvoice(ids.parked, 'CREATING', 0);
    await seedDeadLetter(parkedKey, 'OPEN', 'stripe 400 invalid_request_error: No such customer');
    // Its dead letter was replayed already: back in the issuer's hands.
    ids.replayed = await seedDeal('Replayed K.K.', 'WON');
    const replayedKey = await seedInvoice(ids.replayed, 'PENDING', 0);
    await seedDeadLetter(replayedKey, 'REPLAYED', 'stripe 400 invalid_request_error: gone');
  });

  afterAll(async () => {
    await hub?.stop();
    await sim?.close();
    await closeTestPrisma(prisma);
    await db?.end();
  });

  it('lists the deals that need a person, newest first, each with its reasons, and no other deal', async () => {
    const res = await api('/api/deals?attention=true');
    expect(res.status).toBe(200);
    expect(res.body.items.map((d: { id: string }) => d.id)).toEqual([
      ids.parked,
      ids.quiet,
      ids.refused,
      ids.wonNoPlan,
    ]);
    expect(res.body.nextCursor).toBeNull();
    const byId = Object.fromEntries(
      res.body.items.map((d: { id: string; attention: unknown[] }) => [d.id, d]),
    );
    expect(byId[ids.wonNoPlan]).toMatchObject({
      name: 'No plan K.K.',
      stage: 'WON',
      amount: 100_000,
      billing: { invoicedCount: 0 },
      attention: [
        { reason: 'not_billable', since: wonAt.toISOString(), detail: 'no billing plan' },
      ],
    });
    expect(byId[ids.refused].attention).toEqual([
      { reason: 'not_billable', since: wonAt.toISOString(), detail: `plan refused (${TOO_MANY})` },
    ]);
    expect(byId[ids.quiet].attention).toEqual([
      {
        reason: 'due_not_issued',
        since: expect.any(String),
        detail: `invoice ${ids.quiet}|deposit for item deposit is PENDING, not issued in Stripe: last error: stripe 500 api_error: Stripe is down`,
        billingKey: `${ids.quiet}|deposit`,
        itemKey: 'deposit',
      },
    ]);
    expect(byId[ids.parked].attention).toEqual([
      expect.objectContaining({
        reason: 'due_not_issued',
        detail: `invoice ${ids.parked}|deposit for item deposit is CREATING, not issued in Stripe: last error: stripe 400 invalid_request_error: No such customer; dead letter dl_${ids.parked}|deposit_OPEN waits for a replay`,
        billingKey: `${ids.parked}|deposit`,
      }),
    ]);
    // The invoice became due two hours ago: that is how long the deal has waited.
    const since = new Date(byId[ids.quiet].attention[0].since).getTime();
    expect(Date.now() - since).toBeGreaterThan(3600_000);
  });

  it('pages like the other lists, narrows by stage and refuses what does not combine', async () => {
    const first = await api('/api/deals?attention=true&limit=3');
    expect(first.body.items.map((d: { id: string }) => d.id)).toEqual([
      ids.parked,
      ids.quiet,
      ids.refused,
    ]);
    expect(first.body.nextCursor).toBe(ids.refused);
    const second = await api(`/api/deals?attention=true&limit=3&cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((d: { id: string }) => d.id)).toEqual([ids.wonNoPlan]);
    expect(second.body.nextCursor).toBeNull();

    const delivered = await api('/api/deals?attention=true&stage=DELIVERED');
    expect(delivered.body.items.map((d: { id: string }) => d.id)).toEqual([ids.refused]);

    const all = await api('/api/deals?limit=200');
    expect(all.body.items).toHaveLength(9);
    expect(all.body.items[0].attention).toBeUndefined();
    expect((await api('/api/deals?attention=false&limit=200')).body.items).toHaveLength(9);

    const withQ = await api(`/api/deals?attention=true&q=${ids.quiet}`);
    expect(withQ.status).toBe(400);
    expect(withQ.body.error.code).toBe('VALIDATION_FAILED');
    expect((await api('/api/deals?attention=yes')).status).toBe(400);
    expect((await api('/api/deals?attention=true', 'not-a-token')).status).toBe(401);
  });

  it('reconciliation names the work due but not issued (JSON and CSV), and only that', async () => {
    const finance = TEST_SECRETS.ADMIN_TOKEN;
    const quiet = await api(`/api/reconciliation?dealId=${ids.quiet}`, finance);
    expect(quiet.status).toBe(200);
    expect(quiet.body.deals[0].mismatches).toEqual(
      expect.arrayContaining([
        {
          kind: 'due_not_issued',
          billingKey: `${ids.quiet}|deposit`,
          message: `invoice ${ids.quiet}|deposit for item deposit is PENDING, not issued in Stripe: last error: stripe 500 api_error: Stripe is down — ¥100,000 excl. tax`,
        },
      ]),
    );
    const parked = await api(`/api/reconciliation?dealId=${ids.parked}`, finance);
    expect(parked.body.deals[0].mismatches).toEqual([
      expect.objectContaining({
        kind: 'due_not_issued',
        message: expect.stringContaining('its billing job is a dead letter'),
      }),
    ]);
    for (const healthy of [ids.fresh, ids.replayed, ids.healthy]) {
      const res = await api(`/api/reconciliation?dealId=${healthy}`, finance);
      expect(
        res.body.deals[0].mismatches.filter((m: { kind: string }) => m.kind === 'due_not_issued'),
      ).toEqual([]);
    }

    const csv = await api(`/api/reconciliation?format=csv&dealId=${ids.parked}`, finance);
    expect(csv.status).toBe(200);
    const rows = parseCsv(csv.text);
    expect(rows[0]).toEqual([
      'deal_id',
      'deal_name',
      'crm_deal_id',
      'currency',
      'contracted',
      'invoiced_hub',
      'invoiced_stripe',
      'paid',
      'mismatches',
      'referral_platform',
      'reported',
      'reports',
      'reports_not_reported',
    ]);
    expect(rows[1][0]).toBe(ids.parked);
    expect(rows[1][8]).toMatch(/^due_not_issued: invoice .*\|deposit for item deposit is CREATING/);
  });

  it('shows the list on the dashboard with the reasons in Japanese and English', async () => {
    const form = await fetch(`${hub.url}/dashboard/login`);
    const loginCsrf = /cl_login=([^;]+)/.exec(form.headers.getSetCookie().join('; '))![1];
    const login = await fetch(`${hub.url}/dashboard/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        cookie: `cl_login=${loginCsrf}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ _csrf: loginCsrf, token: viewer }).toString(),
    });
    expect(login.status).toBe(302);
    const session = /cl_session=([^;]+)/.exec(login.headers.getSetCookie().join('; '))![1];
    const page = async (lang: string, path: string) => {
      const res = await fetch(`${hub.url}${path}`, {
        headers: { cookie: `cl_session=${session}; cl_lang=${lang}` },
      });
      expect(res.status).toBe(200);
      return res.text();
    };

    const deals = await page('ja', '/dashboard/deals');
    expect(deals).toContain('href="/dashboard/deals?attention=true"');
    const ja = await page('ja', '/dashboard/deals?attention=true');
    const rowOf = (html: string, id: string) =>
      new RegExp(`<tr data-deal-id="${id}"[\\s\\S]*?</tr>`).exec(html)?.[0] ?? '';
    expect(rowOf(ja, ids.wonNoPlan)).toContain('請求できない');
    expect(rowOf(ja, ids.wonNoPlan)).toContain('no billing plan');
    expect(rowOf(ja, ids.quiet)).toContain('請求書が未発行');
    expect(rowOf(ja, ids.quiet)).toContain('stripe 500 api_error: Stripe is down');
    for (const healthy of [ids.healthy, ids.notWon, ids.keptPlan, ids.fresh, ids.replayed]) {
      expect(ja).not.toContain(`data-deal-id="${healthy}"`);
    }
    const en = await page('en', '/dashboard/deals?attention=true');
    expect(rowOf(en, ids.refused)).toContain('Not billable');
    expect(rowOf(en, ids.parked)).toContain('Due, not issued');

    const box = await page('en', `/dashboard/deals/${ids.refused}`);
    expect(box).toContain(`Not billable: plan refused (${TOO_MANY}).`);
  });
});
