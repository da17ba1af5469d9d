import { MonthlyFeeTerms } from '../domain/monthly-fee';
import { ToldFeeFact, feeFactPrefix, owedFeeReports, toldFeeFacts } from './monthly-fee-reports';

/** ¥50,000 a month, 2026-11 to 2027-04. */
const terms = (over: Partial<MonthlyFeeTerms> = {}): MonthlyFeeTerms => ({
  amount: 50_000,
  startOn: '2026-11-30',
  months: 6,
  ...over,
});
const change = (month: string, amount: number, n = 1): ToldFeeFact => ({
  kind: 'change',
  month,
  n,
  amount,
});
const end = (month: string, n = 1): ToldFeeFact => ({ kind: 'end', month, n, amount: null });

describe('owedFeeReports', () => {
  it('owes nothing for a fee without changes or an early end', () => {
    expect(owedFeeReports(terms(), [])).toEqual([]);
    // Ending in the term's last month is no early end.
    expect(owedFeeReports(terms({ endMonth: '2027-04' }), [])).toEqual([]);
  });

  it('owes one report per change and one for the end, with the monthly amount then', () => {
    expect(
      owedFeeReports(
        terms({
          changes: [
            { fromMonth: '2027-01', amount: 60_000 },
            { fromMonth: '2027-02', amount: 55_000 },
          ],
          endMonth: '2027-03',
        }),
        [],
      ),
    ).toEqual([
      { kind: 'change', key: 'change|2027-01', month: '2027-01', amount: 60_000 },
      { kind: 'change', key: 'change|2027-02', month: '2027-02', amount: 55_000 },
      { kind: 'end', key: 'end|2027-03', month: '2027-03', amount: 55_000 },
    ]);
  });

  it('owes nothing again for what the platform was told (the same plan applied again)', () => {
    const t = terms({ changes: [{ fromMonth: '2027-01', amount: 60_000 }], endMonth: '2027-03' });
    expect(owedFeeReports(t, [change('2027-01', 60_000), end('2027-03')])).toEqual([]);
  });

  it('reports a change again under the next number when its amount changes or it is dropped', () => {
    expect(
      owedFeeReports(terms({ changes: [{ fromMonth: '2027-01', amount: 65_000 }] }), [
        change('2027-01', 60_000),
      ]),
    ).toEqual([{ kind: 'change', key: 'change|2027-01|2', month: '2027-01', amount: 65_000 }]);
    // Dropped: January bills the first amount again, and the platform is told so.
    expect(
      owedFeeReports(terms(), [change('2027-01', 60_000), change('2027-01', 65_000, 2)]),
    ).toEqual([{ kind: 'change', key: 'change|2027-01|3', month: '2027-01', amount: 50_000 }]);
    // Back to an amount told before: the latest report decides.
    expect(
      owedFeeReports(terms({ changes: [{ fromMonth: '2027-01', amount: 60_000 }] }), [
        change('2027-01', 60_000),
        change('2027-01', 50_000, 2),
      ]),
    ).toEqual([{ kind: 'change', key: 'change|2027-01|3', month: '2027-01', amount: 60_000 }]);
  });

  it('reports an end moved or withdrawn, numbering every end of the fee', () => {
    expect(owedFeeReports(terms({ endMonth: '2027-02' }), [end('2027-03')])).toEqual([
      { kind: 'end', key: 'end|2027-02|2', month: '2027-02', amount: 50_000 },
    ]);
    // Withdrawn: the fee runs to the end of its term, and the platform is told so.
    expect(owedFeeReports(terms(), [end('2027-03')])).toEqual([
      { kind: 'end', key: 'end|2027-04|2', month: '2027-04', amount: 50_000 },
    ]);
    expect(owedFeeReports(terms(), [end('2027-03'), end('2027-04', 2)])).toEqual([]);
  });

  it('leaves out changes after the end', () => {
    expect(owedFeeReports(terms({ endMonth: '2027-01' }), [change('2027-03', 60_000)])).toEqual([
      { kind: 'end', key: 'end|2027-01', month: '2027-01', amount: 50_000 },
    ]);
  });
});

describe('toldFeeFacts', () => {
  it("reads the fee's change and end fact keys, ignoring every other report of the deal", () => {
    const prefix = feeFactPrefix('cl_deal_1', 'monthly');
    expect(prefix).toBe('cl_deal_1|confirmed_amount|monthly|');
    expect(
      toldFeeFacts(prefix, [
        { factKey: 'cl_deal_1|confirmed_amount|monthly|change|2027-01', amountExTax: 60_000 },
        { factKey: 'cl_deal_1|confirmed_amount|monthly|change|2027-01|2', amountExTax: 65_000 },
        { factKey: 'cl_deal_1|confirmed_amount|monthly|end|2027-03', amountExTax: null },
        { factKey: 'cl_deal_1|confirmed_amount|monthly', amountExTax: 50_000 },
        { factKey: 'cl_deal_1|confirmed_amount|cl_deal_1|monthly|2026-11', amountExTax: 50_000 },
        { factKey: 'cl_deal_1|confirmed_amount|other|change|2027-01', amountExTax: 1 },
      ]),
    ).toEqual([change('2027-01', 60_000), change('2027-01', 65_000, 2), end('2027-03')]);
  });
});
