import http from 'node:http';
import { AddressInfo } from 'node:net';

import Stripe from 'stripe';

import { SimProviderModule } from './sim.types';
import { ProviderSimulator } from './simulator';
import { decodeForm, parseSearchQuery } from './stripe.sim';

const WHSEC = 'whsec_simulator_test_secret';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A tiny stand-in for the hub's webhook door. */
async function startReceiver() {
  const received: Received[] = [];
  let failNext = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (failNext > 0) {
        failNext--;
        res.writeHead(503).end('busy');
        return;
      }
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"received":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    failNextRequests: (n: number) => {
      failNext = n;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('provider simulator: Stripe module driven by the official SDK', () => {
  let sim: ProviderSimulator;
  let stripe: Stripe;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  const client = (opts: { maxNetworkRetries?: number; key?: string } = {}) =>
    new Stripe(opts.key ?? 'sk_test_x', {
      host: '127.0.0.1',
      port: sim.port,
      protocol: 'http',
      maxNetworkRetries: opts.maxNetworkRetries ?? 0,
    });

  beforeAll(async () => {
    receiver = await startReceiver();
    sim = await ProviderSimulator.start({ stripe: { webhookBackoffMs: 10 } });
    stripe = client();
  });

  afterAll(async () => {
    await sim.close();
    await receiver.close();
  });

  beforeEach(() => {
    sim.reset();
    sim.setTarget(undefined);
    receiver.received.length = 0;
    receiver.failNextRequests(0);
  });

  async function draftWithLine(dealId = 'deal_1') {
    const customer = await stripe.customers.create({
      email: 'keiri@example.co.jp',
      name: '株式会社サンプル',
      metadata: { closeloop_deal_id: dealId },
    });
    const rate = await stripe.taxRates.create({
      display_name: '消費税',
      percentage: 10,
      inclusive: false,
      country: 'JP',
      tax_type: 'jct',
    });
    const invoice = await stripe.invoices.create({
      customer: customer.id,
      collection_method: 'send_invoice',
      days_until_due: 14,
      auto_advance: false,
      currency: 'jpy',
      description: 'Design phase',
      pending_invoice_items_behavior: 'exclude',
      metadata: {
        closeloop_deal_id: dealId,
        closeloop_item_key: 'design',
        closeloop_billing_key: `${dealId}:design`,
      },
    });
    const item = await stripe.invoiceItems.create({
      customer: customer.id,
      invoice: invoice.id,
      amount: 300_000,
      currency: 'jpy',
      description: 'デザイン一式',
      tax_rates: [rate.id],
      metadata: { closeloop_item_key: 'design' },
    });
    return { customer, rate, invoice, item };
  }

  it('runs customer → draft → line with 10% tax → finalize → send → pay', async () => {
    const { customer, rate, invoice, item } = await draftWithLine();
    expect(customer.id).toMatch(/^cus_/);
    expect(rate.id).toMatch(/^txr_/);
    expect(item.id).toMatch(/^ii_/);
    expect(item.invoice).toBe(invoice.id);
    expect(invoice).toMatchObject({
      object: 'invoice',
      status: 'draft',
      number: null,
      hosted_invoice_url: null,
      invoice_pdf: null,
      livemode: false,
      collection_method: 'send_invoice',
    });
    expect(invoice.id).toMatch(/^in_/);

    const draft = await stripe.invoices.retrieve(invoice.id);
    expect(draft).toMatchObject({ subtotal: 300_000, total: 330_000, amount_due: 330_000 });
    expect(draft.lines.data).toHaveLength(1);
    expect(draft.lines.data[0].taxes?.[0]).toMatchObject({
      amount: 30_000,
      tax_behavior: 'exclusive',
      tax_rate_details: { tax_rate: rate.id },
    });

    const open = await stripe.invoices.finalizeInvoice(invoice.id);
    expect(open.status).toBe('open');
    expect(open.number).toBe('CL-0001');
    expect(open.total).toBe(330_000);
    expect(open.total_excluding_tax).toBe(300_000);
    expect((open as unknown as { tax: number }).tax).toBe(30_000);
    expect(open.due_date).toBe(open.status_transitions.finalized_at! + 14 * 86400);
    expect(open.hosted_invoice_url).toBe(`${sim.url}/_sim/stripe/hosted/${invoice.id}`);
    expect(open.invoice_pdf).toBe(`${sim.url}/_sim/stripe/hosted/${invoice.id}/pdf`);
    const page = await fetch(open.hosted_invoice_url!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('CL-0001');
    const pdf = await fetch(open.invoice_pdf!);
    expect(pdf.headers.get('content-type')).toBe('application/pdf');

    await expect(stripe.invoices.finalizeInvoice(invoice.id)).rejects.toMatchObject({
      type: 'StripeInvalidRequestError',
      statusCode: 400,
    });
    await expect(
      stripe.invoiceItems.create({
        customer: customer.id,
        invoice: invoice.id,
        amount: 1,
        currency: 'jpy',
      }),
    ).rejects.toMatchObject({ statusCode: 400, code: 'invoice_not_editable' });

    const sent = await stripe.invoices.sendInvoice(invoice.id);
    expect(sent.status).toBe('open');
    const paid = await stripe.invoices.pay(invoice.id);
    expect(paid).toMatchObject({ status: 'paid', amount_paid: 330_000, amount_remaining: 0 });
    expect(sim.stripe.invoice(invoice.id)?.status).toBe('paid');
    await expect(stripe.invoices.voidInvoice(invoice.id)).rejects.toMatchObject({
      statusCode: 400,
    });
  });

  it('validates like Stripe: auth, missing params, send_invoice-only fields, unknown ids', async () => {
    const res = await fetch(`${sim.url}/v1/customers`, { method: 'POST' });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      error: { type: 'invalid_request_error', message: 'Invalid API Key provided' },
    });

    const customer = await stripe.customers.create({ email: 'a@example.com' });
    await expect(
      stripe.invoices.create({ customer: customer.id, days_until_due: 14 }),
    ).rejects.toMatchObject({
      type: 'StripeInvalidRequestError',
      statusCode: 400,
      param: 'days_until_due',
    });
    await expect(stripe.invoices.create({} as Stripe.InvoiceCreateParams)).rejects.toMatchObject({
      statusCode: 400,
      code: 'parameter_missing',
      param: 'customer',
    });
    await expect(stripe.invoices.retrieve('in_missing')).rejects.toMatchObject({
      statusCode: 404,
      code: 'resource_missing',
    });
    await expect(
      stripe.taxRates.create({ display_name: 'x', percentage: 10 } as Stripe.TaxRateCreateParams),
    ).rejects.toMatchObject({ statusCode: 400, param: 'inclusive' });
    await expect(
      stripe.invoices.create({ customer: customer.id, bogus: 1 } as Stripe.InvoiceCreateParams),
    ).rejects.toMatchObject({ statusCode: 400, code: 'parameter_unknown', param: 'bogus' });
    expect(sim.stripe.invoices()).toHaveLength(0);
  });

  it("finalizing takes the customer's e-mail and name as they are then (not at the draft's create)", async () => {
    const customer = await stripe.customers.create({ name: 'Old name' });
    const draft = await stripe.invoices.create({
      customer: customer.id,
      collection_method: 'send_invoice',
      days_until_due: 14,
    });
    expect(draft.customer_email).toBeNull();
    await stripe.invoiceItems.create({
      customer: customer.id,
      invoice: draft.id,
      amount: 100_000,
      currency: 'jpy',
    });
    await stripe.customers.update(customer.id, { email: 'keiri@example.jp', name: 'New name' });
    const sent = await stripe.invoices.sendInvoice(draft.id);
    expect(sent).toMatchObject({
      status: 'open',
      customer_email: 'keiri@example.jp',
      customer_name: 'New name',
    });
  });

  it('computes JPY totals as integers and lists newest first with pagination', async () => {
    const customer = await stripe.customers.create({ email: 'b@example.com' });
    const rate8 = await stripe.taxRates.create({
      display_name: '軽減',
      percentage: 8,
      inclusive: false,
    });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const inv = await stripe.invoices.create({
        customer: customer.id,
        currency: 'jpy',
        default_tax_rates: [rate8.id],
      });
      ids.push(inv.id);
    }
    await stripe.invoiceItems.create({
      customer: customer.id,
      invoice: ids[0],
      amount: 999,
      currency: 'jpy',
    });
    const inv0 = await stripe.invoices.retrieve(ids[0]);
    // round(999 × 8 / 100) = 80, using the invoice's default tax rate
    expect(inv0).toMatchObject({ subtotal: 999, total: 1079 });

    const page1 = await stripe.invoices.list({ customer: customer.id, limit: 2 });
    expect(page1.data.map((i) => i.id)).toEqual([ids[2], ids[1]]);
    expect(page1.has_more).toBe(true);
    const page2 = await stripe.invoices.list({
      customer: customer.id,
      limit: 2,
      starting_after: ids[1],
    });
    expect(page2.data.map((i) => i.id)).toEqual([ids[0]]);
    expect(page2.has_more).toBe(false);
    expect((await stripe.taxRates.list({ active: true })).data.map((r) => r.id)).toEqual([
      rate8.id,
    ]);
  });

  it('replays idempotent requests and rejects reuse with other parameters', async () => {
    const customer = await stripe.customers.create({ email: 'c@example.com' });
    const params = {
      customer: customer.id,
      currency: 'jpy',
      metadata: { closeloop_billing_key: 'k1' },
    };
    const first = await stripe.invoices.create(params, { idempotencyKey: 'invoice:create:k1' });
    const again = await stripe.invoices.create(params, { idempotencyKey: 'invoice:create:k1' });
    expect(again.id).toBe(first.id);
    expect(again.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(sim.stripe.invoices()).toHaveLength(1);

    await expect(
      stripe.invoices.create(
        { ...params, description: 'other' },
        { idempotencyKey: 'invoice:create:k1' },
      ),
    ).rejects.toMatchObject({ type: 'StripeIdempotencyError', statusCode: 400 });
    expect(sim.stripe.invoices()).toHaveLength(1);

    // Errors produced by the endpoint are stored too: a replay gives the same 404.
    await expect(
      stripe.invoices.finalizeInvoice('in_nope', {}, { idempotencyKey: 'f1' }),
    ).rejects.toMatchObject({
      statusCode: 404,
    });
    const replayed404 = await fetch(`${sim.url}/v1/invoices/in_nope/finalize`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk_test_x', 'idempotency-key': 'f1' },
    });
    expect(replayed404.status).toBe(404);
    expect(replayed404.headers.get('idempotent-replayed')).toBe('true');

    // A concurrent request with the same key while the first is in flight: 409.
    sim.stripe.setLatency(150);
    const post = () =>
      fetch(`${sim.url}/v1/customers`, {
        method: 'POST',
        headers: {
          authorization: 'Bearer sk_test_x',
          'idempotency-key': 'concurrent',
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'email=d%40example.com',
      });
    const [a, b] = await Promise.all([post(), post()]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const conflict = (await (a.status === 409 ? a : b).json()) as { error: { type: string } };
    expect(conflict.error.type).toBe('idempotency_error');
    sim.stripe.setLatency(0);

    // After the keys expire (24 h in Stripe), the same key creates a new object.
    expect(sim.stripe.expireIdempotencyKeys()).toBeGreaterThan(0);
    const third = await stripe.invoices.create(params, { idempotencyKey: 'invoice:create:k1' });
    expect(third.id).not.toBe(first.id);
    expect(sim.stripe.invoices()).toHaveLength(2);
  });

  it('searches invoices and customers with the query language subset', async () => {
    const { customer, invoice } = await draftWithLine('deal_42');
    await draftWithLine('deal_43');
    const found = await stripe.invoices.search({
      query: "metadata['closeloop_deal_id']:'deal_42'",
    });
    expect(found.object).toBe('search_result');
    expect(found.data.map((i) => i.id)).toEqual([invoice.id]);
    expect(found.has_more).toBe(false);
    expect(found.next_page).toBeNull();

    const both = await stripe.invoices.search({
      query: `customer:'${customer.id}' AND status:'draft'`,
    });
    expect(both.data.map((i) => i.id)).toEqual([invoice.id]);
    const none = await stripe.invoices.search({
      query: `customer:'${customer.id}' AND status:'open'`,
    });
    expect(none.data).toEqual([]);
    await expect(stripe.invoices.search({ query: 'total>1000' })).rejects.toMatchObject({
      statusCode: 400,
    });
    const customers = await stripe.customers.search({ query: "email:'keiri@example.co.jp'" });
    expect(customers.data).toHaveLength(2);
    const listed = await stripe.customers.list({ email: 'keiri@example.co.jp', limit: 1 });
    expect(listed.data).toHaveLength(1);
    expect(listed.has_more).toBe(true);
    expect(sim.stripe.invoicesByMetadata('closeloop_deal_id', 'deal_43')).toHaveLength(1);
  });

  it('injects 500, 500, 429 with Retry-After, then lets the request through', async () => {
    const retrying = client({ maxNetworkRetries: 2 });
    sim.faults.add({
      provider: 'stripe',
      method: 'POST',
      path: '/v1/customers',
      responses: [
        { status: 500 },
        { status: 500 },
        { status: 429, headers: { 'retry-after': '1' } },
      ],
    });
    // The SDK retries the 500s with the same key, then surfaces the 429 (it does not retry 429s).
    const err = await retrying.customers
      .create({ email: 'e@example.com' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect((err as Stripe.errors.StripeError).headers?.['retry-after']).toBe('1');
    expect(sim.stripe.customers()).toHaveLength(0);
    const log = sim.requests.list({ provider: 'stripe', pathPrefix: '/v1/customers' });
    expect(log.map((e) => [e.status, e.fault])).toEqual([
      [500, 'status 500'],
      [500, 'status 500'],
      [429, 'status 429'],
    ]);
    expect(new Set(log.map((e) => e.idempotencyKey)).size).toBe(1);

    const ok = await retrying.customers.create({ email: 'e@example.com' });
    expect(ok.id).toMatch(/^cus_/);
    expect(sim.faults.pending).toBe(0);
    expect(sim.requests.last()?.status).toBe(200);
  });

  it("drop:'after' keeps the side effect but loses the answer; the same key recovers it", async () => {
    const customer = await stripe.customers.create({ email: 'f@example.com' });
    // stripe-node retries a closed connection once even with maxNetworkRetries 0, so drop twice.
    sim.faults.add({
      path: /^\/v1\/invoices$/,
      method: 'POST',
      responses: [{ drop: 'after' }, { drop: 'after' }],
    });
    const err = await stripe.invoices
      .create({ customer: customer.id, currency: 'jpy' }, { idempotencyKey: 'inv:deal_9' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    // Outcome unknown for the client, but Stripe did create it — exactly once.
    expect(sim.stripe.invoices()).toHaveLength(1);
    const dropped = sim.requests.list({ pathPrefix: '/v1/invoices' });
    expect(dropped.map((e) => [e.dropped, e.status])).toEqual([
      ['after', 200],
      ['after', 200],
    ]);

    const recovered = await stripe.invoices.create(
      { customer: customer.id, currency: 'jpy' },
      { idempotencyKey: 'inv:deal_9' },
    );
    expect(recovered.id).toBe(sim.stripe.invoices()[0].id);
    expect(recovered.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(sim.stripe.invoices()).toHaveLength(1);

    // drop:'before' never reaches the module: the SDK's one reconnect retry creates it once.
    sim.faults.add({ path: '/v1/customers', responses: [{ drop: 'before' }] });
    await stripe.customers.create({ email: 'g@example.com' });
    expect(sim.stripe.customers()).toHaveLength(2);
    expect(
      sim.requests
        .list({ pathPrefix: '/v1/customers' })
        .slice(-2)
        .map((e) => e.dropped),
    ).toEqual(['before', undefined]);
  });

  it('sending a draft finalizes it first, as Stripe does (invoice.finalized, then invoice.sent)', async () => {
    sim.setTarget({ hubUrl: receiver.url, stripeWebhookSecret: WHSEC });
    const { invoice } = await draftWithLine('deal_send_draft');
    await sim.stripe.webhooksIdle();
    const before = receiver.received.length;
    const sent = await stripe.invoices.sendInvoice(invoice.id);
    expect(sent).toMatchObject({ status: 'open', total: 330_000 });
    expect(sent.number).toMatch(/^CL-\d{4}$/);
    expect(sent.hosted_invoice_url).toBe(`${sim.url}/_sim/stripe/hosted/${invoice.id}`);
    await sim.stripe.webhooksIdle();
    const types = receiver.received
      .slice(before)
      .map(
        (r) =>
          stripe.webhooks.constructEvent(r.body, r.headers['stripe-signature'] as string, WHSEC)
            .type,
      );
    expect(types).toEqual(['invoice.finalized', 'invoice.sent']);
    // A voided invoice is not sent.
    await stripe.invoices.voidInvoice(invoice.id);
    await expect(stripe.invoices.sendInvoice(invoice.id)).rejects.toMatchObject({
      statusCode: 400,
    });
  });

  it('delivers signed webhooks that verify with stripe.webhooks.constructEvent, with retries and pause', async () => {
    sim.setTarget({ hubUrl: receiver.url, stripeWebhookSecret: WHSEC });
    const { invoice } = await draftWithLine('deal_wh');
    await stripe.invoices.finalizeInvoice(invoice.id, {}, { idempotencyKey: 'fin:deal_wh' });
    await sim.stripe.webhooksIdle();
    receiver.failNextRequests(1); // the first delivery attempt of invoice.sent gets a 503
    await stripe.invoices.sendInvoice(invoice.id);
    await sim.stripe.webhooksIdle();

    const events = receiver.received.map((r) =>
      stripe.webhooks.constructEvent(r.body, r.headers['stripe-signature'] as string, WHSEC),
    );
    expect(events.map((e) => e.type)).toEqual([
      'invoice.created',
      'invoice.finalized',
      'invoice.sent',
    ]);
    const finalized = events[1];
    expect(finalized.id).toMatch(/^evt_/);
    expect(finalized.api_version).toBe('2026-10-28.endive');
    expect(finalized.request?.idempotency_key).toBe('fin:deal_wh');
    const obj = finalized.data.object as Stripe.Invoice;
    expect(obj).toMatchObject({ id: invoice.id, status: 'open', number: 'CL-0001' });
    expect(obj.metadata).toMatchObject({ closeloop_deal_id: 'deal_wh' });
    expect(() =>
      stripe.webhooks.constructEvent(
        receiver.received[0].body,
        receiver.received[0].headers['stripe-signature'] as string,
        'whsec_wrong',
      ),
    ).toThrow(Stripe.errors.StripeSignatureVerificationError);
    const sentDelivery = sim.stripe.webhookDeliveries.find((d) => d.type === 'invoice.sent');
    expect(sentDelivery).toMatchObject({ status: 'delivered', attempts: 2 });

    // The webhook arrives late: paused emission holds it back until resumed.
    sim.stripe.pauseWebhooks();
    const paid = await fetch(`${sim.url}/_sim/stripe/invoices/${invoice.id}/pay`, {
      method: 'POST',
    });
    expect(paid.status).toBe(200);
    expect(((await paid.json()) as { status: string }).status).toBe('paid');
    await sim.stripe.webhooksIdle();
    expect(receiver.received).toHaveLength(3);
    sim.stripe.resumeWebhooks();
    await sim.stripe.webhooksIdle();
    const late = receiver.received
      .slice(3)
      .map(
        (r) =>
          stripe.webhooks.constructEvent(r.body, r.headers['stripe-signature'] as string, WHSEC)
            .type,
      );
    expect(late).toEqual(['invoice.paid', 'invoice.payment_succeeded']);
    expect(sim.stripe.webhookStats.delivered).toBe(5);
  });

  it('serves the control API over HTTP: faults by regex, request log, rate limit, reset', async () => {
    const post = (path: string, body: unknown) =>
      fetch(`${sim.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const seen: number[] = [];
    const listener = (e: { at: number }) => seen.push(e.at);
    sim.requests.on('request', listener);

    expect(
      (
        await post('/_sim/faults', {
          path: { regex: '^/v1/customers/cus_' },
          responses: [{ status: 503 }],
        })
      ).status,
    ).toBe(200);
    const customer = await stripe.customers.create({ email: 'h@example.com' });
    await expect(stripe.customers.retrieve(customer.id)).rejects.toBeInstanceOf(
      Stripe.errors.StripeAPIError,
    );
    expect((await stripe.customers.retrieve(customer.id)).id).toBe(customer.id);

    const log = (await (
      await fetch(`${sim.url}/_sim/requests?provider=stripe&method=GET&pathPrefix=/v1/customers/`)
    ).json()) as {
      data: { status: number; fault?: string; at: number }[];
    };
    expect(log.data.map((e) => [e.status, e.fault])).toEqual([
      [503, 'status 503'],
      [200, undefined],
    ]);
    expect(seen).toHaveLength(3);
    expect(seen[0] % 1).not.toBe(0); // sub-millisecond timestamps
    sim.requests.off('request', listener);

    expect((await post('/_sim/stripe/rate-limit', { perSecond: 1 })).status).toBe(200);
    await stripe.customers.list();
    await expect(stripe.customers.list()).rejects.toBeInstanceOf(
      Stripe.errors.StripeRateLimitError,
    );
    await post('/_sim/stripe/rate-limit', { perSecond: null });

    const outside = sim.stripe.createInvoiceOutsideHub({
      amount: 5000,
      status: 'open',
      emit: false,
    });
    const listed = (await (await fetch(`${sim.url}/_sim/stripe/invoices`)).json()) as {
      data: { id: string }[];
    };
    expect(listed.data.map((i) => i.id)).toEqual([outside.id]);
    expect((await post(`/_sim/stripe/invoices/${outside.id}/void`, {})).status).toBe(200);
    expect(sim.stripe.invoice(outside.id)?.status).toBe('void');

    expect((await post('/_sim/reset', {})).status).toBe(200);
    expect(sim.stripe.invoices()).toHaveLength(0);
    expect(sim.requests.size).toBe(0);
    expect((await fetch(`${sim.url}/nothing-here`)).status).toBe(404);
  });
});

describe('provider simulator: module dispatch', () => {
  it('dispatches to added modules, scopes faults by provider and routes /_sim/<name>/ to control()', async () => {
    const calls: string[] = [];
    const fake: SimProviderModule = {
      name: 'hubspot',
      matches: (req) => req.path.startsWith('/crm/'),
      handle: (req) => {
        calls.push(`${req.method} ${req.path} ${req.query.get('limit')} ${req.rawBody.toString()}`);
        return { status: 201, body: { id: '1' } };
      },
      reset: () => calls.push('reset'),
      control: (req) =>
        req.path === '/_sim/hubspot/ping' ? { status: 200, body: 'pong' } : undefined,
    };
    const sim = await ProviderSimulator.start();
    try {
      sim.addModule(fake);
      const res = await fetch(`${sim.url}/crm/v3/objects/deals?limit=5`, {
        method: 'POST',
        body: 'x',
      });
      expect(res.status).toBe(201);
      expect(calls).toEqual(['POST /crm/v3/objects/deals 5 x']);
      sim.faults.add({ provider: 'hubspot', path: '/crm/', responses: [{ status: 429 }] });
      const limited = await fetch(`${sim.url}/crm/v3/objects/deals`);
      expect(limited.status).toBe(429);
      expect(await limited.json()).toMatchObject({ status: 'error', category: 'RATE_LIMITS' });
      expect(await (await fetch(`${sim.url}/_sim/hubspot/ping`)).text()).toBe('pong');
      expect((await fetch(`${sim.url}/_sim/hubspot/nope`)).status).toBe(404);
      expect(sim.requests.list({ provider: 'hubspot' }).map((e) => e.status)).toEqual([201, 429]);
      sim.reset();
      expect(calls).toContain('reset');
    } finally {
      await sim.close();
    }
  });
});

describe('Stripe form decoding and search parsing', () => {
  it('decodes bracket notation into nested objects and arrays', () => {
    const params = decodeForm(
      new URLSearchParams(
        'customer=cus_1&metadata[closeloop_deal_id]=d%201&default_tax_rates[0]=txr_a&default_tax_rates[1]=txr_b&expand[]=lines&price_data[unit_amount]=5&payment_settings[payment_method_types][0]=customer_balance',
      ),
    );
    expect(params).toEqual({
      customer: 'cus_1',
      metadata: { closeloop_deal_id: 'd 1' },
      default_tax_rates: ['txr_a', 'txr_b'],
      expand: ['lines'],
      price_data: { unit_amount: '5' },
      payment_settings: { payment_method_types: ['customer_balance'] },
    });
    expect(() => decodeForm([['__proto__[x]', '1']])).toThrow();
  });

  it('parses metadata and field clauses joined by AND, rejecting the rest', () => {
    expect(parseSearchQuery(`metadata['deal']:'x' AND status:"open"`, ['status'])).toEqual([
      { field: 'metadata', key: 'deal', value: 'x' },
      { field: 'status', value: 'open' },
    ]);
    expect(() => parseSearchQuery(`status:'open' OR status:'paid'`, ['status'])).toThrow();
    expect(() => parseSearchQuery(`amount>5`, ['status'])).toThrow();
  });
});
