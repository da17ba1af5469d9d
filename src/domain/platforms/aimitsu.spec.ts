import { AIMITSU, BILLING_COUNT_LABELS, LOST_STAGE_LABELS, aimitsuForm } from './aimitsu';
import { NOT_SET } from './form-values';
import { platformProfile } from './index';
import { ReportData, ReportKind } from '../report';

const TOKYO = 'Asia/Tokyo';

const report = (kind: ReportKind, over: Partial<ReportData> = {}): ReportData => ({
  reportId: 'rpt_1',
  kind,
  platform: 'aimitsu',
  dealId: 'cl_deal_1',
  occurredAt: '2026-11-23T01:00:00Z',
  ...over,
});

const confirmed = report('confirmed_amount', {
  billingCount: 'one_time',
  orderDescription: 'サイト制作 — Acme',
  amountExTax: 300_000,
  taxAmount: 30_000,
  currency: 'jpy',
  issueDate: '2026-11-23',
  invoicePdfUrl: 'https://pay.stripe.com/invoice/x/pdf',
});

const correct = (data: ReportData, values: Record<string, string>) =>
  AIMITSU.correct(data, TOKYO, aimitsuForm(data, TOKYO), values);

describe('PRONI アイミツ profile', () => {
  it('is the form of every name PRONI goes by', () => {
    for (const name of ['aimitsu', 'proni', 'PRONI', 'アイミツ']) {
      expect(platformProfile(name).form(confirmed, TOKYO)).toEqual(aimitsuForm(confirmed, TOKYO));
    }
  });

  it("words 請求回数's choices and 失注's as the platform does", () => {
    expect(BILLING_COUNT_LABELS).toEqual({
      one_time: '1回',
      monthly_variable: '複数回(毎月変動)',
      monthly_fixed: '複数回(月額固定)',
    });
    expect(LOST_STAGE_LABELS).toEqual({
      before_appointment: 'つながらなかった',
      after_appointment: '成約には至らなかった',
    });
  });
});

describe('PRONI アイミツ corrections (修正依頼)', () => {
  it('reads each corrected value back into the data and rebuilds the form', () => {
    const result = correct(confirmed, {
      billingCount: '複数回(毎月変動)',
      amountExTax: '290000',
      nextInvoiceDate: '2026-12-15',
      orderDescription: '  サイト制作（第1期）  ',
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.data).toMatchObject({
      billingCount: 'monthly_variable',
      amountExTax: 290_000,
      nextInvoiceDate: '2026-12-15',
      orderDescription: 'サイト制作（第1期）',
      // Untouched values stay.
      taxAmount: 30_000,
      issueDate: '2026-11-23',
    });
    expect(result.amountExTax).toBe(290_000);
    expect(result.fields.map((f) => [f.key, f.value])).toEqual([
      ['billingCount', '複数回(毎月変動)'],
      ['orderDescription', 'サイト制作（第1期）'],
      ['amountExTax', '290000'],
      ['issueDate', '2026-11-23'],
      // Optional before (one time), shown now that it is set.
      ['nextInvoiceDate', '2026-12-15'],
      ['attachment', 'https://pay.stripe.com/invoice/x/pdf'],
    ]);
    expect(result.changes).toEqual([
      { key: 'billingCount', label: '請求回数', before: '1回', after: '複数回(毎月変動)' },
      { key: 'amountExTax', label: '請求金額', before: '300000', after: '290000' },
      { key: 'nextInvoiceDate', label: '次回請求書発行日', before: null, after: '2026-12-15' },
      {
        key: 'orderDescription',
        label: '受注内容',
        before: 'サイト制作 — Acme',
        after: 'サイト制作（第1期）',
      },
    ]);
  });

  it('takes a choice by its value or with full-width parentheses, and names no change for the same value', () => {
    const byValue = correct(confirmed, { billingCount: 'monthly_fixed' });
    expect(byValue.ok && byValue.data.billingCount).toBe('monthly_fixed');
    const fullWidth = correct(confirmed, { billingCount: '複数回（毎月変動）' });
    expect(fullWidth.ok && fullWidth.fields[0].value).toBe('複数回(毎月変動)');
    const same = correct(confirmed, { billingCount: '1回', amountExTax: '300000' });
    expect(same.ok && same.changes).toEqual([]);
  });

  it('keeps a corrected attachment, which no report data shows, across later corrections', () => {
    const first = correct(confirmed, { attachment: 'https://files.example/invoice-0001.pdf' });
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    const second = AIMITSU.correct(first.data, TOKYO, first.fields, { amountExTax: '1' });
    expect(second.ok && second.fields.find((f) => f.key === 'attachment')?.value).toBe(
      'https://files.example/invoice-0001.pdf',
    );
  });

  it('corrects the 失注 answer by its label', () => {
    const lost = report('lost', { lostStage: 'before_appointment' });
    const result = correct(lost, { lostStage: '成約には至らなかった' });
    expect(result.ok && result.data.lostStage).toBe('after_appointment');
    expect(result.ok && result.fields).toEqual([
      {
        key: 'lostStage',
        label: '失注の状況',
        labelEn: expect.any(String),
        value: '成約には至らなかった',
      },
    ]);
  });

  it('refuses unknown keys, naming them and the form’s keys', () => {
    const result = correct(confirmed, { amountExTax: '1', invoiceNo: 'X', date: '2026-11-01' });
    expect(result).toEqual({
      ok: false,
      reason:
        "unknown fields invoiceNo, date: a confirmed_amount report's form has billingCount, orderDescription, amountExTax, issueDate, nextInvoiceDate, attachment, attachmentCertificate",
    });
  });

  it('refuses unreadable values, each named', () => {
    const result = correct(confirmed, {
      billingCount: '2回',
      amountExTax: '¥300,000',
      issueDate: '2026-02-30',
      orderDescription: '   ',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toContain(
      'billingCount: must be one of 1回 / 複数回(毎月変動) / 複数回(月額固定)',
    );
    expect(result.reason).toContain('amountExTax: ');
    expect(result.reason).toContain('e.g. 300000');
    expect(result.reason).toContain('issueDate: must be a date YYYY-MM-DD (got "2026-02-30")');
    expect(result.reason).toContain('orderDescription: must not be empty');
  });

  it('reads an amount in another currency as the form writes it', () => {
    const usd = { ...confirmed, currency: 'usd', amountExTax: 100_050 };
    expect(aimitsuForm(usd, TOKYO).find((f) => f.key === 'amountExTax')?.value).toBe('1000.50 USD');
    const result = correct(usd, { amountExTax: '999.99 USD' });
    expect(result.ok && result.amountExTax).toBe(99_999);
    expect(correct(usd, { amountExTax: '1.999' }).ok).toBe(false);
  });

  it('corrects a 月額固定 change’s 変更月 as a month YYYY-MM', () => {
    const change = {
      ...confirmed,
      billingCount: 'monthly_fixed' as const,
      effectiveMonth: '2027-03',
    };
    const result = correct(change, { effectiveMonth: '2027-04' });
    expect(result.ok && result.data.effectiveMonth).toBe('2027-04');
    expect(result.ok && result.changes).toEqual([
      { key: 'effectiveMonth', label: '変更月', before: '2027-03', after: '2027-04' },
    ]);
    const bad = correct(change, { effectiveMonth: '2027-13' });
    expect(!bad.ok && bad.reason).toBe('effectiveMonth: must be a month YYYY-MM (got "2027-13")');
  });

  it('a NOT_SET field corrected gets its value', () => {
    const bare = report('appointment');
    expect(aimitsuForm(bare, TOKYO)[0].value).toBe(NOT_SET);
    const result = correct(bare, { dealName: 'コーポレートサイト' });
    expect(result.ok && result.changes).toEqual([
      { key: 'dealName', label: '案件名', before: NOT_SET, after: 'コーポレートサイト' },
    ]);
  });
});
