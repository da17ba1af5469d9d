import { ReportData } from '../report';
import { aimitsuForm } from './aimitsu';

const confirmed = (over: Partial<ReportData>): ReportData => ({
  reportId: 'rpt_1',
  kind: 'confirmed_amount',
  platform: 'aimitsu',
  dealId: 'cl_deal_1',
  occurredAt: '2027-01-10T01:00:00Z',
  amountExTax: 60_000,
  taxAmount: 6_000,
  currency: 'jpy',
  billingCount: 'monthly_fixed',
  itemKey: 'monthly',
  ...over,
});

/** The form's fields from the first monthly-fee one on. */
const feeFields = (data: ReportData) => {
  const fields = aimitsuForm(data, 'Asia/Tokyo');
  return fields.slice(fields.findIndex((f) => f.key === 'effectiveMonth' || f.key === 'endMonth'));
};

describe('PRONI アイミツ 確定報告 of a 月額固定 fee changed or ended', () => {
  it('ends with 変更月 for a change', () => {
    expect(feeFields(confirmed({ effectiveMonth: '2027-03' }))).toEqual([
      {
        key: 'effectiveMonth',
        label: '変更月',
        labelEn: 'Month the new amount applies from',
        value: '2027-03',
      },
    ]);
  });

  it('ends with 最終請求月 for an early end', () => {
    expect(feeFields(confirmed({ endMonth: '2027-02' }))).toEqual([
      { key: 'endMonth', label: '最終請求月', labelEn: 'Last month billed', value: '2027-02' },
    ]);
  });

  it('has neither on an ordinary confirmed amount, nor on other kinds', () => {
    const keys = (data: ReportData) => aimitsuForm(data, 'Asia/Tokyo').map((f) => f.key);
    expect(keys(confirmed({}))).not.toContain('effectiveMonth');
    expect(keys(confirmed({}))).not.toContain('endMonth');
    expect(keys(confirmed({ kind: 'won', endMonth: '2027-02' }))).not.toContain('endMonth');
  });
});
