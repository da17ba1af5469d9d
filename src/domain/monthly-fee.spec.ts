import { contractedAmount, itemTotal } from './contracted-amount';
import {
  MonthlyFeeTerms,
  addMonths,
  amountForMonth,
  billedMonths,
  isYearMonth,
  monthlyChangesOf,
  monthlyFeeTotal,
  monthlyTermsOf,
  termMonths,
} from './monthly-fee';

/** ¥50,000 a month for 6 months from 2026-11-30; ¥60,000 from 2027-01, ¥55,000 from 2027-03. */
const terms = (over: Partial<MonthlyFeeTerms> = {}): MonthlyFeeTerms => ({
  amount: 50_000,
  startOn: '2026-11-30',
  months: 6,
  changes: [
    { fromMonth: '2027-01', amount: 60_000 },
    { fromMonth: '2027-03', amount: 55_000 },
  ],
  ...over,
});

describe('monthly fee months', () => {
  it('adds months across year ends, both ways', () => {
    expect(addMonths('2026-11', 0)).toBe('2026-11');
    expect(addMonths('2026-11', 2)).toBe('2027-01');
    expect(addMonths('2026-01', -1)).toBe('2025-12');
    expect(addMonths('2026-12', 25)).toBe('2029-01');
    expect(() => addMonths('2026-13', 1)).toThrow('not a month in YYYY-MM form: "2026-13"');
  });

  it('knows a month when it sees one', () => {
    expect(['2027-03', '1999-12'].map(isYearMonth)).toEqual([true, true]);
    expect(['2027-3', '2027-00', '2027-13', '2027-03-01', 202703, null].map(isYearMonth)).toEqual([
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
  });

  it('lists the term from startOn’s month, and the months billed up to an early end', () => {
    expect(termMonths('2026-11-30', 4)).toEqual(['2026-11', '2026-12', '2027-01', '2027-02']);
    expect(billedMonths(terms())).toHaveLength(6);
    expect(billedMonths(terms({ endMonth: '2027-01' }))).toEqual(['2026-11', '2026-12', '2027-01']);
    // Ending in the last month of the term is the term.
    expect(billedMonths(terms({ endMonth: '2027-04' }))).toHaveLength(6);
  });
});

describe('amountForMonth', () => {
  it('bills the first amount until the first change, then each change from its month on', () => {
    const t = terms();
    expect(termMonths(t.startOn, t.months).map((m) => [m, amountForMonth(t, m)])).toEqual([
      ['2026-11', 50_000],
      ['2026-12', 50_000],
      ['2027-01', 60_000],
      ['2027-02', 60_000],
      ['2027-03', 55_000],
      ['2027-04', 55_000],
    ]);
  });

  it('without changes every month bills the amount', () => {
    expect(amountForMonth(terms({ changes: null }), '2027-04')).toBe(50_000);
    expect(amountForMonth(terms({ changes: [] }), '2027-04')).toBe(50_000);
  });
});

describe('monthlyFeeTotal and the contracted amount', () => {
  it('adds each month at the amount in force, up to the end', () => {
    expect(monthlyFeeTotal(terms())).toBe(2 * 50_000 + 2 * 60_000 + 2 * 55_000);
    expect(monthlyFeeTotal(terms({ endMonth: '2027-01' }))).toBe(2 * 50_000 + 60_000);
    expect(monthlyFeeTotal(terms({ changes: null, endMonth: '2026-11' }))).toBe(50_000);
  });

  const fee = {
    trigger: 'monthly',
    amount: 50_000,
    startOn: '2026-11-30',
    months: 6,
    // As stored in billing_item.monthly_changes (jsonb).
    monthlyChanges: [{ fromMonth: '2027-01', amount: 60_000 }],
    endMonth: '2027-02',
  };

  it('is the deal amount when the deal has one', () => {
    expect(contractedAmount(1_000_000, [fee])).toBe(1_000_000);
  });

  it("otherwise is the contract's items: one-offs, and monthly fees with their changes and end", () => {
    const setup = { trigger: 'contract.signed', amount: 100_000 };
    // 2026-11, 2026-12 at 50,000; 2027-01, 2027-02 at 60,000; ended after February.
    expect(itemTotal(fee)).toBe(220_000);
    expect(contractedAmount(null, [setup, fee])).toBe(320_000);
    expect(contractedAmount(0, [setup, fee])).toBe(320_000);
    expect(contractedAmount(undefined, [setup, { ...fee, endMonth: null }])).toBe(
      100_000 + 2 * 50_000 + 4 * 60_000,
    );
  });

  it('leaves out additional orders and removed items', () => {
    const setup = { trigger: 'contract.signed', amount: 100_000 };
    expect(
      contractedAmount(null, [
        setup,
        { trigger: 'contract.signed', amount: 70_000, addedBy: 'order.additional' },
        { trigger: 'milestone.accepted', amount: 30_000, removed: true },
      ]),
    ).toBe(100_000);
  });

  it('a monthly item without a schedule counts amount × months', () => {
    expect(itemTotal({ trigger: 'monthly', amount: 10_000, months: 3 })).toBe(30_000);
    expect(itemTotal({ trigger: 'monthly', amount: 10_000 })).toBe(0);
  });
});

describe('terms as stored', () => {
  it('reads the well-formed changes of a jsonb value', () => {
    expect(monthlyChangesOf(null)).toBeUndefined();
    expect(monthlyChangesOf([])).toBeUndefined();
    expect(
      monthlyChangesOf([
        { fromMonth: '2027-01', amount: 60_000, extra: true },
        { fromMonth: 'soon', amount: 1 },
        'x',
      ]),
    ).toEqual([{ fromMonth: '2027-01', amount: 60_000 }]);
  });

  it('needs a schedule', () => {
    expect(monthlyTermsOf({ amount: 1, startOn: null, months: 3 })).toBeNull();
    expect(
      monthlyTermsOf({
        amount: 1,
        startOn: '2026-11-30',
        months: 3,
        monthlyChanges: null,
        endMonth: '2027-01',
      }),
    ).toEqual({ amount: 1, startOn: '2026-11-30', months: 3, changes: null, endMonth: '2027-01' });
  });
});
