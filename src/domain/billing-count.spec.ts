import { PlacedInvoice, PlannedItem, invoiceCount } from './billing-count';

const ZONE = 'Asia/Tokyo';

const item = (key: string, trigger: string, extra: Partial<PlannedItem> = {}): PlannedItem => ({
  key,
  trigger,
  amount: 100_000,
  removed: false,
  ...extra,
});

let seq = 0;
const invoice = (
  itemKey: string,
  createdAt: string,
  period: string | null = null,
  id = `inv_${String(++seq).padStart(4, '0')}`,
): PlacedInvoice => ({ id, itemKey, period, createdAt: new Date(createdAt) });

describe('invoiceCount: 請求回数 per invoice (CONTRACT §5)', () => {
  describe('deposit + balance', () => {
    const items = [
      item('deposit', 'contract.signed'),
      item('balance', 'milestone.accepted', { expectedInvoiceDate: '2027-01-20' }),
    ];

    it('the deposit is monthly_variable with the balance still planned, and the balance is one_time', () => {
      const deposit = invoice('deposit', '2026-11-20T01:00:00Z');
      const balance = invoice('balance', '2027-01-20T01:00:00Z');
      expect(
        invoiceCount({
          plan: 'one_time',
          items,
          invoices: [deposit],
          itemKey: 'deposit',
          invoice: deposit,
          today: '2026-11-20',
          timeZone: ZONE,
        }),
      ).toEqual({ billingCount: 'monthly_variable', nextInvoiceDate: '2027-01-20' });
      expect(
        invoiceCount({
          plan: 'one_time',
          items,
          invoices: [deposit, balance],
          itemKey: 'balance',
          invoice: balance,
          today: '2027-01-20',
          timeZone: ZONE,
        }),
      ).toEqual({ billingCount: 'one_time' });
    });

    it('the deposit still states monthly_variable when it is built after the balance was invoiced', () => {
      const deposit = invoice('deposit', '2026-11-20T01:00:00Z');
      const balance = invoice('balance', '2026-11-21T01:00:00Z');
      expect(
        invoiceCount({
          plan: 'one_time',
          items,
          invoices: [balance, deposit],
          itemKey: 'deposit',
          invoice: deposit,
          today: '2026-11-20',
          timeZone: ZONE,
        }).billingCount,
      ).toBe('monthly_variable');
    });

    it('two invoices made in the same instant are ordered by their time-ordered ids', () => {
      const at = '2026-11-20T01:00:00Z';
      const deposit = invoice('deposit', at, null, 'inv_0001');
      const balance = invoice('balance', at, null, 'inv_0002');
      const count = (inv: PlacedInvoice) =>
        invoiceCount({
          plan: 'one_time',
          items,
          invoices: [deposit, balance],
          itemKey: inv.itemKey,
          invoice: inv,
          today: '2026-11-20',
          timeZone: ZONE,
        }).billingCount;
      expect([count(deposit), count(balance)]).toEqual(['monthly_variable', 'one_time']);
    });

    it('before any invoice, the task of the deposit is monthly_variable; of the balance (deposit billed) one_time', () => {
      expect(
        invoiceCount({
          plan: 'one_time',
          items,
          invoices: [],
          itemKey: 'deposit',
          today: '2026-11-19',
          timeZone: ZONE,
        }),
      ).toEqual({ billingCount: 'monthly_variable', nextInvoiceDate: '2027-01-20' });
      expect(
        invoiceCount({
          plan: 'one_time',
          items,
          invoices: [invoice('deposit', '2026-11-20T01:00:00Z')],
          itemKey: 'balance',
          today: '2026-11-21',
          timeZone: ZONE,
        }),
      ).toEqual({ billingCount: 'one_time' });
    });

    it('whatever the plan says: a plan marked monthly_variable with one item left is one_time', () => {
      const balance = invoice('balance', '2027-01-20T01:00:00Z');
      expect(
        invoiceCount({
          plan: 'monthly_variable',
          items,
          invoices: [invoice('deposit', '2026-11-20T01:00:00Z'), balance],
          itemKey: 'balance',
          invoice: balance,
          today: '2027-01-20',
          timeZone: ZONE,
        }).billingCount,
      ).toBe('one_time');
    });
  });

  it('a single item is one_time, with no next date', () => {
    const only = invoice('all', '2026-11-20T01:00:00Z');
    expect(
      invoiceCount({
        plan: 'one_time',
        items: [item('all', 'contract.signed')],
        invoices: [only],
        itemKey: 'all',
        invoice: only,
        today: '2026-11-20',
        timeZone: ZONE,
      }),
    ).toEqual({ billingCount: 'one_time' });
  });

  it('removed and zero-amount items are not planned; a past expected date is not a next date', () => {
    const deposit = invoice('deposit', '2026-11-20T01:00:00Z');
    const items = [
      item('deposit', 'contract.signed'),
      item('dropped', 'milestone.accepted', { removed: true, expectedInvoiceDate: '2026-12-01' }),
      item('free', 'milestone.accepted', { amount: 0, expectedInvoiceDate: '2026-12-02' }),
    ];
    expect(
      invoiceCount({
        plan: 'one_time',
        items,
        invoices: [deposit],
        itemKey: 'deposit',
        invoice: deposit,
        today: '2026-11-20',
        timeZone: ZONE,
      }),
    ).toEqual({ billingCount: 'one_time' });
    const late = [
      ...items,
      item('design', 'milestone.accepted', { expectedInvoiceDate: '2026-11-01' }),
    ];
    expect(
      invoiceCount({
        plan: 'one_time',
        items: late,
        invoices: [deposit],
        itemKey: 'deposit',
        invoice: deposit,
        today: '2026-11-20',
        timeZone: ZONE,
      }),
    ).toEqual({ billingCount: 'monthly_variable' });
  });

  describe('monthly items', () => {
    const monthly = item('retainer', 'monthly', { startOn: '2026-12-01', months: 3 });

    it('a fixed monthly item is monthly_fixed, with its next month as the next date', () => {
      const first = invoice('retainer', '2026-12-01T00:00:00Z', '2026-12');
      expect(
        invoiceCount({
          plan: 'monthly_fixed',
          items: [monthly],
          invoices: [first],
          itemKey: 'retainer',
          invoice: first,
          today: '2026-12-01',
          timeZone: ZONE,
        }),
      ).toEqual({ billingCount: 'monthly_fixed', nextInvoiceDate: '2027-01-01' });
    });

    it('a fixed monthly item is monthly_fixed even in its last month', () => {
      const last = invoice('retainer', '2027-02-01T00:00:00Z', '2027-02');
      expect(
        invoiceCount({
          plan: 'monthly_fixed',
          items: [monthly],
          invoices: [last],
          itemKey: 'retainer',
          invoice: last,
          today: '2027-02-01',
          timeZone: ZONE,
        }),
      ).toEqual({ billingCount: 'monthly_fixed' });
    });

    it('a variable monthly item is monthly_variable while months remain, one_time in its last', () => {
      const months = ['2026-12', '2027-01', '2027-02'].map((p, n) =>
        invoice('retainer', `2026-12-0${n + 1}T00:00:00Z`, p),
      );
      const count = (n: number, today: string) =>
        invoiceCount({
          plan: 'monthly_variable',
          items: [monthly],
          invoices: months,
          itemKey: 'retainer',
          invoice: months[n],
          today,
          timeZone: ZONE,
        });
      expect(count(0, '2026-12-01')).toEqual({
        billingCount: 'monthly_variable',
        nextInvoiceDate: '2027-01-01',
      });
      expect(count(1, '2027-01-01')).toEqual({
        billingCount: 'monthly_variable',
        nextInvoiceDate: '2027-02-01',
      });
      expect(count(2, '2027-02-01')).toEqual({ billingCount: 'one_time' });
    });

    it('a monthly item ended early has no month planned after its end month', () => {
      const ended = { ...monthly, endMonth: '2027-01' };
      const january = invoice('retainer', '2027-01-01T00:00:00Z', '2027-01');
      expect(
        invoiceCount({
          plan: 'monthly_variable',
          items: [ended],
          invoices: [january],
          itemKey: 'retainer',
          invoice: january,
          today: '2027-01-01',
          timeZone: ZONE,
        }),
      ).toEqual({ billingCount: 'one_time' });
    });

    it("a deposit before a fixed monthly fee is monthly_variable, the fee's first month the next date", () => {
      const deposit = invoice('deposit', '2026-11-20T01:00:00Z');
      expect(
        invoiceCount({
          plan: 'monthly_fixed',
          items: [item('deposit', 'contract.signed'), monthly],
          invoices: [deposit],
          itemKey: 'deposit',
          invoice: deposit,
          today: '2026-11-20',
          timeZone: ZONE,
        }),
      ).toEqual({ billingCount: 'monthly_variable', nextInvoiceDate: '2026-12-01' });
    });

    it('before its invoice, the task of a given month counts the months after it', () => {
      expect(
        invoiceCount({
          plan: 'monthly_variable',
          items: [monthly],
          invoices: [invoice('retainer', '2026-12-01T00:00:00Z', '2026-12')],
          itemKey: 'retainer',
          period: '2027-02',
          today: '2027-01-25',
          timeZone: ZONE,
        }),
      ).toEqual({ billingCount: 'one_time' });
    });

    it('before its first invoice, a variable monthly task counts the months after the first', () => {
      expect(
        invoiceCount({
          plan: 'monthly_variable',
          items: [monthly],
          invoices: [],
          itemKey: 'retainer',
          today: '2026-11-25',
          timeZone: ZONE,
        }),
      ).toEqual({ billingCount: 'monthly_variable', nextInvoiceDate: '2027-01-01' });
    });
  });

  describe('progress items', () => {
    const build = item('build', 'milestone.progress', { expectedInvoiceDate: '2027-03-31' });

    it('a part of a progress item is monthly_variable until the item is billed to 100%', () => {
      const half = invoice('build', '2027-01-10T00:00:00Z', 'p50');
      const rest = invoice('build', '2027-02-10T00:00:00Z', 'p100');
      const count = (inv: PlacedInvoice, today: string) =>
        invoiceCount({
          plan: 'one_time',
          items: [build],
          invoices: [half, rest],
          itemKey: 'build',
          invoice: inv,
          today,
          timeZone: ZONE,
        });
      expect(count(half, '2027-01-10')).toEqual({
        billingCount: 'monthly_variable',
        nextInvoiceDate: '2027-03-31',
      });
      expect(count(rest, '2027-02-10')).toEqual({ billingCount: 'one_time' });
    });

    it('another item not billed to 100% keeps an earlier invoice monthly_variable', () => {
      const deposit = invoice('deposit', '2026-11-20T01:00:00Z');
      const part = invoice('build', '2026-11-19T01:00:00Z', 'p30');
      expect(
        invoiceCount({
          plan: 'one_time',
          items: [item('deposit', 'contract.signed'), build],
          invoices: [part, deposit],
          itemKey: 'deposit',
          invoice: deposit,
          today: '2026-11-20',
          timeZone: ZONE,
        }),
      ).toEqual({ billingCount: 'monthly_variable', nextInvoiceDate: '2027-03-31' });
    });
  });
});
