import { Pool } from 'pg';

import { SimRequestLogEntry } from '../../tools/simulator/provider-sim/request-log';
import {
  DealDetail,
  E2E,
  admin,
  getDeal,
  milestone,
  startE2EHub,
  startProviders,
} from '../support/e2e';
import { RunningHub, flushTestRedis, testDb, truncateAll, waitFor } from '../support/hub';

/**
 * Exactly one Stripe invoice per billing key (ADR 0004, CONTRACT §4/§7) while Stripe fails,
 * answers are lost, idempotency keys expire, a permanent error dead-letters the job, workers are
 * SIGKILLed mid-attempt and the shared rate limiter holds calls back. Each deal is created WON
 * through the admin API with one `contract.signed` item, so the hub bills it at once.
 */

const PLAN = {
  currency: 'jpy',
  taxRatePercent: 10,
  billingCount: 'one_time',
  items: [{ key: 'deposit', label: '着手金', amount: 300000, trigger: 'contract.signed' }],
};

/** POST /v1/invoices (the draft create) only — not /v1/invoices/:id/finalize, /send, /search. */
const CREATE_PATH = { regex: '^/v1/invoices$' };
/** The send, which finalizes the draft first (Stripe does so for a draft it is asked to send). */
const SEND_PATH = { regex: '^/v1/invoices/[^/]+/send$' };

interface Billed {
  dealId: string;
  billingKey: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- loosely typed JSON answers
type Json = Record<string, any>;

interface DeadLetter {
  id: string;
  reason: string;
  error: string;
  attempts: number;
  status: string;
  data: { billingKey?: string };
}

type DealItem = DealDetail['items'][number] & {
  invoices: (DealDetail['items'][number]['invoices'][number] & { lastError: string | null })[];
};

describe('billing failures: exactly one Stripe invoice per billing key (ADR 0004)', () => {
  let e2e: E2E;
  let db: Pool;
  const hubs: RunningHub[] = [];

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await flushTestRedis();
    e2e = await startProviders();
  });

  afterEach(async () => {
    e2e.sim.faults.clear();
    e2e.sim.stripe.setRateLimit(null);
    // Every hub of a test is gone before the next one binds the simulator's webhook port.
    for (const h of hubs.splice(0)) await h.stop('SIGKILL');
  });

  afterAll(async () => {
    await e2e?.close();
    await db?.end();
  });

  async function hub(env: Record<string, string> = {}): Promise<RunningHub> {
    const h = await startE2EHub(e2e, env);
    hubs.push(h);
    return h;
  }

  async function api(
    h: RunningHub,
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${h.url}${path}`, {
      method,
      headers: { ...admin, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json };
  }

  async function createWonDeal(h: RunningHub, name: string): Promise<Billed> {
    const res = await api(h, 'POST', '/api/deals', {
      name,
      customer: { company: `${name} K.K.`, contactName: 'Taro Tanaka', email: 'tanaka@example.jp' },
      currency: 'jpy',
      amount: 300000,
      stage: 'WON',
      billingPlan: PLAN,
    });
    expect(res.status).toBe(201);
    const dealId = res.body.id as string;
    return { dealId, billingKey: `${dealId}|deposit` };
  }

  async function deposit(h: RunningHub, dealId: string): Promise<DealItem> {
    const deal = await getDeal(h.url, dealId);
    return deal.items.find((i) => i.key === 'deposit') as DealItem;
  }

  async function waitPosted(h: RunningHub, dealId: string, timeoutMs = 20_000): Promise<DealItem> {
    return waitFor<DealItem | undefined>(
      async () => {
        const item = await deposit(h, dealId);
        return item.billingStatus === 'INVOICE_POSTED' ? item : undefined;
      },
      { what: `deposit of ${dealId} INVOICE_POSTED`, timeoutMs },
    ) as Promise<DealItem>;
  }

  /** The open dead letter of a billing key, once GET /api/dead-letters lists it. */
  async function deadLetterOf(h: RunningHub, b: Billed): Promise<DeadLetter> {
    const found = await waitFor<DeadLetter | undefined>(
      async () => {
        const res = await api(h, 'GET', '/api/dead-letters');
        return (res.body.items as DeadLetter[]).find((d) => d.data?.billingKey === b.billingKey);
      },
      { what: `dead letter of ${b.billingKey}` },
    );
    return found!;
  }

  const stripeInvoices = (b: Billed) =>
    e2e.sim.stripe.invoicesByMetadata('closeloop_billing_key', b.billingKey);

  /** The draft-create requests of a billing key (each carries its idempotency key). */
  const createRequests = (b: Billed): SimRequestLogEntry[] =>
    e2e.sim.requests
      .list({ provider: 'stripe', method: 'POST', pathPrefix: '/v1/invoices' })
      .filter(
        (r) =>
          r.path === '/v1/invoices' && r.idempotencyKey === `closeloop-invoice-${b.billingKey}`,
      );

  const requestsTo = (path: string) =>
    e2e.sim.requests.list({ provider: 'stripe', method: 'POST', pathPrefix: path });

  async function jobAttempts(jobIds: string[]) {
    const { rows } = await db.query<{ job_id: string; attempt: number; outcome: string }>(
      `SELECT job_id, attempt, outcome FROM job_attempt
       WHERE job_name = 'BillingInvoiceIssue' AND job_id = ANY($1) ORDER BY id`,
      [jobIds],
    );
    return rows;
  }

  /** One invoice for the key in Stripe, finalized, sent once, carrying the plan's amount. */
  function expectOneSentInvoice(b: Billed) {
    const invoices = stripeInvoices(b);
    expect(invoices).toHaveLength(1);
    expect(invoices[0]).toMatchObject({ status: 'open', subtotal: 300000, total: 330000 });
    const sends = requestsTo(`/v1/invoices/${invoices[0].id}/send`).filter((r) => r.status === 200);
    expect(sends.length).toBeGreaterThanOrEqual(1);
    return invoices[0];
  }

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('retries 500, 500, 429 (Retry-After: 1) on the invoice create and ends with one invoice', async () => {
    const h = await hub();
    e2e.sim.faults.add({
      provider: 'stripe',
      method: 'POST',
      path: CREATE_PATH,
      responses: [
        { status: 500 },
        { status: 500 },
        { status: 429, headers: { 'Retry-After': '1' } },
      ],
    });
    const b = await createWonDeal(h, 'Retry on 5xx and 429');
    const item = await waitPosted(h, b.dealId);

    const stripe = expectOneSentInvoice(b);
    expect(item.invoices).toEqual([
      expect.objectContaining({ billingKey: b.billingKey, stripeInvoiceId: stripe.id }),
    ]);
    const creates = createRequests(b);
    expect(creates.map((r) => r.status)).toEqual([500, 500, 429, 200]);
    // Retry-After honoured: the 4th create comes at least ~1 s after the 429.
    expect(creates[3].at - creates[2].doneAt!).toBeGreaterThanOrEqual(950);
    expect(await jobAttempts([`bill|${b.billingKey}`])).toEqual([
      expect.objectContaining({ attempt: 1, outcome: 'RETRYING' }),
      expect.objectContaining({ attempt: 2, outcome: 'RETRYING' }),
      expect.objectContaining({ attempt: 3, outcome: 'RETRYING' }),
      expect.objectContaining({ attempt: 4, outcome: 'SUCCEEDED' }),
    ]);
    const { rows } = await db.query('SELECT issue_attempts FROM invoice WHERE billing_key = $1', [
      b.billingKey,
    ]);
    expect(rows[0].issue_attempts).toBe(4);
  });

  it('outcome unknown (connection dropped after Stripe created the invoice): no second invoice', async () => {
    const h = await hub();
    // stripe-node retries a dropped connection once with the same key: two drops fail the call.
    e2e.sim.faults.add({
      provider: 'stripe',
      method: 'POST',
      path: CREATE_PATH,
      responses: [{ drop: 'after' }, { drop: 'after' }],
    });
    const b = await createWonDeal(h, 'Dropped answer');
    await waitPosted(h, b.dealId);

    expectOneSentInvoice(b);
    const creates = createRequests(b);
    expect(creates.filter((r) => r.dropped === 'after')).toHaveLength(2);
    expect(creates.every((r) => r.dropped === 'after' || r.status === 200)).toBe(true);
    const customers = new Set(
      e2e.sim.stripe.invoicesByMetadata('closeloop_deal_id', b.dealId).map((i) => i.customer),
    );
    expect(customers.size).toBe(1);
  });

  it('outcome unknown, idempotency keys expired before the retry (dead letter replayed): the billing-key search finds it', async () => {
    const h = await hub({ JOB_ATTEMPTS: '1' });
    e2e.sim.faults.add({
      provider: 'stripe',
      method: 'POST',
      path: CREATE_PATH,
      responses: [{ drop: 'after' }, { drop: 'after' }],
    });
    const b = await createWonDeal(h, 'Expired idempotency keys');
    const dl = await deadLetterOf(h, b);
    expect(dl.reason).toBe('EXHAUSTED');
    // Stripe made the invoice; the hub never heard of it.
    expect(stripeInvoices(b)).toHaveLength(1);
    expect((await deposit(h, b.dealId)).invoices[0].stripeInvoiceId).toBeNull();

    // Days later: Stripe pruned the idempotency keys; a plain retry of the create would make a second invoice.
    expect(e2e.sim.stripe.expireIdempotencyKeys()).toBeGreaterThan(0);
    const creates = createRequests(b).length;
    const replay = await api(h, 'POST', `/api/dead-letters/${dl.id}/replay`);
    expect(replay.status).toBe(202);
    await waitPosted(h, b.dealId);

    const stripe = expectOneSentInvoice(b);
    expect((await deposit(h, b.dealId)).invoices[0].stripeInvoiceId).toBe(stripe.id);
    expect(createRequests(b)).toHaveLength(creates);
  });

  it('a permanent 400 dead-letters at once with the provider message; replay after the fix bills once, a second replay is refused', async () => {
    const h = await hub();
    const fault = e2e.sim.faults.add({
      provider: 'stripe',
      method: 'POST',
      path: CREATE_PATH,
      responses: Array.from({ length: 20 }, () => ({
        status: 400,
        body: { error: { type: 'invalid_request_error', message: 'No such tax rate' } },
      })),
    });
    const b = await createWonDeal(h, 'Permanent error');
    const dl = await deadLetterOf(h, b);
    expect(dl).toMatchObject({ reason: 'PERMANENT', attempts: 1, status: 'OPEN' });
    expect(dl.error).toContain('No such tax rate');
    await sleep(1000); // a retry (backoff ≤ 500 ms) would have come by now
    expect(createRequests(b)).toHaveLength(1);
    expect(await jobAttempts([`bill|${b.billingKey}`])).toEqual([
      expect.objectContaining({ attempt: 1, outcome: 'DEAD' }),
    ]);
    const item = await deposit(h, b.dealId);
    expect(item.billingStatus).not.toBe('INVOICE_POSTED');
    expect(item.invoices[0].lastError).toContain('No such tax rate');
    const deal = await getDeal(h.url, b.dealId);
    expect(deal.timeline.map((t) => t.message)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/not created: .*No such tax rate.*dead letter/),
      ]),
    );
    expect(stripeInvoices(b)).toHaveLength(0);

    // The fix, then the replay.
    e2e.sim.faults.remove(fault);
    const replay = await api(h, 'POST', `/api/dead-letters/${dl.id}/replay`);
    expect(replay.status).toBe(202);
    const posted = await waitPosted(h, b.dealId);
    expect(posted.invoices[0].lastError).toBeNull();
    expectOneSentInvoice(b);

    const again = await api(h, 'POST', `/api/dead-letters/${dl.id}/replay`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('DEAD_LETTER_NOT_OPEN');
    await sleep(500);
    expectOneSentInvoice(b);
    expect(createRequests(b)).toHaveLength(2);
    expect((await deposit(h, b.dealId)).billingStatus).toBe('INVOICE_POSTED');
  });

  it('SIGKILL while the invoice create is in flight: the restarted hub finds the invoice, no second one', async () => {
    const env = { JOB_LOCK_MS: '2000' };
    const first = await hub(env);
    e2e.sim.faults.add({
      provider: 'stripe',
      method: 'POST',
      path: CREATE_PATH,
      responses: [{ delayMs: 4000 }],
    });
    const b = await createWonDeal(first, 'Killed mid-create');
    const inFlight = await waitFor(() => createRequests(b)[0], { what: 'the create in flight' });
    expect(inFlight.status).toBeUndefined();
    await first.stop('SIGKILL');
    const { rows } = await db.query(
      'SELECT state, issue_attempts, provider_invoice_id FROM invoice WHERE billing_key = $1',
      [b.billingKey],
    );
    expect(rows[0]).toMatchObject({
      state: 'CREATING',
      issue_attempts: 1,
      provider_invoice_id: null,
    });

    const second = await hub(env);
    await waitPosted(second, b.dealId, 30_000);
    // Stripe completed the killed worker's request: that invoice is the one the hub posted.
    const stripe = expectOneSentInvoice(b);
    // (The killed worker's create has no recorded answer status: its socket was gone by then.)
    expect((await deposit(second, b.dealId)).invoices[0].stripeInvoiceId).toBe(stripe.id);
    await sleep(500);
    expect(stripeInvoices(b)).toHaveLength(1);
  });

  it('SIGKILL while the send (which finalizes) is in flight: after restart still one invoice, finalized and sent', async () => {
    const env = { JOB_LOCK_MS: '2000' };
    const first = await hub(env);
    e2e.sim.faults.add({
      provider: 'stripe',
      method: 'POST',
      path: SEND_PATH,
      responses: [{ delayMs: 4000 }],
    });
    const b = await createWonDeal(first, 'Killed mid-send');
    const sending = await waitFor<SimRequestLogEntry | undefined>(
      () => {
        const id = stripeInvoices(b)[0]?.id;
        return id ? requestsTo(`/v1/invoices/${id}/send`)[0] : undefined;
      },
      { what: 'the send in flight' },
    );
    expect(sending!.status).toBeUndefined();
    await first.stop('SIGKILL');
    expect(stripeInvoices(b)).toHaveLength(1);

    const second = await hub(env);
    const item = await waitPosted(second, b.dealId, 30_000);
    const stripe = expectOneSentInvoice(b);
    expect(item.invoices).toEqual([expect.objectContaining({ stripeInvoiceId: stripe.id })]);
    expect(stripe.lines.data).toHaveLength(1);
    expect(createRequests(b)).toHaveLength(1);
  });

  it('one Stripe customer per customer e-mail across deals; a customer deleted in Stripe is replaced once', async () => {
    const h = await hub();
    const first = await createWonDeal(h, 'Shared customer 1');
    await waitPosted(h, first.dealId);
    const second = await createWonDeal(h, 'Shared customer 2');
    await waitPosted(h, second.dealId);
    const [a] = stripeInvoices(first);
    const [b] = stripeInvoices(second);
    // Both deals of tanaka@example.jp invoice the same Stripe customer, made once.
    expect(b.customer).toBe(a.customer);
    const remembered = await db.query<{ stripe_customer_id: string }>(
      `SELECT stripe_customer_id FROM stripe_customer WHERE key = 'email:tanaka@example.jp'`,
    );
    expect(remembered.rows).toEqual([{ stripe_customer_id: a.customer }]);

    // The customer is deleted in Stripe: the next deal's invoice gets a new customer, which every
    // later deal of that e-mail address shares.
    const del = await fetch(`${e2e.env.STRIPE_API_BASE}/v1/customers/${a.customer}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${e2e.env.STRIPE_SECRET_KEY}` },
    });
    expect(del.status).toBe(200);
    const third = await createWonDeal(h, 'Shared customer 3');
    await waitPosted(h, third.dealId);
    const fourth = await createWonDeal(h, 'Shared customer 4');
    await waitPosted(h, fourth.dealId);
    const c = expectOneSentInvoice(third);
    const [d] = stripeInvoices(fourth);
    expect(c.customer).not.toBe(a.customer);
    expect(d.customer).toBe(c.customer);
    const now = await db.query<{ stripe_customer_id: string }>(
      `SELECT stripe_customer_id FROM stripe_customer WHERE key = 'email:tanaka@example.jp'`,
    );
    expect(now.rows).toEqual([{ stripe_customer_id: c.customer }]);
    expect(
      e2e.sim.stripe
        .customers()
        .filter((x) => x.metadata.closeloop_customer_key === 'email:tanaka@example.jp')
        .map((x) => x.id),
    ).toEqual([c.customer]);
    const open = await api(h, 'GET', '/api/dead-letters');
    expect(open.body.items).toEqual([]);
  });

  it("a customer made before the deal had an e-mail gets the deal's contact before the next invoice is sent", async () => {
    const h = await hub();
    const res = await api(h, 'POST', '/api/deals', {
      name: 'Contact later',
      customer: { company: 'Contact Later K.K.' },
      currency: 'jpy',
      amount: 500000,
      stage: 'WON',
      billingPlan: {
        ...PLAN,
        items: [
          ...PLAN.items,
          { key: 'final', label: '残金', amount: 200000, trigger: 'milestone.accepted' },
        ],
      },
    });
    expect({ status: res.status, body: res.body }).toMatchObject({ status: 201 });
    const dealId = res.body.id as string;
    await waitPosted(h, dealId);
    const [first] = stripeInvoices({ dealId, billingKey: `${dealId}|deposit` });
    // No e-mail yet: the deal's own customer (key deal:<id>), made without one.
    expect(e2e.sim.stripe.customer(first.customer)).toMatchObject({ email: null });
    expect(first.customer_email).toBeNull();

    // The CRM sync fills in the contact (written here as the sync writes it).
    await db.query(
      `UPDATE deal SET customer_email = 'keiri@contact-later.example.jp', company_name = 'Contact Later Holdings'
        WHERE id = $1`,
      [dealId],
    );
    const updatesBefore = requestsTo(`/v1/customers/${first.customer}`).length;
    const accepted = await milestone(h.url, 'milestone.accepted', {
      dealId,
      itemKey: 'final',
      acceptedAt: new Date().toISOString(),
    });
    expect(accepted.status).toBe(200);
    const final = { dealId, billingKey: `${dealId}|final` };
    await waitFor(async () => stripeInvoices(final)[0]?.status === 'open' || undefined, {
      what: 'final invoice sent',
    });
    const [second] = stripeInvoices(final);
    // Same customer, now with the contact; the invoice was finalized with it.
    expect(second.customer).toBe(first.customer);
    expect(e2e.sim.stripe.customer(first.customer)).toMatchObject({
      email: 'keiri@contact-later.example.jp',
      name: 'Contact Later Holdings',
    });
    expect(second).toMatchObject({
      customer_email: 'keiri@contact-later.example.jp',
      customer_name: 'Contact Later Holdings',
    });
    const updates = requestsTo(`/v1/customers/${first.customer}`).slice(updatesBefore);
    expect(updates).toHaveLength(1);
    const send = requestsTo(`/v1/invoices/${second.id}/send`)[0];
    expect(updates[0].seq).toBeLessThan(send.seq);
  });

  it('the shared Stripe rate limiter keeps 6 concurrent deals at 5 requests per second, one invoice each', async () => {
    // Reconciliation's share must stay below the shared limit (its default, 5, would not).
    const h = await hub({
      STRIPE_RATE_LIMIT_PER_SEC: '5',
      STRIPE_RECONCILIATION_RATE_PER_SEC: '1',
    });
    const since = e2e.sim.requests.last()?.seq ?? 0;
    const deals = await Promise.all(
      Array.from({ length: 6 }, (_, i) => createWonDeal(h, `Rate limited ${i + 1}`)),
    );
    for (const d of deals) await waitPosted(h, d.dealId, 40_000);
    for (const d of deals) expectOneSentInvoice(d);

    const log = e2e.sim.requests.list({ provider: 'stripe', afterSeq: since });
    // A customer (shared: one e-mail address), a tax rate, then create, line, send per deal.
    expect(log.length).toBeGreaterThanOrEqual(6 * 3);
    const times = log.map((r) => r.at).sort((x, y) => x - y);
    // The shared limiter counts fixed one-second windows (rate-limiter-flexible on Redis): at most
    // 5 per window, so any rolling second holds at most 2 × 5, and over the whole run the rate
    // stays at 5/s: the first n seconds after the first request hold at most 5 × (n + 1).
    const crowded = times
      .map((t, i) => ({ t, n: times.slice(i).filter((u) => u < t + 1000).length }))
      .filter((w) => w.n > 10)
      .map((w) => `${Math.round(w.t - times[0])} ms after the first request: ${w.n} in 1 s`);
    expect(crowded).toEqual([]);
    const seconds = Math.ceil((times.at(-1)! - times[0]) / 1000);
    for (let n = 1; n <= seconds; n++) {
      const within = times.filter((t) => t < times[0] + n * 1000).length;
      expect({ seconds: n, requests: within, allowed: within <= 5 * (n + 1) }).toMatchObject({
        allowed: true,
      });
    }
    // Without the limiter the 20 requests would all go out within a fraction of a second.
    expect(times.at(-1)! - times[0]).toBeGreaterThan((log.length / 5 - 2) * 1000);
  });
});
