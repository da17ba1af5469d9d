import { Pool } from 'pg';

import { reconciliationCsv } from '../../src/admin/reconciliation.service';
import { PrismaService } from '../../src/prisma/prisma.service';
import { ProviderSimulator } from '../../tools/simulator/provider-sim/simulator';
import { closeTestPrisma, createDeal, createInvoice, openTestPrisma } from '../factories';
import { parseCsv } from '../support/csv';
import { RunningHub, flushTestRedis, startHub, testDb, truncateAll } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';

/**
 * Bounded reconciliation (the issue: one request used to read Stripe for every deal): pages of
 * deals newest first, only the page's deals read from Stripe, the CSV streamed page by page with
 * its header unchanged, and reconciliation's own Stripe budget shared by every process through
 * Redis. The built hub (ROLE=api), real Postgres and Redis, Stripe played by the simulator.
 */

interface Answer {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const STRIPE_KEY = 'sk_test_closeloop_reconciliation_paging';
const PLAN = {
  currency: 'jpy',
  items: [{ key: 'deposit', label: '着手金', amount: 100_000, trigger: 'contract.signed' }],
};
/** The CSV header of the contract, written out (not imported) so a change to it fails here. */
const HEADER = [
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
];
/** A hub invoice whose Stripe invoice does not exist (retrieved by id: missing_invoice). */
const GONE_INVOICE = 'in_gone_reconciliation_paging';

describe('reconciliation: bounded pages', () => {
  let sim: ProviderSimulator;
  let db: Pool;
  let prisma: PrismaService;
  let n = 0;
  /** Ids of the deals reconciliation lists (a plan or invoices), oldest first. */
  const reconcilable: string[] = [];
  const ids: Record<'gone' | 'messy' | 'leadOnly' | 'clean', string> = {} as never;

  async function get(hub: RunningHub, urlPath: string): Promise<Answer> {
    const res = await fetch(`${hub.url}${urlPath}`, {
      headers: { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` },
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // text/csv
    }
    return { status: res.status, headers: res.headers, body };
  }

  /** Every page from the first, following nextCursor. */
  async function allPages(hub: RunningHub, limit: number) {
    const pages: Answer['body'][] = [];
    let cursor: string | null = null;
    do {
      const res: Answer = await get(
        hub,
        `/api/reconciliation?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.status).toBe(200);
      pages.push(res.body);
      cursor = res.body.nextCursor;
      expect(pages.length).toBeLessThan(100);
    } while (cursor);
    return pages;
  }

  const dealIds = (page: { deals: { dealId: string }[] }) => page.deals.map((d) => d.dealId);
  const newestFirst = () => [...reconcilable].reverse();

  async function seedDeal(
    name: string,
    opts: { plan?: boolean; customer?: string } = {},
  ): Promise<string> {
    const id = `cl_deal_0199${String(++n).padStart(4, '0')}-0000-7000-8000-000000000000`;
    await createDeal(prisma, {
      id,
      name,
      stage: 'WON',
      amount: 100_000,
      billingCustomerId: opts.customer ?? null,
      ...(opts.plan === false ? {} : { billingPlan: PLAN }),
      bare: true,
      history: false,
    });
    if (opts.plan !== false) reconcilable.push(id);
    return id;
  }

  async function seedInvoice(dealId: string, customer: string, stripeInvoiceId: string) {
    const { billingKey } = await createInvoice(prisma, {
      id: `inv_${dealId}|deposit`,
      dealId,
      itemKey: 'deposit',
      amount: 100_000,
      taxRatePercent: 0,
      description: 'deposit',
      state: 'POSTED',
      billingCustomerId: customer,
      providerInvoiceId: stripeInvoiceId,
      postedAt: new Date(),
      bare: true,
    });
    return billingKey;
  }

  beforeAll(async () => {
    db = testDb();
    prisma = openTestPrisma();
    await truncateAll(db);
    await flushTestRedis();
    sim = await ProviderSimulator.start({ port: 0 });

    // Oldest: the hub has an invoice Stripe does not (missing_invoice).
    const goneCustomer = sim.stripe.createCustomer({ email: 'gone@example.jp', name: 'Gone' });
    ids.gone = await seedDeal('Gone K.K.', { customer: goneCustomer.id });
    await seedInvoice(ids.gone, goneCustomer.id, GONE_INVOICE);
    for (const i of [1, 2, 3]) await seedDeal(`Planned ${i} K.K.`);
    // An invoice made by hand on the deal's customer (unknown_invoice).
    const messyCustomer = sim.stripe.createCustomer({ email: 'messy@example.jp', name: 'Messy' });
    ids.messy = await seedDeal('Messy K.K.', { customer: messyCustomer.id });
    sim.stripe.createInvoiceOutsideHub({
      customer: messyCustomer.id,
      amount: 50_000,
      currency: 'jpy',
      description: 'made by hand',
      status: 'open',
      emit: false,
    });
    // Neither a plan nor invoices: not reconciled (unless asked for by dealId).
    ids.leadOnly = await seedDeal('Lead only K.K.', { plan: false });
    for (const i of [4, 5]) await seedDeal(`Planned ${i} K.K.`);
    // Newest: invoiced in the hub and in Stripe alike.
    const cleanCustomer = sim.stripe.createCustomer({ email: 'clean@example.jp', name: 'Clean' });
    ids.clean = await seedDeal('Clean K.K.', { customer: cleanCustomer.id });
    const billingKey = `${ids.clean}|deposit`;
    const twin = sim.stripe.createInvoiceOutsideHub({
      customer: cleanCustomer.id,
      amount: 100_000,
      currency: 'jpy',
      description: 'deposit',
      status: 'open',
      emit: false,
      metadata: {
        closeloop_deal_id: ids.clean,
        closeloop_item_key: 'deposit',
        closeloop_billing_key: billingKey,
      },
    });
    await seedInvoice(ids.clean, cleanCustomer.id, twin.id);
  });

  afterAll(async () => {
    await sim?.close();
    await closeTestPrisma(prisma);
    await db?.end();
  });

  describe('pages', () => {
    let hub: RunningHub;

    beforeAll(async () => {
      hub = await startHub({
        ROLE: 'api',
        STRIPE_SECRET_KEY: STRIPE_KEY,
        STRIPE_API_BASE: sim.url,
        // Quick pages here; the budget itself is checked below.
        STRIPE_RECONCILIATION_RATE_PER_SEC: '20',
      });
    });
    afterAll(async () => {
      await hub?.stop();
    });

    it('pages newest first, every deal exactly once, each page with its own summary and cursor', async () => {
      const pages = await allPages(hub, 3);
      expect(pages.map((p) => p.deals.length)).toEqual([3, 3, 2]);
      expect(pages.flatMap(dealIds)).toEqual(newestFirst());
      expect(pages.flatMap(dealIds)).not.toContain(ids.leadOnly);
      expect(pages.map((p) => p.nextCursor === null)).toEqual([false, false, true]);
      for (const p of pages) {
        type Deal = { mismatches: unknown[] };
        expect(p.summary).toEqual({
          deals: p.deals.length,
          dealsWithMismatches: p.deals.filter((d: Deal) => d.mismatches.length > 0).length,
          mismatches: p.deals.reduce((sum: number, d: Deal) => sum + d.mismatches.length, 0),
        });
        expect(p.generatedAt).toEqual(expect.any(String));
      }
      // Every mismatch kind still named, in its words, on whichever page its deal falls.
      const byId = new Map(pages.flatMap((p) => p.deals).map((d) => [d.dealId, d]));
      expect(byId.get(ids.clean).mismatches).toEqual([]);
      expect(byId.get(ids.messy).mismatches).toEqual([
        expect.objectContaining({
          kind: 'unknown_invoice',
          message: expect.stringContaining("of the deal's customer was not made by the hub"),
        }),
      ]);
      expect(byId.get(ids.gone).mismatches).toEqual([
        expect.objectContaining({
          kind: 'missing_invoice',
          stripeInvoiceId: GONE_INVOICE,
          message: `the hub's invoice ${GONE_INVOICE} for deposit (POSTED) does not exist in Stripe`,
        }),
      ]);
      // A page size that fits them all: one page, no cursor.
      const one = await get(hub, '/api/reconciliation');
      expect(dealIds(one.body)).toEqual(newestFirst());
      expect(one.body.nextCursor).toBeNull();
    });

    it("reads only the page's deals from Stripe", async () => {
      const first = await get(hub, '/api/reconciliation?limit=1');
      expect(dealIds(first.body)).toEqual([ids.clean]);
      // The next two deals have a plan, no Stripe customer and no invoices: one search each.
      const since = sim.requests.last()?.seq ?? 0;
      const second = await get(
        hub,
        `/api/reconciliation?limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`,
      );
      expect(dealIds(second.body)).toEqual(newestFirst().slice(1, 3));
      const reads = sim.requests.list({ provider: 'stripe', afterSeq: since });
      expect(reads.map((r) => `${r.method} ${r.path}`)).toEqual([
        'GET /v1/invoices/search',
        'GET /v1/invoices/search',
      ]);
    });

    it('refuses a limit outside 1–200', async () => {
      for (const limit of ['0', '201', 'ten']) {
        const res = await get(hub, `/api/reconciliation?limit=${limit}`);
        expect({ limit, status: res.status, code: res.body.error?.code }).toEqual({
          limit,
          status: 400,
          code: 'VALIDATION_FAILED',
        });
      }
      const max = await get(hub, '/api/reconciliation?limit=200');
      expect(max.status).toBe(200);
    });

    it('dealId reconciles that deal alone, whatever the cursor; an unknown deal is 404', async () => {
      // A cursor past the deal would leave it out of a page: dealId ignores it.
      const one = await get(
        hub,
        `/api/reconciliation?dealId=${ids.messy}&limit=1&cursor=${encodeURIComponent(ids.gone)}`,
      );
      expect(one.status).toBe(200);
      expect(dealIds(one.body)).toEqual([ids.messy]);
      expect(one.body.nextCursor).toBeNull();
      expect(one.body.summary).toEqual({ deals: 1, dealsWithMismatches: 1, mismatches: 1 });
      // Asked for by id, a deal without plan or invoices is reconciled too (nothing to name).
      const lead = await get(hub, `/api/reconciliation?dealId=${ids.leadOnly}`);
      expect(lead.body.deals).toEqual([
        expect.objectContaining({ dealId: ids.leadOnly, mismatches: [] }),
      ]);
      const csv = await get(hub, `/api/reconciliation?format=csv&dealId=${ids.messy}`);
      expect(parseCsv(csv.body).map((r) => r[0])).toEqual(['deal_id', ids.messy]);
      expect((await get(hub, '/api/reconciliation?dealId=cl_deal_nope')).status).toBe(404);
    });

    it('streams the CSV page by page: the same header, every deal once, equal to the pages', async () => {
      const pages = await allPages(hub, 3);
      const res = await get(hub, '/api/reconciliation?format=csv&limit=3');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(res.headers.get('content-disposition')).toMatch(
        /^attachment; filename="reconciliation-.+\.csv"$/,
      );
      // Streamed (chunked), not one buffered body.
      expect(res.headers.get('transfer-encoding')).toBe('chunked');
      expect(res.headers.get('content-length')).toBeNull();
      const rows = parseCsv(res.body);
      expect(rows[0]).toEqual(HEADER);
      expect(rows.slice(1).map((r) => r[0])).toEqual(newestFirst());
      // Record for record what the JSON pages say, in their order.
      expect(rows).toEqual(parseCsv(reconciliationCsv(...pages)));
      // The page size the CSV is read in changes nothing in it.
      const big = await get(hub, '/api/reconciliation?format=csv&limit=200');
      expect(parseCsv(big.body)).toEqual(rows);
      const fromCursor = await get(
        hub,
        `/api/reconciliation?format=csv&limit=2&cursor=${encodeURIComponent(pages[0].nextCursor)}`,
      );
      expect(parseCsv(fromCursor.body)).toEqual([HEADER, ...rows.slice(4)]);
    });

    it('a page whose Stripe reads fail answers 502; a CSV failing after its first page is cut off, not ended', async () => {
      const fault = sim.faults.add({
        provider: 'stripe',
        method: 'GET',
        path: `/v1/invoices/${GONE_INVOICE}`,
        responses: Array.from({ length: 20 }, () => ({ status: 500 })),
      });
      try {
        const first = await get(hub, '/api/reconciliation?limit=3');
        expect(first.status).toBe(200);
        // The oldest deal (the one whose invoice Stripe fails to answer for) is on the third page.
        const second = await get(
          hub,
          `/api/reconciliation?limit=3&cursor=${encodeURIComponent(first.body.nextCursor)}`,
        );
        const third = await get(
          hub,
          `/api/reconciliation?limit=3&cursor=${encodeURIComponent(second.body.nextCursor)}`,
        );
        expect(third.status).toBe(502);
        expect(third.body.error.code).toBe('STRIPE_UNAVAILABLE');

        // Failing on its first page, the CSV is an error, not a file.
        const whole = await get(hub, '/api/reconciliation?format=csv&limit=200');
        expect(whole.status).toBe(502);
        expect(whole.body.error.code).toBe('STRIPE_UNAVAILABLE');

        // Failing on a later page, the response breaks off: never a complete-looking file.
        const res = await fetch(`${hub.url}/api/reconciliation?format=csv&limit=3`, {
          headers: { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` },
        });
        expect(res.status).toBe(200);
        await expect(res.text()).rejects.toThrow();
      } finally {
        sim.faults.remove(fault);
      }
      expect((await get(hub, '/api/reconciliation?limit=200')).status).toBe(200);
    });

    it('has 50 deals on a page unless told otherwise', async () => {
      // 45 more planned deals, newer than the others: 53 in all.
      const more: string[] = [];
      for (let i = 0; i < 45; i++) more.push(await seedDeal(`Bulk ${i} K.K.`));
      const first = await get(hub, '/api/reconciliation');
      expect(first.body.deals).toHaveLength(50);
      expect(dealIds(first.body)).toEqual(newestFirst().slice(0, 50));
      expect(first.body.nextCursor).toEqual(expect.any(String));
      const rest = await get(
        hub,
        `/api/reconciliation?cursor=${encodeURIComponent(first.body.nextCursor)}`,
      );
      expect(dealIds(rest.body)).toEqual(newestFirst().slice(50));
      expect(rest.body.nextCursor).toBeNull();
      expect(more).toHaveLength(45);
    });
  });

  describe("reconciliation's Stripe budget", () => {
    it('is shared by every process through Redis: two hubs together keep to STRIPE_RECONCILIATION_RATE_PER_SEC', async () => {
      const env = {
        ROLE: 'api',
        STRIPE_SECRET_KEY: STRIPE_KEY,
        STRIPE_API_BASE: sim.url,
        STRIPE_RECONCILIATION_RATE_PER_SEC: '2',
      };
      const hubs = await Promise.all([startHub(env), startHub(env)]);
      try {
        const since = sim.requests.last()?.seq ?? 0;
        // The four newest deals on both hubs at once (at least one Stripe read each).
        const answers = await Promise.all(hubs.map((h) => get(h, '/api/reconciliation?limit=4')));
        expect(answers.map((a) => a.status)).toEqual([200, 200]);
        const times = sim.requests
          .list({ provider: 'stripe', afterSeq: since })
          .map((r) => r.at)
          .sort((a, b) => a - b);
        expect(times.length).toBeGreaterThanOrEqual(8);
        // Fixed one-second windows of 2 calls each, shared by both processes: any rolling second
        // holds at most 2 × 2, and n calls need n / 2 windows, the last starting (n / 2 − 1) s
        // after the first. A limiter per process would let both through at 4 per second.
        const crowded = times.filter((t) => times.filter((u) => u >= t && u < t + 1000).length > 4);
        expect(crowded).toEqual([]);
        expect(times.at(-1)! - times[0]).toBeGreaterThan((times.length / 2 - 2) * 1000);
      } finally {
        await Promise.all(hubs.map((h) => h.stop()));
      }
    });
  });
});
