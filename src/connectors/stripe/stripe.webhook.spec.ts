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
