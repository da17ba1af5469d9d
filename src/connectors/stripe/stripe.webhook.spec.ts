import { loadConfig } from '../../config/app-config';
import { MalformedDeliveryError, WebhookProvider } from '../../ports/webhook-door.port';
import { StripeWebhook } from './stripe.webhook';

const stripe: WebhookProvider = new StripeWebhook(loadConfig({ STRIPE_WEBHOOK_SECRET: 'whsec_x' }));
const req = { rawBody: Buffer.alloc(0), headers: {}, method: 'POST', url: '/webhooks/stripe' };

const invoicePaid = {
  id: 'evt_1',
  object: 'event',
  type: 'invoice.paid',
  created: 1795400000,
  data: {
    object: {
      id: 'in_123',
      object: 'invoice',
      status: 'paid',
      customer: 'cus_9',
      amount_due: 550000,
      amount_paid: 550000,
      currency: 'jpy',
      number: 'ABC-0001',
      metadata: {
        closeloop_deal_id: 'cl_deal_7',
        closeloop_item_key: 'design',
        closeloop_billing_key: 'cl_deal_7:design:1',
      },
    },
  },
};

describe('StripeWebhook.normalize', () => {
  it('maps an invoice event, reading the closeloop_* metadata', () => {
    expect(stripe.normalize('invoice.paid', invoicePaid)).toEqual({
      source: 'stripe',
      kind: 'invoice.paid',
      occurredAt: new Date(1795400000 * 1000).toISOString(),
      subject: { dealId: 'cl_deal_7', providerInvoiceId: 'in_123', billingCustomerId: 'cus_9' },
      data: {
        objectId: 'in_123',
        status: 'paid',
        itemKey: 'design',
        billingKey: 'cl_deal_7:design:1',
        amountDue: 550000,
        amountPaid: 550000,
        currency: 'jpy',
        number: 'ABC-0001',
      },
    });
  });

  it("carries a finalized invoice's page, PDF, total and own tax; a draft's none", () => {
    const sent = {
      ...invoicePaid,
      type: 'invoice.sent',
      data: {
        object: {
          ...invoicePaid.data.object,
          status: 'open',
          hosted_invoice_url: 'https://invoice.stripe.com/i/acct_1/test_1',
          invoice_pdf: 'https://pay.stripe.com/invoice/acct_1/test_1/pdf',
          subtotal: 500000,
          total: 549999,
          total_taxes: [{ amount: 49999 }],
        },
      },
    };
    expect(stripe.normalize('invoice.sent', sent)?.data).toMatchObject({
      hostedInvoiceUrl: 'https://invoice.stripe.com/i/acct_1/test_1',
      invoicePdfUrl: 'https://pay.stripe.com/invoice/acct_1/test_1/pdf',
      total: 549999,
      tax: 49999,
    });
    // An API version with `tax` on the invoice: Stripe's own figure.
    const withTax = { ...sent, data: { object: { ...sent.data.object, tax: 50000 } } };
    expect(stripe.normalize('invoice.sent', withTax)?.data.tax).toBe(50000);
    // Neither: the total less the subtotal.
    const { total_taxes: _taxes, ...bare } = sent.data.object;
    expect(stripe.normalize('invoice.sent', { ...sent, data: { object: bare } })?.data.tax).toBe(
      49999,
    );
    const draft = { ...sent, data: { object: { ...sent.data.object, status: 'draft' } } };
    const data = stripe.normalize('invoice.finalized', draft)?.data;
    expect([data?.hostedInvoiceUrl, data?.invoicePdfUrl, data?.total, data?.tax]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('maps a dispute to charge.dispute_created with the invoice of the charge', () => {
    const dispute = {
      ...invoicePaid,
      type: 'charge.dispute.created',
      data: { object: { id: 'dp_1', object: 'dispute', invoice: 'in_123', metadata: {} } },
    };
    const n = stripe.normalize('charge.dispute.created', dispute);
    expect(n?.kind).toBe('charge.dispute_created');
    expect(n?.subject.providerInvoiceId).toBe('in_123');
    expect(n?.subject.dealId).toBeUndefined();
  });

  it.each([
    'invoice.finalized',
    'invoice.sent',
    'invoice.payment_failed',
    'invoice.voided',
    'invoice.marked_uncollectible',
  ])('maps %s', (type) => {
    expect(stripe.normalize(type, { ...invoicePaid, type })?.kind).toBe(type);
  });

  it('ignores types the hub does not use', () => {
    expect(stripe.normalize('customer.created', invoicePaid)).toBeNull();
    expect(stripe.normalize('invoice.created', invoicePaid)).toBeNull();
  });
});

describe('StripeWebhook.identify', () => {
  it('identity is the event id', () => {
    expect(stripe.identify(invoicePaid, req)).toEqual([
      { providerEventId: 'evt_1', type: 'invoice.paid', payload: invoicePaid },
    ]);
  });

  it('refuses an event without id or type', () => {
    expect(() => stripe.identify({ ...invoicePaid, id: undefined }, req)).toThrow(
      MalformedDeliveryError,
    );
    expect(() => stripe.identify({ ...invoicePaid, type: '' }, req)).toThrow(
      MalformedDeliveryError,
    );
    expect(() => stripe.identify([invoicePaid], req)).toThrow(MalformedDeliveryError);
  });
});
