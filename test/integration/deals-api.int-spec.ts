import { Pool } from 'pg';

import { ProviderSimulator } from '../../tools/simulator/provider-sim/simulator';
import { RunningHub, flushTestRedis, startHub, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';
import { PrismaService } from '../../src/prisma/prisma.service';
import { closeTestPrisma, createContract, createDeal, openTestPrisma } from '../factories';
import { parseCsv } from '../support/csv';

/**
 * Deals admin API (CONTRACT §6): creation with Idempotency-Key, billing plans, list and search,
 * detail, re-bill refusal, roles, reconciliation against Stripe (the provider simulator) and the
 * OpenAPI document. Runs the built hub (`npm run build` first) against real Postgres and Redis.
 */

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const PLAN = {
  currency: 'jpy',
  taxRatePercent: 10,
  billingCount: 'one_time',
  items: [
    { key: 'deposit', label: '着手金', percent: 30, trigger: 'contract.signed' },
    {
      key: 'design',
      label: 'Design',
      percent: 30,
      trigger: 'milestone.accepted',
      expectedInvoiceDate: '2026-12-15',
      acceptanceDays: 5,
      silentApproval: true,
    },
    { key: 'balance', label: '残金', amount: 120000, trigger: 'milestone.accepted' },
  ],
};

async function request(
  hub: RunningHub,
  method: string,
  urlPath: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${hub.url}${urlPath}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body };
}

async function emptyDeals(db: Pool) {
  await truncateAll(db);
  await db.query(
    `TRUNCATE deal, billing_item, invoice, contract, timeline_entry, stage_trigger,
              idempotency_record, crm_note RESTART IDENTITY CASCADE`,
  );
}

describe('deals admin API', () => {
  let hub: RunningHub;
  let sim: ProviderSimulator;
  let db: Pool;
  const tokens = { viewer: '', finance: '' };

  const admin = (
    method: string,
    urlPath: string,
    body?: unknown,
    headers?: Record<string, string>,
  ) => request(hub, method, urlPath, { token: TEST_SECRETS.ADMIN_TOKEN, body, headers });
  const dealCount = async () => Number((await db.query('SELECT count(*) FROM deal')).rows[0].count);

  beforeAll(async () => {
    db = testDb();
    await emptyDeals(db);
    await flushTestRedis();
    sim = await ProviderSimulator.start({ port: 0 });
    hub = await startHub({
      STRIPE_SECRET_KEY: 'sk_test_closeloop_deals_api',
      STRIPE_API_BASE: sim.url,
    });
    sim.setTarget({ hubUrl: hub.url, stripeWebhookSecret: TEST_SECRETS.STRIPE_WEBHOOK_SECRET });
    for (const role of ['viewer', 'finance'] as const) {
      const res = await admin('POST', '/api/tokens', { name: `deals-${role}`, role });
      expect(res.status).toBe(201);
      tokens[role] = res.body.token;
    }
  });

  afterAll(async () => {
    await hub?.stop();
    await sim?.close();
    await db?.end();
  });

  describe('POST /api/deals', () => {
    it('creates a deal with its plan, initial stage, timeline and audit entry', async () => {
      const res = await admin('POST', '/api/deals', {
        name: 'Website renewal',
        customer: {
          company: '株式会社サンプル',
          contactName: '山田 太郎',
          email: 'yamada@example.jp',
        },
        amount: 1_000_000,
        crmDealId: 'crm-create-1',
        timeZone: 'Asia/Tokyo',
        stage: 'NEGOTIATING',
        billingPlan: PLAN,
      });
      expect(res.status).toBe(201);
      const d = res.body;
      expect(d.id).toMatch(/^cl_deal_[0-9a-f-]{36}$/);
      expect(d).toMatchObject({
        name: 'Website renewal',
        stage: 'NEGOTIATING',
        source: 'admin',
        crmDealId: 'crm-create-1',
        currency: 'jpy',
        amount: 1_000_000,
        timeZone: 'Asia/Tokyo',
        customer: {
          company: '株式会社サンプル',
          contactName: '山田 太郎',
          email: 'yamada@example.jp',
        },
        planError: null,
        plan: { currency: 'jpy', taxRatePercent: 10 },
      });
      expect(d.items.map((i: { key: string; amount: number }) => [i.key, i.amount])).toEqual([
        ['deposit', 300_000],
        ['design', 300_000],
        ['balance', 120_000],
      ]);
      // Not WON yet: nothing is due.
      expect(d.items.every((i: { billingStatus: string }) => i.billingStatus === 'NOT_READY')).toBe(
        true,
      );
      const kinds = d.timeline.map((t: { kind: string }) => t.kind);
      expect(kinds).toEqual(expect.arrayContaining(['admin', 'plan', 'transition']));
      const transition = d.timeline.find((t: { kind: string }) => t.kind === 'transition');
      expect(transition).toMatchObject({
        fromStage: 'REFERRED',
        toStage: 'NEGOTIATING',
        cause: 'admin ADMIN_TOKEN',
      });
      const triggers = await db.query(
        `SELECT type, target, event_id, cause FROM stage_trigger WHERE deal_id = $1`,
        [d.id],
      );
      expect(triggers.rows).toEqual([
        { type: 'crm.stage', target: 'NEGOTIATING', event_id: null, cause: 'admin ADMIN_TOKEN' },
      ]);
      const audit = await db.query(`SELECT action, actor FROM audit_log WHERE target = $1`, [d.id]);
      expect(audit.rows).toEqual([{ action: 'deal.create', actor: 'ADMIN_TOKEN' }]);
    });

    it('replays the stored reply for a repeated Idempotency-Key and refuses another body with 422', async () => {
      const body = { name: 'Idempotent deal', amount: 500_000, billingPlan: PLAN };
      const key = { 'idempotency-key': 'create-once-1' };
      const before = await dealCount();
      const first = await admin('POST', '/api/deals', body, key);
      expect(first.status).toBe(201);
      expect(first.headers.get('idempotent-replayed')).toBeNull();

      // Same body with its keys in another order: the same request.
      const reordered = { billingPlan: PLAN, amount: 500_000, name: 'Idempotent deal' };
      const again = await admin('POST', '/api/deals', reordered, key);
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body).toEqual(first.body);
      expect(await dealCount()).toBe(before + 1);

      const other = await admin('POST', '/api/deals', { ...body, amount: 600_000 }, key);
      expect(other.status).toBe(422);
      expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
      expect(await dealCount()).toBe(before + 1);
    });

    it('creates exactly one deal for 10 concurrent requests with one Idempotency-Key', async () => {
      const before = await dealCount();
      const body = { name: 'Concurrent deal', stage: 'APPOINTMENT' };
      const answers = await Promise.all(
        Array.from({ length: 10 }, () =>
          admin('POST', '/api/deals', body, { 'idempotency-key': 'concurrent-1' }),
        ),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(10).fill(201));
      expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
      expect(answers.filter((a) => a.headers.get('idempotent-replayed') === 'true')).toHaveLength(
        9,
      );
      expect(await dealCount()).toBe(before + 1);
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM deal WHERE name = $1`, [
        'Concurrent deal',
      ]);
      expect(rows[0].n).toBe(1);
    });

    it('refuses an invalid plan with 400 listing every error, and creates nothing', async () => {
      const before = await dealCount();
      const res = await admin(
        'POST',
        '/api/deals',
        {
          name: 'Bad plan',
          amount: 100_000,
          billingPlan: {
            currency: 'jpy',
            items: [
              { key: 'a', label: 'A', percent: 130, trigger: 'contract.signed' },
              { key: 'b', label: 'B', amount: 1000, trigger: 'when.ever' },
            ],
          },
        },
        { 'idempotency-key': 'bad-plan-1' },
      );
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('INVALID_BILLING_PLAN');
      expect(res.body.error.details).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^items\[0\]\.percent: /),
          expect.stringMatching(/^items\[1\]\.trigger: /),
        ]),
      );
      expect(await dealCount()).toBe(before);
      const idem = await db.query(`SELECT count(*)::int AS n FROM idempotency_record`);
      expect(idem.rows[0].n).toBe(2); // the two keys used above, not this one
    });

    it('refuses a malformed body with one line per field', async () => {
      const res = await admin('POST', '/api/deals', {
        name: '',
        amount: 12.5,
        timeZone: 'Mars/Olympus',
        stage: 'CLOSED',
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      for (const field of ['name', 'amount', 'timeZone', 'stage']) {
        expect(res.body.error.message).toContain(`${field}: `);
      }
    });

    it('is for admins only: a viewer gets 403, no token 401', async () => {
      const body = { name: 'Not allowed' };
      const viewer = await request(hub, 'POST', '/api/deals', { token: tokens.viewer, body });
      expect(viewer.status).toBe(403);
      expect(viewer.body.error.code).toBe('FORBIDDEN');
      expect((await request(hub, 'POST', '/api/deals', { body })).status).toBe(401);
    });
  });

  describe('PUT /api/deals/:id/billing-plan', () => {
    it('replaces the plan, and a refused plan changes nothing', async () => {
      const created = await admin('POST', '/api/deals', { name: 'Plan change', amount: 200_000 });
      expect(created.status).toBe(201);
      const id = created.body.id;
      expect(created.body.plan).toBeNull();

      const plan = {
        currency: 'jpy',
        items: [{ key: 'all', label: 'All', percent: 100, trigger: 'milestone.accepted' }],
      };
      const put = await admin('PUT', `/api/deals/${id}/billing-plan`, plan);
      expect(put.status).toBe(200);
      expect(put.body.plan).toMatchObject({ currency: 'jpy', taxRatePercent: 0 });
      expect(put.body.items).toEqual([
        expect.objectContaining({ key: 'all', amount: 200_000, billingStatus: 'NOT_READY' }),
      ]);
      const timelineBefore = put.body.timeline.length;

      const bad = await admin('PUT', `/api/deals/${id}/billing-plan`, {
        currency: 'usd',
        items: [],
      });
      expect(bad.status).toBe(400);
      expect(bad.body.error.code).toBe('INVALID_BILLING_PLAN');
      expect(bad.body.error.details.length).toBeGreaterThanOrEqual(2);
      const after = await request(hub, 'GET', `/api/deals/${id}`, { token: tokens.viewer });
      expect(after.body.plan).toEqual(put.body.plan);
      expect(after.body.planError).toBeNull();
      expect(after.body.timeline).toHaveLength(timelineBefore);

      expect((await admin('PUT', '/api/deals/cl_deal_nope/billing-plan', plan)).status).toBe(404);
      const viewer = await request(hub, 'PUT', `/api/deals/${id}/billing-plan`, {
        token: tokens.viewer,
        body: plan,
      });
      expect(viewer.status).toBe(403);
    });
  });

  describe('GET /api/deals', () => {
    it('lists newest first with filters, pagination and a search by any id', async () => {
      const a = await admin('POST', '/api/deals', {
        name: 'Search A',
        crmDealId: 'crm-search-a',
        stage: 'APPOINTMENT',
      });
      const b = await admin('POST', '/api/deals', {
        name: 'Search B',
        crmDealId: 'crm-search-b',
        stage: 'LOST',
      });
      expect([a.status, b.status]).toEqual([201, 201]);

      const all = await request(hub, 'GET', '/api/deals?limit=200', { token: tokens.viewer });
      expect(all.status).toBe(200);
      const ids = all.body.items.map((d: { id: string }) => d.id);
      expect(ids.indexOf(b.body.id)).toBeLessThan(ids.indexOf(a.body.id));
      expect([...ids].sort().reverse()).toEqual(ids);
      const item = all.body.items.find((d: { id: string }) => d.id === a.body.id);
      expect(item).toMatchObject({
        name: 'Search A',
        stage: 'APPOINTMENT',
        crmDealId: 'crm-search-a',
        referral: null,
        currency: 'jpy',
        billing: { invoicedCount: 0, invoicedAmount: 0, paidCount: 0, paidAmount: 0 },
      });
      expect(item.updatedAt).toEqual(expect.any(String));

      const byQ = await request(hub, 'GET', '/api/deals?q=crm-search-a', { token: tokens.viewer });
      expect(byQ.body.items.map((d: { id: string }) => d.id)).toEqual([a.body.id]);
      const byHubId = await request(hub, 'GET', `/api/deals?q=${a.body.id}`, {
        token: tokens.viewer,
      });
      expect(byHubId.body.items.map((d: { id: string }) => d.id)).toEqual([a.body.id]);
      const byCrm = await request(hub, 'GET', '/api/deals?crmDealId=crm-search-b', {
        token: tokens.viewer,
      });
      expect(byCrm.body.items.map((d: { id: string }) => d.id)).toEqual([b.body.id]);
      const lost = await request(hub, 'GET', '/api/deals?stage=LOST', { token: tokens.viewer });
      expect(lost.body.items.every((d: { stage: string }) => d.stage === 'LOST')).toBe(true);
      expect(lost.body.items.map((d: { id: string }) => d.id)).toContain(b.body.id);

      const page1 = await request(hub, 'GET', '/api/deals?limit=2', { token: tokens.viewer });
      expect(page1.body.items).toHaveLength(2);
      expect(page1.body.nextCursor).toBe(page1.body.items[1].id);
      const page2 = await request(
        hub,
        'GET',
        `/api/deals?limit=2&cursor=${page1.body.nextCursor}`,
        {
          token: tokens.viewer,
        },
      );
      expect(page2.body.items[0].id < page1.body.items[1].id).toBe(true);

      const bad = await request(hub, 'GET', '/api/deals?stage=NOPE', { token: tokens.viewer });
      expect(bad.status).toBe(400);
      expect((await request(hub, 'GET', '/api/deals')).status).toBe(401);
    });
  });

  describe('GET /api/deals/:id and re-bill', () => {
    it('answers 404 for an unknown deal', async () => {
      const res = await request(hub, 'GET', '/api/deals/cl_deal_unknown', { token: tokens.viewer });
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
    });

    it('refuses to re-bill an item that is not void (409) and unknown items (404)', async () => {
      const created = await admin('POST', '/api/deals', {
        name: 'No rebill',
        amount: 100_000,
        billingPlan: {
          currency: 'jpy',
          items: [{ key: 'all', label: 'All', percent: 100, trigger: 'milestone.accepted' }],
        },
      });
      const id = created.body.id;
      const res = await admin('POST', `/api/deals/${id}/items/all/rebill`);
      expect(res.status).toBe(409);
      expect(res.body.error).toMatchObject({ code: 'NOT_VOID' });
      expect(res.body.error.message).toContain('NOT_READY');
      expect((await admin('POST', `/api/deals/${id}/items/ghost/rebill`)).status).toBe(404);
      expect((await admin('POST', `/api/deals/cl_deal_x/items/all/rebill`)).status).toBe(404);
      const viewer = await request(hub, 'POST', `/api/deals/${id}/items/all/rebill`, {
        token: tokens.viewer,
      });
      expect(viewer.status).toBe(403);
    });

    it('shows a deal with thousands of timeline entries and events by its newest ones, with totals', async () => {
      const created = await admin('POST', '/api/deals', { name: 'Busy deal', amount: 100_000 });
      const id: string = created.body.id;
      await db.query(
        `INSERT INTO timeline_entry (deal_id, kind, message, cause)
         SELECT $1, 'event', 'burst ' || n, 'test' FROM generate_series(1, 1200) AS n`,
        [id],
      );
      await db.query(
        `INSERT INTO webhook_event (id, provider, provider_event_id, type, status, payload, headers,
                                    correlation_id, deal_id)
         SELECT 'evt_busy_' || lpad(n::text, 5, '0'), 'milestones', 'msg_busy_' || n,
                'milestone.progress', 'PROCESSED', '{}', '{}', 'c', $1
           FROM generate_series(1, 450) AS n`,
        [id],
      );
      const res = await request(hub, 'GET', `/api/deals/${id}`, { token: tokens.viewer });
      expect(res.status).toBe(200);
      expect(res.body.timelineTotal).toBeGreaterThan(1200);
      expect(res.body.timeline).toHaveLength(500);
      expect(res.body.timeline.at(-1).message).toBe('burst 1200');
      expect(res.body.timeline[0].message).toBe('burst 701');
      expect(res.body.eventsTotal).toBe(450);
      expect(res.body.events).toHaveLength(200);
      expect(res.body.events[0].id).toBe('evt_busy_00251');
      expect(res.body.events.at(-1).id).toBe('evt_busy_00450');
    });
  });

  describe('billing in Stripe and reconciliation', () => {
    let dealId: string;
    let depositInvoice: { stripeInvoiceId: string; billingKey: string };

    it('bills a WON deal once and shows the invoice on the deal, then finds it by its Stripe ids', async () => {
      const created = await admin('POST', '/api/deals', {
        name: 'Reconciled deal',
        customer: { company: 'Recon K.K.', email: 'billing@recon.example' },
        amount: 400_000,
        crmDealId: 'crm-recon-1',
        stage: 'WON',
        billingPlan: PLAN,
      });
      expect(created.status).toBe(201);
      dealId = created.body.id;
      expect(created.body.stage).toBe('WON');
      const deposit = created.body.items.find((i: { key: string }) => i.key === 'deposit');
      expect(deposit.billingStatus).toBe('READY');

      const detail = await waitFor(
        async () => {
          const res = await request(hub, 'GET', `/api/deals/${dealId}`, { token: tokens.viewer });
          const item = res.body.items.find((i: { key: string }) => i.key === 'deposit');
          return item.billingStatus === 'INVOICE_POSTED' ? res.body : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'the deposit invoice to be POSTED' },
      );
      const item = detail.items.find((i: { key: string }) => i.key === 'deposit');
      expect(item.invoices).toHaveLength(1);
      depositInvoice = item.invoices[0];
      expect(item.invoices[0]).toMatchObject({
        billingKey: `${dealId}|deposit`,
        state: 'POSTED',
        amount: 120_000,
        taxAmount: 12_000,
        total: 132_000,
        stripeInvoiceId: expect.stringMatching(/^in_/),
        stripeNumber: expect.any(String),
      });
      expect(detail.stripeCustomerId).toMatch(/^cus_/);
      expect(detail.billing).toMatchObject({ invoicedCount: 1, invoicedAmount: 120_000 });
      // Stripe's webhooks about the invoice land on the deal's event list once processed.
      const events = await waitFor(
        async () => {
          const res = await request(hub, 'GET', `/api/deals/${dealId}`, { token: tokens.viewer });
          return res.body.events.length > 0 ? res.body.events : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'Stripe events on the deal' },
      );
      expect(events[0]).toEqual(
        expect.objectContaining({
          provider: 'stripe',
          type: expect.stringMatching(/^invoice\./),
          status: expect.any(String),
          receivedAt: expect.any(String),
        }),
      );

      for (const q of [item.invoices[0].stripeInvoiceId, item.invoices[0].stripeNumber]) {
        const found = await request(hub, 'GET', `/api/deals?q=${encodeURIComponent(q)}`, {
          token: tokens.viewer,
        });
        expect(found.body.items.map((d: { id: string }) => d.id)).toEqual([dealId]);
      }
      const notVoid = await admin('POST', `/api/deals/${dealId}/items/deposit/rebill`);
      expect(notVoid.status).toBe(409);
      expect(notVoid.body.error.message).toContain('INVOICE_POSTED');
    });

    it('reconciles clean, then names an invoice made outside the hub (JSON and CSV)', async () => {
      const clean = await request(hub, 'GET', `/api/reconciliation?dealId=${dealId}`, {
        token: tokens.finance,
      });
      expect(clean.status).toBe(200);
      expect(clean.body.generatedAt).toEqual(expect.any(String));
      expect(clean.body.deals).toEqual([
        expect.objectContaining({
          dealId,
          contracted: 400_000,
          invoicedHub: 120_000,
          invoicedStripe: 120_000,
          paid: 0,
          mismatches: [],
        }),
      ]);

      const customer = (await request(hub, 'GET', `/api/deals/${dealId}`, { token: tokens.viewer }))
        .body.stripeCustomerId as string;
      const outside = sim.stripe.createInvoiceOutsideHub({
        customer,
        amount: 99_999,
        currency: 'jpy',
        description: 'made by hand in the Stripe dashboard',
        status: 'open',
        emit: false,
      });

      const report = await request(hub, 'GET', '/api/reconciliation', { token: tokens.finance });
      expect(report.status).toBe(200);
      const first = report.body.deals[0];
      expect(first.dealId).toBe(dealId); // newest first: the last deal created
      expect(report.body.nextCursor).toBeNull(); // fewer deals than a page
      expect(first.invoicedStripe).toBe(120_000 + 99_999);
      expect(first.mismatches).toEqual([
        expect.objectContaining({
          kind: 'unknown_invoice',
          stripeInvoiceId: outside.id,
          message: expect.stringContaining('not made by the hub'),
        }),
      ]);
      // The other planned deals have no invoices and nothing wrong.
      expect(
        report.body.deals
          .slice(1)
          .every((d: { mismatches: unknown[] }) => d.mismatches.length === 0),
      ).toBe(true);
      expect(report.body.summary).toMatchObject({ dealsWithMismatches: 1, mismatches: 1 });

      const csv = await request(hub, 'GET', '/api/reconciliation?format=csv', {
        token: tokens.finance,
      });
      expect(csv.status).toBe(200);
      expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
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
      // The same deals as the (only) page, in its order.
      expect(rows.slice(1).map((r) => r[0])).toEqual(
        report.body.deals.map((d: { dealId: string }) => d.dealId),
      );
      const row = rows.find((r) => r[0] === dealId)!;
      expect(row.slice(1, 8)).toEqual([
        'Reconciled deal',
        'crm-recon-1',
        'jpy',
        '400000',
        '120000',
        String(120_000 + 99_999),
        '0',
      ]);
      expect(row[8]).toContain('unknown_invoice');
      expect(row[8]).toContain(outside.id);
      expect(depositInvoice.stripeInvoiceId).toMatch(/^in_/);
    });

    it('re-bills a voided item only on the explicit admin action, once', async () => {
      sim.stripe.voidInvoice(depositInvoice.stripeInvoiceId);
      await waitFor(
        async () => {
          const res = await request(hub, 'GET', `/api/deals/${dealId}`, { token: tokens.viewer });
          const item = res.body.items.find((i: { key: string }) => i.key === 'deposit');
          return item.billingStatus === 'VOID';
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'the deposit to be VOID' },
      );
      const [first, second] = await Promise.all([
        admin('POST', `/api/deals/${dealId}/items/deposit/rebill`),
        admin('POST', `/api/deals/${dealId}/items/deposit/rebill`),
      ]);
      const statuses = [first.status, second.status].sort();
      expect(statuses).toEqual([202, 409]);
      const accepted = first.status === 202 ? first : second;
      expect(accepted.body).toEqual({
        billingKey: `${dealId}|deposit|r1`,
        replaces: `${dealId}|deposit`,
      });
      const item = await waitFor(
        async () => {
          const res = await request(hub, 'GET', `/api/deals/${dealId}`, { token: tokens.viewer });
          const dep = res.body.items.find((i: { key: string }) => i.key === 'deposit');
          return dep.billingStatus === 'INVOICE_POSTED' ? dep : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'the re-bill to be POSTED' },
      );
      expect(item.invoices.map((i: { billingKey: string; state: string }) => i.state)).toEqual([
        'VOID',
        'POSTED',
      ]);
      expect(item.invoices[1].stripeInvoiceId).not.toBe(depositInvoice.stripeInvoiceId);
      const audit = await db.query(
        `SELECT count(*)::int AS n FROM audit_log WHERE action = 'deal.item.rebill' AND target = $1`,
        [dealId],
      );
      expect(audit.rows[0].n).toBe(1);
      // Stripe now holds the void original and the re-bill: only the made-by-hand one is named.
      const report = await request(hub, 'GET', `/api/reconciliation?dealId=${dealId}`, {
        token: tokens.finance,
      });
      expect(report.body.deals[0].mismatches.map((m: { kind: string }) => m.kind)).toEqual([
        'unknown_invoice',
      ]);
      expect(report.body.deals[0].invoicedHub).toBe(120_000);
    });

    it('is for finance and admin; viewers get 403', async () => {
      const res = await request(hub, 'GET', '/api/reconciliation', { token: tokens.viewer });
      expect(res.status).toBe(403);
      const unknown = await request(hub, 'GET', '/api/reconciliation?dealId=cl_deal_nope', {
        token: tokens.finance,
      });
      expect(unknown.status).toBe(404);
    });
  });

  describe('OpenAPI', () => {
    it('documents every /api route at /docs-json', async () => {
      const res = await request(hub, 'GET', '/docs-json');
      expect(res.status).toBe(200);
      const paths = res.body.paths as Record<string, Record<string, { summary?: string }>>;
      const expected: [string, string][] = [
        ['/api/deals', 'get'],
        ['/api/deals', 'post'],
        ['/api/deals/{id}', 'get'],
        ['/api/deals/{id}/billing-plan', 'put'],
        ['/api/deals/{id}/items/{key}/rebill', 'post'],
        ['/api/deals/{id}/contract/document', 'get'],
        ['/api/deals/{id}/contract/certificate', 'get'],
        ['/api/reconciliation', 'get'],
        ['/api/events', 'get'],
        ['/api/events/{id}', 'get'],
        ['/api/events/{id}/replay', 'post'],
        ['/api/dead-letters', 'get'],
        ['/api/dead-letters/{id}/replay', 'post'],
        ['/api/dead-letters/{id}', 'delete'],
        ['/api/tokens', 'post'],
        ['/api/tokens', 'get'],
        ['/api/tokens/{id}', 'delete'],
      ];
      for (const [p, method] of expected) {
        expect({ p, method, summary: paths[p]?.[method]?.summary }).toEqual({
          p,
          method,
          summary: expect.any(String),
        });
      }
      const document = paths['/api/deals/{id}/contract/document'].get as {
        responses: Record<string, { content?: Record<string, unknown> }>;
      };
      expect(Object.keys(document.responses).sort()).toEqual(
        ['200', '401', '403', '404', '409', '502', '503'].sort(),
      );
      expect(document.responses['200'].content).toHaveProperty('application/pdf');
    });
  });
});

describe('contract documents without DocuSign', () => {
  let hub: RunningHub;
  let db: Pool;
  let prisma: PrismaService;

  beforeAll(async () => {
    db = testDb();
    prisma = openTestPrisma();
    await emptyDeals(db);
    await createDeal(prisma, { id: 'cl_deal_docs_signed', stage: 'WON' });
    await createContract(prisma, { dealId: 'cl_deal_docs_signed', status: 'COMPLETED' });
    await createDeal(prisma, { id: 'cl_deal_docs_declined', stage: 'LOST' });
    await createContract(prisma, { dealId: 'cl_deal_docs_declined', status: 'DECLINED' });
    hub = await startHub({ ROLE: 'api' });
  });
  afterAll(async () => {
    await hub?.stop();
    await closeTestPrisma(prisma);
    await db?.end();
  });

  it('answers 503 ESIGNATURE_NOT_CONFIGURED for a completed contract, 409 for a declined one', async () => {
    const token = TEST_SECRETS.ADMIN_TOKEN;
    const signed = await request(hub, 'GET', '/api/deals/cl_deal_docs_signed/contract/document', {
      token,
    });
    expect(signed.status).toBe(503);
    expect(signed.body).toEqual({
      error: {
        code: 'ESIGNATURE_NOT_CONFIGURED',
        message: 'contract documents are read from DocuSign: it is not configured',
      },
    });
    const declined = await request(
      hub,
      'GET',
      '/api/deals/cl_deal_docs_declined/contract/certificate',
      { token },
    );
    expect(declined.status).toBe(409);
    expect(declined.body).toMatchObject({ error: { code: 'CONTRACT_NOT_COMPLETED' } });
  });
});

describe('reconciliation without Stripe', () => {
  let hub: RunningHub;

  beforeAll(async () => {
    hub = await startHub({ STRIPE_SECRET_KEY: undefined, ROLE: 'api' });
  });
  afterAll(async () => {
    await hub?.stop();
  });

  it('answers 503 STRIPE_NOT_CONFIGURED (and the api role boots alone)', async () => {
    const res = await request(hub, 'GET', '/api/reconciliation', {
      token: TEST_SECRETS.ADMIN_TOKEN,
    });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('STRIPE_NOT_CONFIGURED');
  });
});
