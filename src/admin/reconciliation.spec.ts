import { StripeInvoiceView } from '../connectors/stripe/stripe.types';
import { CSV_HEADER, DealInput, reconcileDeal, reconciliationCsv } from './reconciliation.service';

const deal: DealInput = {
  id: 'cl_deal_1',
  name: 'Website',
  crmDealId: '123',
  stage: 'WON',
  currency: 'jpy',
  amount: 1_000_000,
  billingPlan: null,
};

type Hub = Parameters<typeof reconcileDeal>[1][number];
const hub = (over: Partial<Hub> = {}): Hub => ({
  billingKey: 'cl_deal_1|deposit',
  itemKey: 'deposit',
  period: null,
  state: 'POSTED',
  amount: 300_000,
  stripeInvoiceId: 'in_1',
  stripeNumber: 'N-1',
  stripeCustomerId: 'cus_1',
  lastError: null,
  ...over,
});

const stripe = (over: Partial<StripeInvoiceView> = {}): StripeInvoiceView => ({
  id: 'in_1',
  status: 'open',
  number: 'N-1',
  customer: 'cus_1',
  currency: 'jpy',
  subtotal: 300_000,
  tax: 30_000,
  total: 330_000,
  amountPaid: 0,
  hostedInvoiceUrl: null,
  invoicePdf: null,
  lineCount: 1,
  metadata: {
    closeloop_deal_id: 'cl_deal_1',
    closeloop_item_key: 'deposit',
    closeloop_billing_key: 'cl_deal_1|deposit',
  },
  created: 1,
  ...over,
});

const kinds = (r: ReturnType<typeof reconcileDeal>) => r.mismatches.map((m) => m.kind);

describe('reconcileDeal', () => {
  it('finds nothing wrong when Stripe and the hub agree, and sums both sides', () => {
    const r = reconcileDeal(deal, [hub()], [stripe()]);
    expect(r.mismatches).toEqual([]);
    expect(r).toMatchObject({
      contracted: 1_000_000,
      invoicedHub: 300_000,
      invoicedStripe: 300_000,
      paid: 0,
    });
  });

  it('names an invoice Stripe does not have, and a due invoice that failed to be created', () => {
    const r = reconcileDeal(
      deal,
      [
        hub(),
        hub({
          billingKey: 'cl_deal_1|design',
          itemKey: 'design',
          state: 'CREATING',
          stripeInvoiceId: null,
          lastError: 'stripe 400: No such customer',
        }),
      ],
      [],
      new Set(['in_1']),
    );
    expect(kinds(r)).toEqual(['missing_invoice', 'missing_invoice']);
    expect(r.mismatches[0]).toMatchObject({
      billingKey: 'cl_deal_1|deposit',
      stripeInvoiceId: 'in_1',
    });
    expect(r.mismatches[1].message).toContain('No such customer');
  });

  it('names two live invoices for one billing key, and for one item across re-bills', () => {
    const dup = stripe({ id: 'in_2', number: 'N-2' });
    expect(kinds(reconcileDeal(deal, [hub()], [stripe(), dup]))).toEqual(['duplicate_invoice']);
    const r = reconcileDeal(deal, [hub()], [stripe(), dup]);
    expect(r.mismatches[0]).toMatchObject({ stripeInvoiceId: 'in_2' });

    const rebilled = stripe({
      id: 'in_3',
      metadata: { ...stripe().metadata, closeloop_billing_key: 'cl_deal_1|deposit|r1' },
    });
    const rebillRow = hub({ billingKey: 'cl_deal_1|deposit|r1', stripeInvoiceId: 'in_3' });
    // The first one was voided: fine.
    expect(
      reconcileDeal(
        deal,
        [hub({ state: 'VOID' }), rebillRow],
        [stripe({ status: 'void' }), rebilled],
      ).mismatches,
    ).toEqual([]);
    // Both live: a duplicate.
    expect(kinds(reconcileDeal(deal, [hub(), rebillRow], [stripe(), rebilled]))).toEqual([
      'duplicate_invoice',
    ]);
  });

  it('names an amount that differs from what the hub billed', () => {
    const r = reconcileDeal(deal, [hub()], [stripe({ subtotal: 250_000 })]);
    expect(kinds(r)).toEqual(['amount_differs']);
    expect(r.invoicedStripe).toBe(250_000);
  });

  it('names Stripe invoices the hub did not make (no key, or a key the hub does not have)', () => {
    const outside = stripe({ id: 'in_9', number: 'X-9', metadata: {}, subtotal: 50_000 });
    const foreignKey = stripe({
      id: 'in_8',
      metadata: { closeloop_deal_id: 'cl_deal_1', closeloop_billing_key: 'cl_deal_1|ghost' },
    });
    const r = reconcileDeal(deal, [hub()], [stripe(), outside, foreignKey]);
    expect(kinds(r)).toEqual(['unknown_invoice', 'unknown_invoice']);
    expect(r.mismatches.map((m) => m.stripeInvoiceId)).toEqual(['in_9', 'in_8']);
    expect(r.invoicedStripe).toBe(300_000 + 50_000 + 300_000);
  });

  it('names a status that differs (paid in Stripe, not in the hub) but tolerates a trailing CREATED', () => {
    const r = reconcileDeal(deal, [hub()], [stripe({ status: 'paid', amountPaid: 330_000 })]);
    expect(kinds(r)).toEqual(['status_differs']);
    expect(r.paid).toBe(330_000);
    expect(reconcileDeal(deal, [hub({ state: 'CREATED' })], [stripe()]).mismatches).toEqual([]);
  });

  it('takes the contracted amount from the plan when the deal has none', () => {
    const r = reconcileDeal(
      {
        ...deal,
        amount: null,
        billingPlan: {
          currency: 'jpy',
          items: [{ key: 'a', label: 'A', amount: 1000, trigger: 'contract.signed' }],
        },
      },
      [],
      [],
    );
    expect(r.contracted).toBe(1000);
  });

  it('writes the CSV with the header row and one line per deal', () => {
    const r = reconcileDeal(deal, [hub()], [stripe({ subtotal: 1 })]);
    const text = reconciliationCsv({
      generatedAt: 'now',
      summary: { deals: 1, dealsWithMismatches: 1, mismatches: 1 },
      deals: [r],
    });
    const lines = text.split('\r\n');
    expect(lines[0]).toBe(CSV_HEADER.join(','));
    expect(lines[1]).toMatch(/^cl_deal_1,Website,123,jpy,1000000,300000,1,0,"?amount_differs: /);
  });
});
