import { BillingStatusInput, explainBilling } from './billing-status';

type Item = BillingStatusInput['items'][number];
type Invoice = Item['invoices'][number];

const item = (over: Partial<Item> = {}): Item => ({
  key: 'setup',
  label: 'Setup fee',
  trigger: 'contract.signed',
  removed: false,
  submittedAt: null,
  acceptanceDueAt: null,
  acceptedAt: null,
  rejectedAt: null,
  rejectionReason: null,
  progressPercent: 0,
  billedPercent: 0,
  startOn: null,
  months: null,
  billingStatus: 'NOT_READY',
  invoices: [],
  ...over,
});

const invoice = (over: Partial<Invoice> = {}): Invoice => ({
  billingKey: 'cl_deal_1|setup',
  state: 'PAID',
  stripeInvoiceId: 'in_123',
  stripeNumber: 'INV-0001',
  lastError: null,
  createdAt: '2026-01-01T00:00:00Z',
  ...over,
});

const deal = (over: Partial<BillingStatusInput> = {}): BillingStatusInput => ({
  stage: 'WON',
  plan: { items: [] },
  planError: null,
  contract: { status: 'COMPLETED' },
  items: [item()],
  ...over,
});

const keys = (d: BillingStatusInput) => explainBilling(d).lines.map((l) => l.key);

describe('explainBilling (why was this deal (not) billed?)', () => {
  it('says a deal without a plan has none', () => {
    const e = explainBilling(deal({ plan: null, items: [] }));
    expect(e.lines.map((l) => l.key)).toEqual(['billing.noPlan']);
    expect(e.tone).toBe('problem');
  });

  it('names the refusal of a refused plan', () => {
    const e = explainBilling(
      deal({ plan: null, items: [], planError: 'items[0].amount: required' }),
    );
    expect(e.lines).toEqual([
      {
        key: 'billing.planRefused',
        params: { error: 'items[0].amount: required' },
        tone: 'problem',
      },
    ]);
  });

  it('notes a refused change while an earlier plan stays in force, and still explains its items', () => {
    const e = explainBilling(deal({ planError: 'items[0]: item "big" is too large' }));
    expect(e.lines.map((l) => l.key)).toEqual([
      'billing.planRefusedKept',
      'billing.item.waitContract',
    ]);
    expect(e.lines[0].params).toEqual({ error: 'items[0]: item "big" is too large' });
    expect(e.tone).toBe('problem');
  });

  it('says a deal that is not won yet waits for WON, naming the stage, and nothing per item', () => {
    const e = explainBilling(deal({ stage: 'NEGOTIATING' }));
    expect(e.lines).toEqual([
      { key: 'billing.notWon', params: { stage: 'NEGOTIATING' }, tone: 'waiting' },
    ]);
    expect(e.tone).toBe('waiting');
  });

  it('says a lost deal bills nothing', () => {
    expect(keys(deal({ stage: 'LOST' }))).toEqual(['billing.closedStage']);
    expect(explainBilling(deal({ stage: 'LOST' })).tone).toBe('none');
  });

  it('explains a paid item with its invoice number', () => {
    const e = explainBilling(
      deal({ items: [item({ billingStatus: 'PAID', invoices: [invoice()] })] }),
    );
    expect(e.tone).toBe('ok');
    expect(e.lines[0]).toEqual({
      key: 'billing.item.paid',
      params: { label: 'Setup fee', invoice: 'INV-0001' },
      tone: 'ok',
    });
    expect(e.summary?.params).toEqual({ items: 1, billed: 1, paid: 1 });
  });

  it('explains a failing invoice with its last error', () => {
    const e = explainBilling(
      deal({
        items: [
          item({
            billingStatus: 'READY',
            invoices: [
              invoice({
                state: 'PENDING',
                stripeInvoiceId: null,
                stripeNumber: null,
                lastError: 'StripeCardError: customer has no address',
              }),
            ],
          }),
        ],
      }),
    );
    expect(e.tone).toBe('problem');
    expect(e.lines[0].key).toBe('billing.item.failing');
    expect(e.lines[0].params.error).toBe('StripeCardError: customer has no address');
  });

  it('explains a void invoice as needing an explicit re-bill, judged by the latest invoice', () => {
    const e = explainBilling(
      deal({
        items: [
          item({
            billingStatus: 'VOID',
            invoices: [
              invoice({ state: 'PAID', createdAt: '2026-01-01T00:00:00Z' }),
              invoice({
                state: 'VOID',
                stripeNumber: 'INV-0002',
                createdAt: '2026-02-01T00:00:00Z',
              }),
            ],
          }),
        ],
      }),
    );
    expect(e.lines[0]).toMatchObject({ key: 'billing.item.void', params: { invoice: 'INV-0002' } });
  });

  it('says which trigger an unbilled item waits for', () => {
    const e = explainBilling(
      deal({
        items: [
          item({ key: 'a', label: 'Design', trigger: 'milestone.accepted' }),
          item({
            key: 'b',
            label: 'Build',
            trigger: 'milestone.accepted',
            submittedAt: '2026-03-01T00:00:00Z',
            acceptanceDueAt: '2026-03-11T00:00:00Z',
          }),
          item({
            key: 'c',
            label: 'Test',
            trigger: 'milestone.accepted',
            rejectedAt: '2026-03-02T00:00:00Z',
            rejectionReason: 'bugs',
          }),
          item({ key: 'd', label: 'Ops', trigger: 'monthly', startOn: '2026-04-01', months: 6 }),
          item({
            key: 'e',
            label: 'Dev',
            trigger: 'milestone.progress',
            progressPercent: 40,
            billedPercent: 40,
          }),
          item({ key: 'f', label: 'Kickoff', trigger: 'contract.signed' }),
        ],
        contract: { status: 'SENT' },
      }),
    );
    expect(e.lines.map((l) => l.key)).toEqual([
      'billing.item.waitMilestone',
      'billing.item.waitAcceptance',
      'billing.item.rejected',
      'billing.item.waitMonthly',
      'billing.item.waitProgress',
      'billing.item.waitContract',
    ]);
    expect(e.lines[1].params).toMatchObject({ submitted: '2026-03-01', due: '2026-03-11' });
    expect(e.lines[5].params.contract).toBe('SENT');
    expect(e.tone).toBe('problem');
  });

  it('mentions an item removed from the plan before billing', () => {
    expect(keys(deal({ items: [item({ removed: true })] }))).toEqual(['billing.noItems']);
    expect(
      keys(
        deal({
          items: [
            item({ removed: true }),
            item({ key: 'x', billingStatus: 'PAID', invoices: [invoice()] }),
          ],
        }),
      ),
    ).toEqual(['billing.item.removed', 'billing.item.paid']);
  });
});
