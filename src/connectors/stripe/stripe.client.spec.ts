import nock from 'nock';
import { RateLimiterMemory } from 'rate-limiter-flexible';

import { PermanentError, TransientError } from '../../common/errors';
import { loadConfig } from '../../config/app-config';
import { countedStatuses, loggerStub, metricsStub } from '../connector-test-utils';
import { sha256Hex } from '../provider-call';
import { StripeClient, idempotencyKey, searchValue } from './stripe.client';

const API = 'https://api.stripe.com';

interface Captured {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  form: URLSearchParams;
}

function invoiceJson(over: Record<string, unknown> = {}) {
  return {
    id: 'in_1',
    object: 'invoice',
    status: 'draft',
    number: null,
    customer: 'cus_1',
    currency: 'jpy',
    subtotal: 300000,
    total: 330000,
    total_taxes: [{ amount: 30000, tax_behavior: 'exclusive' }],
    amount_paid: 0,
    hosted_invoice_url: null,
    invoice_pdf: null,
    lines: { object: 'list', data: [{ id: 'il_1' }], has_more: false, total_count: 1 },
    metadata: { closeloop_billing_key: 'bk1' },
    created: 1_790_000_000,
    ...over,
  };
}

function setup(
  env: Record<string, string> = {},
  limiter = new RateLimiterMemory({ points: 1000, duration: 1 }),
  reconciliationLimiter?: RateLimiterMemory,
) {
  const { metrics, inc } = metricsStub();
  const config = loadConfig({ STRIPE_SECRET_KEY: 'sk_test_123', ...env });
  const client = new StripeClient(config, metrics, loggerStub(), limiter, reconciliationLimiter);
  const captured: Captured[] = [];
  const capture = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    function (
      this: { req: { method: string; path: string; headers: Captured['headers'] } },
      uri: string,
      reqBody: unknown,
    ) {
      captured.push({
        method: this.req.method,
        path: uri,
        headers: this.req.headers,
        form: new URLSearchParams(typeof reqBody === 'string' ? reqBody : ''),
      });
      return [status, body, headers] as [number, unknown, Record<string, string>];
    };
  return { client, inc, captured, capture };
}

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

describe('StripeClient wire requests', () => {
  it('ensureCustomer searches by metadata, then creates with our idempotency key and metadata', async () => {
    const { client, captured, capture, inc } = setup();
    const scope = nock(API)
      .get('/v1/customers/search')
      .query(true)
      .reply(capture(200, { object: 'search_result', data: [], has_more: false, next_page: null }))
      .post('/v1/customers')
      .reply(capture(200, { id: 'cus_new', object: 'customer' }));

    const id = await client.ensureCustomer(
      { customerKey: 'deal_1', email: 'a@example.jp', name: 'ACME K.K.' },
      { searchFirst: true },
    );

    expect(id).toBe('cus_new');
    scope.done();
    const search = new URL(captured[0].path, API).searchParams;
    expect(search.get('query')).toBe("metadata['closeloop_customer_key']:'deal_1'");
    const create = captured[1];
    expect(create.headers['idempotency-key']).toBe('closeloop-customer-deal_1');
    expect(Object.fromEntries(create.form)).toEqual({
      email: 'a@example.jp',
      name: 'ACME K.K.',
      'metadata[closeloop_customer_key]': 'deal_1',
    });
    expect(countedStatuses(inc)).toEqual(['200', '200']);
  });

  it('ensureCustomer returns a search hit without creating', async () => {
    const { client } = setup();
    const scope = nock(API)
      .get('/v1/customers/search')
      .query(true)
      .reply(200, {
        object: 'search_result',
        data: [
          { id: 'cus_b', object: 'customer', created: 20 },
          { id: 'cus_a', object: 'customer', created: 10 },
        ],
        has_more: false,
      });
    await expect(client.ensureCustomer({ customerKey: 'k' }, { searchFirst: true })).resolves.toBe(
      'cus_a',
    );
    scope.done();
  });

  it('updateCustomer posts the contact it is given to the customer, leaving out what it is not', async () => {
    const { client, captured, capture } = setup();
    const scope = nock(API)
      .post('/v1/customers/cus_1')
      .reply(capture(200, { id: 'cus_1', object: 'customer' }))
      .post('/v1/customers/cus_1')
      .reply(capture(200, { id: 'cus_1', object: 'customer' }));
    await client.updateCustomer('cus_1', { email: 'keiri@example.jp', name: 'ACME K.K.' });
    await client.updateCustomer('cus_1', { name: 'ACME Holdings' });
    scope.done();
    expect(Object.fromEntries(captured[0].form)).toEqual({
      email: 'keiri@example.jp',
      name: 'ACME K.K.',
    });
    expect(Object.fromEntries(captured[1].form)).toEqual({ name: 'ACME Holdings' });
  });

  it('createDraftInvoice posts a send_invoice draft that excludes pending items', async () => {
    const { client, captured, capture } = setup();
    nock(API).post('/v1/invoices').reply(capture(200, invoiceJson()));

    const view = await client.createDraftInvoice({
      billingKey: 'cl_deal_1:deposit',
      customerId: 'cus_1',
      currency: 'JPY',
      description: '着手金',
      daysUntilDue: 30,
      metadata: {
        closeloop_deal_id: 'cl_deal_1',
        closeloop_item_key: 'deposit',
        closeloop_billing_key: 'cl_deal_1:deposit',
      },
    });

    expect(captured[0].headers['idempotency-key']).toBe('closeloop-invoice-cl_deal_1:deposit');
    expect(Object.fromEntries(captured[0].form)).toEqual({
      customer: 'cus_1',
      collection_method: 'send_invoice',
      days_until_due: '30',
      auto_advance: 'false',
      pending_invoice_items_behavior: 'exclude',
      currency: 'jpy',
      description: '着手金',
      'metadata[closeloop_deal_id]': 'cl_deal_1',
      'metadata[closeloop_item_key]': 'deposit',
      'metadata[closeloop_billing_key]': 'cl_deal_1:deposit',
    });
    expect(view).toEqual({
      id: 'in_1',
      status: 'draft',
      number: null,
      customer: 'cus_1',
      currency: 'jpy',
      subtotal: 300000,
      tax: 30000,
      total: 330000,
      amountPaid: 0,
      hostedInvoiceUrl: null,
      invoicePdf: null,
      lineCount: 1,
      metadata: { closeloop_billing_key: 'bk1' },
      created: 1_790_000_000,
    });
  });

  it('addInvoiceLine attaches the item to the invoice with its tax rate, one request', async () => {
    const { client, captured, capture } = setup();
    const scope = nock(API)
      .post('/v1/invoiceitems')
      .reply(capture(200, { id: 'ii_1', object: 'invoiceitem' }));

    await client.addInvoiceLine({
      billingKey: 'bk1',
      customerId: 'cus_1',
      invoiceId: 'in_1',
      amount: 300000,
      currency: 'jpy',
      description: '着手金',
      taxRateId: 'txr_10',
    });

    scope.done();
    expect(captured).toHaveLength(1);
    expect(captured[0].headers['idempotency-key']).toBe('closeloop-line-bk1');
    expect(Object.fromEntries(captured[0].form)).toEqual({
      customer: 'cus_1',
      invoice: 'in_1',
      amount: '300000',
      currency: 'jpy',
      description: '着手金',
      'tax_rates[0]': 'txr_10',
    });
  });

  it('sendInvoice sends a draft as it is (Stripe finalizes it first) with its own deterministic key', async () => {
    const { client, captured, capture } = setup();
    nock(API)
      .post('/v1/invoices/in_1/send')
      .reply(capture(200, invoiceJson({ status: 'open', number: 'A-0001' })));

    await expect(client.sendInvoice('bk1', 'in_1')).resolves.toMatchObject({
      status: 'open',
      number: 'A-0001',
    });
    expect(captured).toHaveLength(1);
    expect(captured[0].headers['idempotency-key']).toBe('closeloop-send-bk1');
  });

  it('uses a sha256 of the billing key when the idempotency key would pass 255 characters', () => {
    const long = 'x'.repeat(250);
    expect(idempotencyKey('invoice', long)).toBe(`closeloop-invoice-${sha256Hex(long)}`);
    expect(idempotencyKey('invoice', 'short')).toBe('closeloop-invoice-short');
  });

  it('ensureTaxRate creates the JCT rate once and caches it per process', async () => {
    const { client, captured, capture } = setup();
    const scope = nock(API)
      .get('/v1/tax_rates')
      .query({ active: 'true', limit: '100' })
      .reply(
        capture(200, {
          object: 'list',
          has_more: false,
          data: [
            {
              id: 'txr_incl',
              inclusive: true,
              active: true,
              metadata: { closeloop_tax_percent: '10' },
            },
            {
              id: 'txr_8',
              inclusive: false,
              active: true,
              metadata: { closeloop_tax_percent: '8' },
            },
          ],
        }),
      )
      .post('/v1/tax_rates')
      .reply(capture(200, { id: 'txr_new', object: 'tax_rate' }));

    await expect(client.ensureTaxRate(10)).resolves.toBe('txr_new');
    await expect(client.ensureTaxRate(10)).resolves.toBe('txr_new');

    scope.done();
    expect(captured).toHaveLength(2);
    expect(captured[1].headers['idempotency-key']).toBe('closeloop-tax-rate-10');
    expect(Object.fromEntries(captured[1].form)).toMatchObject({
      display_name: '消費税',
      percentage: '10',
      inclusive: 'false',
      country: 'JP',
      tax_type: 'jct',
      'metadata[closeloop_tax_percent]': '10',
    });
  });

  it('ensureTaxRate reuses an existing exclusive rate', async () => {
    const { client } = setup();
    nock(API)
      .get('/v1/tax_rates')
      .query(true)
      .reply(200, {
        object: 'list',
        has_more: false,
        data: [
          {
            id: 'txr_10',
            inclusive: false,
            active: true,
            metadata: { closeloop_tax_percent: '10' },
          },
        ],
      });
    await expect(client.ensureTaxRate(10)).resolves.toBe('txr_10');
  });

  it('findInvoicesByBillingKey escapes the value and follows search pages', async () => {
    const { client, captured, capture } = setup();
    nock(API)
      .get('/v1/invoices/search')
      .query(true)
      .reply(
        capture(200, {
          object: 'search_result',
          data: [invoiceJson()],
          has_more: true,
          next_page: 'p2',
        }),
      )
      .get('/v1/invoices/search')
      .query(true)
      .reply(
        capture(200, {
          object: 'search_result',
          data: [invoiceJson({ id: 'in_2' })],
          has_more: false,
          next_page: null,
        }),
      );

    const found = await client.findInvoicesByBillingKey("a'b\\c");

    expect(found.map((i) => i.id)).toEqual(['in_1', 'in_2']);
    const first = new URL(captured[0].path, API).searchParams;
    expect(first.get('query')).toBe("metadata['closeloop_billing_key']:'a\\'b\\\\c'");
    expect(new URL(captured[1].path, API).searchParams.get('page')).toBe('p2');
    expect(searchValue("it's")).toBe("it\\'s");
  });

  it('searchInvoicesByDeal and listInvoicesForCustomer read every page', async () => {
    const { client, captured, capture } = setup();
    nock(API)
      .get('/v1/invoices/search')
      .query(true)
      .reply(capture(200, { object: 'search_result', data: [invoiceJson()], has_more: false }))
      .get('/v1/invoices')
      .query({ customer: 'cus_1', limit: '100' })
      .reply(capture(200, { object: 'list', data: [invoiceJson()], has_more: true }))
      .get('/v1/invoices')
      .query({ customer: 'cus_1', limit: '100', starting_after: 'in_1' })
      .reply(
        capture(200, { object: 'list', data: [invoiceJson({ id: 'in_9' })], has_more: false }),
      );

    await expect(client.searchInvoicesByDeal('cl_deal_1')).resolves.toHaveLength(1);
    expect(new URL(captured[0].path, API).searchParams.get('query')).toBe(
      "metadata['closeloop_deal_id']:'cl_deal_1'",
    );
    const all = await client.listInvoicesForCustomer('cus_1');
    expect(all.map((i) => i.id)).toEqual(['in_1', 'in_9']);
  });

  it('talks to STRIPE_API_BASE when set', async () => {
    const { client } = setup({ STRIPE_API_BASE: 'http://127.0.0.1:12111' });
    const scope = nock('http://127.0.0.1:12111').get('/v1/invoices/in_1').reply(200, invoiceJson());
    await expect(client.retrieveInvoice('in_1')).resolves.toMatchObject({ id: 'in_1' });
    scope.done();
  });

  it('throws PermanentError when Stripe is not configured', async () => {
    const { metrics } = metricsStub();
    const client = new StripeClient(loadConfig({}), metrics, loggerStub());
    await expect(client.retrieveInvoice('in_1')).rejects.toThrow(
      new PermanentError('stripe is not configured: set STRIPE_SECRET_KEY'),
    );
  });
});

describe('StripeClient error mapping', () => {
  async function failWith(
    status: number,
    body: Record<string, unknown>,
    headers: Record<string, string> = {},
  ) {
    const { client, inc } = setup();
    nock(API).get('/v1/invoices/in_1').reply(status, body, headers);
    const err = await client.retrieveInvoice('in_1').catch((e: unknown) => e);
    return { err: err as Error, inc };
  }

  it('500 → TransientError', async () => {
    const { err, inc } = await failWith(500, { error: { type: 'api_error', message: 'boom' } });
    expect(err).toBeInstanceOf(TransientError);
    expect(err.message).toBe('stripe 500 api_error: boom');
    expect(countedStatuses(inc)).toEqual(['500']);
  });

  it('429 with Retry-After: 2 → TransientError retrying after 2000 ms', async () => {
    const { err } = await failWith(
      429,
      {
        error: { type: 'invalid_request_error', code: 'rate_limit', message: 'Too many requests' },
      },
      { 'Retry-After': '2' },
    );
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryAfterMs).toBe(2000);
  });

  it('400 → PermanentError with Stripe’s message', async () => {
    const { err } = await failWith(400, {
      error: { type: 'invalid_request_error', message: 'No such customer: cus_x' },
    });
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toBe('stripe 400 invalid_request_error: No such customer: cus_x');
  });

  it('409 → TransientError; idempotency_error → PermanentError', async () => {
    const conflict = await failWith(409, {
      error: { type: 'invalid_request_error', message: 'lock' },
    });
    expect(conflict.err).toBeInstanceOf(TransientError);
    const idem = await failWith(400, {
      error: {
        type: 'idempotency_error',
        message: 'Keys for idempotent requests can only be used with the same parameters',
      },
    });
    expect(idem.err).toBeInstanceOf(PermanentError);
    expect(idem.err.message).toContain('idempotency_error');
  });

  it('honours Stripe-Should-Retry', async () => {
    const no = await failWith(
      500,
      { error: { type: 'api_error', message: 'stored' } },
      {
        'Stripe-Should-Retry': 'false',
      },
    );
    expect(no.err).toBeInstanceOf(PermanentError);
    const yes = await failWith(
      400,
      { error: { type: 'invalid_request_error', message: 'lock_timeout' } },
      {
        'Stripe-Should-Retry': 'true',
      },
    );
    expect(yes.err).toBeInstanceOf(TransientError);
  });

  it('a connection failure → TransientError, counted as error', async () => {
    // A real refused connection (nothing listens on port 1): no HTTP status at all.
    nock.enableNetConnect('127.0.0.1:1');
    try {
      const { client, inc } = setup({ STRIPE_API_BASE: 'http://127.0.0.1:1' });
      const err = await client.retrieveInvoice('in_1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransientError);
      expect((err as Error).message).toMatch(/^stripe network StripeConnectionError/);
      expect(countedStatuses(inc)).toEqual(['error']);
    } finally {
      nock.disableNetConnect();
    }
  });
});

describe('StripeClient rate limit', () => {
  it('makes the call past the per-second limit wait for the next window instead of failing', async () => {
    const limiter = new RateLimiterMemory({ points: 3, duration: 1 });
    const { client } = setup({}, limiter);
    nock(API).get('/v1/invoices/in_1').times(4).reply(200, invoiceJson());

    const start = Date.now();
    const finished = await Promise.all(
      [0, 1, 2, 3].map(() => client.retrieveInvoice('in_1').then(() => Date.now() - start)),
    );
    finished.sort((a, b) => a - b);

    expect(finished[2]).toBeLessThan(900); // within the first window: no waiting
    expect(finished[3]).toBeGreaterThanOrEqual(900);
  });

  it('falls back to the in-process limiters when Redis is unreachable (reconciliation too)', async () => {
    const { metrics } = metricsStub();
    const config = loadConfig({
      STRIPE_SECRET_KEY: 'sk_test_123',
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    const client = new StripeClient(config, metrics, loggerStub());
    nock(API).get('/v1/invoices/in_1').times(2).reply(200, invoiceJson());
    try {
      await expect(client.retrieveInvoice('in_1')).resolves.toMatchObject({ id: 'in_1' });
      await expect(client.retrieveInvoice('in_1', 'reconciliation')).resolves.toMatchObject({
        id: 'in_1',
      });
    } finally {
      await client.onModuleDestroy();
    }
  });
});

describe('StripeClient: reconciliation has a budget of its own, inside the shared one', () => {
  /** Starts `calls` at once; resolves with each one's finishing time (ms after the start), in call order. */
  async function timed(calls: (() => Promise<unknown>)[], start = Date.now()) {
    return Promise.all(calls.map((call) => call().then(() => Date.now() - start)));
  }
  const accountKey = sha256Hex('sk_test_123').slice(0, 16);

  it('a reconciliation call past its own rate waits, while a billing call made right after does not', async () => {
    const shared = new RateLimiterMemory({ points: 100, duration: 1 });
    const reconciliation = new RateLimiterMemory({ points: 2, duration: 1 });
    const { client } = setup({}, shared, reconciliation);
    nock(API).get('/v1/invoices/in_1').times(4).reply(200, invoiceJson());

    const start = Date.now();
    const reads = timed(
      [0, 1, 2].map(() => () => client.retrieveInvoice('in_1', 'reconciliation')),
      start,
    );
    // Billing's call comes after reconciliation's third one is already waiting for its budget.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const billing = await timed([() => client.retrieveInvoice('in_1')], start);
    // Every call so far, reconciliation's included, took a slot of the shared allowance.
    expect((await shared.get(accountKey))?.consumedPoints).toBe(3);
    const [first, second, third] = await reads;

    expect(first).toBeLessThan(500);
    expect(second).toBeLessThan(500);
    expect(third).toBeGreaterThanOrEqual(900); // waited for reconciliation's next window
    expect(billing[0]).toBeLessThan(500); // billing never waits for reconciliation's budget
    expect(billing[0]).toBeLessThan(third);
  });

  it('reconciliation calls spend the shared allowance too: billing then waits for the next window', async () => {
    const shared = new RateLimiterMemory({ points: 3, duration: 1 });
    const reconciliation = new RateLimiterMemory({ points: 10, duration: 1 });
    const { client } = setup({}, shared, reconciliation);
    const ownSlots = jest.spyOn(reconciliation, 'consume');
    nock(API).get('/v1/invoices/in_1').times(4).reply(200, invoiceJson());
    nock(API)
      .get('/v1/invoices')
      .query({ customer: 'cus_1', limit: '100' })
      .reply(200, { object: 'list', data: [invoiceJson()], has_more: false });
    nock(API)
      .get('/v1/invoices/search')
      .query(true)
      .reply(200, { object: 'search_result', data: [], has_more: false });

    const start = Date.now();
    await client.listInvoicesForCustomer('cus_1', 'reconciliation');
    await client.searchInvoicesByDeal('cl_deal_1', 'reconciliation');
    await client.retrieveInvoice('in_1', 'reconciliation');
    expect(Date.now() - start).toBeLessThan(500);
    expect((await shared.get(accountKey))?.consumedPoints).toBe(3);
    expect((await reconciliation.get(accountKey))?.consumedPoints).toBe(3);

    expect(ownSlots).toHaveBeenCalledTimes(3);

    await client.retrieveInvoice('in_1'); // billing
    expect(Date.now() - start).toBeGreaterThanOrEqual(900);
    // Billing's call asked nothing of reconciliation's limiter.
    expect(ownSlots).toHaveBeenCalledTimes(3);
  });

  it('however hard reconciliation pulls, billing keeps (limit − reconciliation rate) in the window', async () => {
    const shared = new RateLimiterMemory({ points: 5, duration: 1 });
    const reconciliation = new RateLimiterMemory({ points: 2, duration: 1 });
    const { client } = setup({}, shared, reconciliation);
    nock(API).get('/v1/invoices/in_1').times(9).reply(200, invoiceJson());

    const start = Date.now();
    // Six reconciliation reads queue first, then three billing calls.
    const reads = timed(
      Array.from({ length: 6 }, () => () => client.retrieveInvoice('in_1', 'reconciliation')),
      start,
    );
    const billing = timed(
      Array.from({ length: 3 }, () => () => client.retrieveInvoice('in_1')),
      start,
    );
    const [readTimes, billingTimes] = await Promise.all([reads, billing]);

    expect(billingTimes.every((t) => t < 500)).toBe(true);
    const firstWindow = readTimes.filter((t) => t < 900).length;
    expect(firstWindow).toBe(2);
    expect(readTimes.sort((a, b) => a - b).at(-1)).toBeGreaterThanOrEqual(1900); // 2 per second
  });
});
