import { NOT_SET, formatAmount, formatDate, reportFields } from './report-fields';
import { ReportData, ReportKind } from '../domain/report';

const TOKYO = 'Asia/Tokyo';

const base = (kind: ReportKind, over: Partial<ReportData> = {}): ReportData => ({
  reportId: 'rpt_1',
  kind,
  platform: 'aimitsu',
  dealId: 'cl_deal_1',
  // 2026-11-23 23:30 in Tokyo, still the 23rd in UTC: 14:30Z.
  occurredAt: '2026-11-23T14:30:00Z',
  ...over,
});

/** [label, value] pairs: what the operator sees and copies. */
const shown = (data: ReportData, zone = TOKYO) =>
  reportFields(data, zone).map((f) => [f.label, f.value]);

describe('reportFields', () => {
  it('appointment: 案件名 and アポイント日 (the given date, else the local day it occurred)', () => {
    expect(
      shown(base('appointment', { dealName: 'Webサイト制作', appointmentDate: '2026-11-20' })),
    ).toEqual([
      ['案件名', 'Webサイト制作'],
      ['アポイント日', '2026-11-20'],
    ]);
    // 15:30Z on the 23rd is already the 24th in Tokyo.
    expect(shown(base('appointment', { occurredAt: '2026-11-23T15:30:00Z' }))).toEqual([
      ['案件名', NOT_SET],
      ['アポイント日', '2026-11-24'],
    ]);
    expect(shown(base('appointment', { occurredAt: '2026-11-23T15:30:00Z' }), 'UTC')[1]).toEqual([
      'アポイント日',
      '2026-11-23',
    ]);
  });

  it('won: 受注内容, 受注金額（税抜） as bare digits and 請求時期 (PRONI’s word)', () => {
    const fields = reportFields(
      base('won', {
        orderDescription: 'コーポレートサイト制作',
        amountExTax: 1_000_000,
        currency: 'jpy',
        billingTiming: '着手時30%、納品時70%',
        billingCount: 'monthly_variable',
      }),
      TOKYO,
    );
    expect(fields).toEqual([
      {
        key: 'orderDescription',
        label: '受注内容',
        labelEn: 'Order description',
        value: 'コーポレートサイト制作',
      },
      {
        key: 'amountExTax',
        label: '受注金額（税抜）',
        labelEn: 'Order amount (excl. tax)',
        value: '1000000',
      },
      {
        key: 'billingTiming',
        label: '請求時期',
        labelEn: 'When it will be invoiced',
        value: '着手時30%、納品時70%',
      },
    ]);
    // Without words for the timing, the billing count says at least how often.
    expect(shown(base('won', { amountExTax: 0, billingCount: 'monthly_fixed' }))).toEqual([
      ['受注内容', NOT_SET],
      ['受注金額（税抜）', '0'],
      ['請求時期', '複数回(月額固定)'],
    ]);
  });

  it('lost: PRONI’s one question, つながらなかった before an appointment or 成約には至らなかった after it', () => {
    const lost = (over: Partial<ReportData>) =>
      reportFields(base('lost', { date: '2026-11-01', reason: '予算不足', ...over }), TOKYO).map(
        (f) => [f.key, f.label, f.value],
      );
    expect(lost({ lostStage: 'before_appointment' })).toEqual([
      ['lostStage', '失注の状況', 'つながらなかった'],
    ]);
    expect(lost({ lostStage: 'after_appointment' })).toEqual([
      ['lostStage', '失注の状況', '成約には至らなかった'],
    ]);
    // Neither the date nor the reason is on PRONI's form; unknown stage: still asked.
    expect(lost({})).toEqual([['lostStage', '失注の状況', NOT_SET]]);
  });

  it('lost_withdrawn and declined: dates and reasons', () => {
    expect(shown(base('lost_withdrawn', { date: '2026-11-05' }))).toEqual([
      ['取り消し日', '2026-11-05'],
    ]);
    expect(shown(base('declined', { reason: 'リソース不足' }))).toEqual([
      ['辞退理由', 'リソース不足'],
    ]);
  });

  it('confirmed_amount: every field of 確定報告 in the form order, the PDF URL as the attachment', () => {
    const data = base('confirmed_amount', {
      billingCount: 'monthly_variable',
      orderDescription: '保守運用（11月分）',
      amountExTax: 300_000,
      taxAmount: 30_000,
      currency: 'jpy',
      invoiceNumber: 'ABCD-0001',
      issueDate: '2026-11-23',
      nextInvoiceDate: '2026-12-15',
      hostedInvoiceUrl: 'https://invoice.stripe.com/i/x',
      invoicePdfUrl: 'https://pay.stripe.com/invoice/x/pdf',
    });
    expect(reportFields(data, TOKYO).map((f) => [f.key, f.label, f.value])).toEqual([
      ['billingCount', '請求回数', '複数回(毎月変動)'],
      ['orderDescription', '受注内容', '保守運用（11月分）'],
      ['amountExTax', '請求金額', '300000'],
      ['issueDate', '初回の請求書発行日', '2026-11-23'],
      ['nextInvoiceDate', '次回請求書発行日', '2026-12-15'],
      ['attachment', '請求書添付', 'https://pay.stripe.com/invoice/x/pdf'],
    ]);
    expect(reportFields(data, TOKYO).every((f) => f.labelEn.length > 0)).toBe(true);
  });

  it.each([
    ['one_time', '1回'],
    ['monthly_variable', '複数回(毎月変動)'],
    ['monthly_fixed', '複数回(月額固定)'],
  ] as const)(
    'confirmed_amount: 請求回数 %s reads %s, ASCII parentheses as PRONI writes it',
    (count, label) => {
      const [first] = reportFields(base('confirmed_amount', { billingCount: count }), TOKYO);
      expect(first).toEqual({
        key: 'billingCount',
        label: '請求回数',
        labelEn: 'Number of invoices',
        value: label,
      });
    },
  );

  it('confirmed_amount: 請求書添付 is the invoice; without one the signed contract with its 締結証明書; else 未定', () => {
    const contract = {
      contractDocumentUrl: 'https://hub.example/api/deals/cl_deal_1/contract/document',
      contractCertificateUrl: 'https://hub.example/api/deals/cl_deal_1/contract/certificate',
    };
    const attachment = (over: Partial<ReportData>) =>
      reportFields(base('confirmed_amount', { billingCount: 'one_time', ...over }), TOKYO)
        .filter((f) => f.label === '請求書添付')
        .map((f) => [f.key, f.value]);
    // The invoice wins over the contract: PDF first, then the hosted page.
    expect(
      attachment({
        ...contract,
        hostedInvoiceUrl: 'https://invoice.stripe.com/i/x',
        invoicePdfUrl: 'https://pay.stripe.com/invoice/x/pdf',
      }),
    ).toEqual([['attachment', 'https://pay.stripe.com/invoice/x/pdf']]);
    expect(attachment({ ...contract, hostedInvoiceUrl: 'https://invoice.stripe.com/i/x' })).toEqual(
      [['attachment', 'https://invoice.stripe.com/i/x']],
    );
    expect(attachment(contract)).toEqual([
      ['attachment', contract.contractDocumentUrl],
      ['attachmentCertificate', contract.contractCertificateUrl],
    ]);
    expect(attachment({})).toEqual([['attachment', NOT_SET]]);
  });

  it('confirmed_amount: no next date for a one-time invoice, 未定 when a multi-invoice date is unknown', () => {
    const oneTime = shown(
      base('confirmed_amount', {
        billingCount: 'one_time',
        orderDescription: 'サイト制作',
        amountExTax: 300_000,
        issueDate: '2026-11-23',
        hostedInvoiceUrl: 'https://invoice.stripe.com/i/x',
      }),
    );
    expect(oneTime).toEqual([
      ['請求回数', '1回'],
      ['受注内容', 'サイト制作'],
      ['請求金額', '300000'],
      ['初回の請求書発行日', '2026-11-23'],
      // No PDF yet: the hosted page is the next best thing to attach.
      ['請求書添付', 'https://invoice.stripe.com/i/x'],
    ]);
    const monthly = shown(base('confirmed_amount', { billingCount: 'monthly_fixed' }));
    expect(monthly).toEqual([
      ['請求回数', '複数回(月額固定)'],
      ['受注内容', NOT_SET],
      ['請求金額', NOT_SET],
      ['初回の請求書発行日', NOT_SET],
      ['次回請求書発行日', NOT_SET],
      ['請求書添付', NOT_SET],
    ]);
  });

  it('delivered: 納品日, the given delivery date over the day it was recorded', () => {
    expect(shown(base('delivered', { deliveredOn: '2026-11-20' }))).toEqual([
      ['納品日', '2026-11-20'],
    ]);
    expect(shown(base('delivered'))).toEqual([['納品日', '2026-11-23']]);
  });

  it('additional_order: content and amount from the added items when not given outright', () => {
    const items = [
      { key: 'seo', label: 'SEO対策', amountExTax: 100_000 },
      { key: 'ads', label: '広告運用', amountExTax: 50_000 },
    ];
    expect(shown(base('additional_order', { items, billingTiming: '納品時一括' }))).toEqual([
      ['追加発注内容', 'SEO対策、広告運用'],
      ['金額（税抜）', '150000'],
      ['請求時期', '納品時一括'],
    ]);
    expect(
      shown(
        base('additional_order', {
          items,
          orderDescription: 'SEOと広告',
          amountExTax: 140_000,
          billingCount: 'one_time',
        }),
      ),
    ).toEqual([
      ['追加発注内容', 'SEOと広告'],
      ['金額（税抜）', '140000'],
      ['請求時期', '1回'],
    ]);
  });

  it('shows an invalid given date as not set rather than guessing another day', () => {
    expect(shown(base('delivered', { deliveredOn: '2026-02-30' }))).toEqual([['納品日', NOT_SET]]);
  });

  it('has no form for a kind it does not know', () => {
    expect(reportFields(base('nope' as ReportKind), TOKYO)).toEqual([]);
  });
});

describe('formatAmount', () => {
  it('writes yen as bare digits and other currencies in major units with their code', () => {
    expect(formatAmount(300_000, 'jpy')).toBe('300000');
    expect(formatAmount(300_000, 'JPY')).toBe('300000');
    expect(formatAmount(300_000)).toBe('300000');
    expect(formatAmount(100_050, 'usd')).toBe('1000.50 USD');
    expect(formatAmount(5, 'usd')).toBe('0.05 USD');
    expect(formatAmount(-1_500, 'jpy')).toBe('-1500');
  });
});

describe('formatDate', () => {
  it('keeps local dates, converts timestamps into the zone and refuses nonsense', () => {
    expect(formatDate('2026-12-15', TOKYO)).toBe('2026-12-15');
    expect(formatDate('2026-12-31T15:00:00Z', TOKYO)).toBe('2027-01-01');
    expect(formatDate('2026-12-31T15:00:00Z', 'America/New_York')).toBe('2026-12-31');
    expect(formatDate('yesterday', TOKYO)).toBeUndefined();
    expect(formatDate(undefined, TOKYO)).toBeUndefined();
  });
});
