import { PinoLogger } from 'nestjs-pino';

import { loadConfig } from '../config/app-config';
import { StripeBudget, StripeClient } from '../connectors/stripe/stripe.client';
import { InvoiceView } from '../ports/invoicing.port';
import { PrismaService } from '../prisma/prisma.service';
import {
  CSV_HEADER,
  DealInput,
  ReconciliationService,
  ReportRow,
  reconcileDeal,
  reconciliationCsv,
} from './reconciliation.service';

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
  providerInvoiceId: 'in_1',
  invoiceNumber: 'N-1',
  billingCustomerId: 'cus_1',
  lastError: null,
  ...over,
});

const stripe = (over: Partial<InvoiceView> = {}): InvoiceView => ({
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
          providerInvoiceId: null,
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
    const rebillRow = hub({ billingKey: 'cl_deal_1|deposit|r1', providerInvoiceId: 'in_3' });
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
    const text = reconciliationCsv({ deals: [r] });
    const lines = text.split('\r\n');
    expect(lines[0]).toBe(CSV_HEADER.join(','));
    expect(lines[1]).toMatch(/^cl_deal_1,Website,123,jpy,1000000,300000,1,0,"?amount_differs: /);
    // A deal from no referral: no platform, nothing reported, no reports.
    expect(lines[1]).toMatch(/,,,0,0$/);
    expect(lines).toHaveLength(3); // header, one record, and the CRLF ending the last one
  });

  it('writes pages one after another under one header, in their order', () => {
    const older = reconcileDeal({ ...deal, id: 'cl_deal_0', name: 'Older' }, [], []);
    const newer = reconcileDeal(deal, [hub()], [stripe()]);
    const text = reconciliationCsv({ deals: [newer] }, { deals: [] }, { deals: [older] });
    expect(text.split('\r\n').map((l) => l.split(',')[0])).toEqual([
      'deal_id',
      'cl_deal_1',
      'cl_deal_0',
      '',
    ]);
    expect(text).toBe(reconciliationCsv({ deals: [newer, older] }));
  });
});

describe('reconcileDeal: due_not_issued (the hub owes Stripe an invoice and has not issued it)', () => {
  const now = new Date('2026-12-01T10:00:00Z');
  const ago = (ms: number) => new Date(now.getTime() - ms);
  const due = (parked: string[] = []) => ({ now, graceMs: 30_000, parked: new Set(parked) });
  const pending = (over: Partial<Hub> = {}) =>
    hub({
      state: 'PENDING',
      providerInvoiceId: null,
      invoiceNumber: null,
      updatedAt: ago(60_000),
      ...over,
    });

  it('names an open invoice untouched for longer than the grace, with its item and last error', () => {
    const r = reconcileDeal(
      deal,
      [pending({ state: 'CREATING', lastError: 'stripe 500 api_error: down' })],
      [],
      new Set(),
      [],
      due(),
    );
    expect(r.mismatches.filter((m) => m.kind === 'due_not_issued')).toEqual([
      {
        kind: 'due_not_issued',
        billingKey: 'cl_deal_1|deposit',
        message:
          'invoice cl_deal_1|deposit for item deposit is CREATING, not issued in Stripe: last error: stripe 500 api_error: down — ¥300,000 excl. tax',
      },
    ]);
  });

  it('counts a draft in Stripe (CREATED) as not issued, and says how long a quiet one waited', () => {
    const created = pending({ state: 'CREATED', providerInvoiceId: 'in_1', period: '2026-11' });
    const r = reconcileDeal(deal, [created], [stripe({ status: 'draft' })], new Set(), [], due());
    expect(r.mismatches).toEqual([
      expect.objectContaining({
        kind: 'due_not_issued',
        message: expect.stringContaining(
          'for item deposit (2026-11) is CREATED, not issued in Stripe: no attempt since 2026-12-01T09:59:00.000Z',
        ),
      }),
    ]);
  });

  it('leaves work inside the grace and invoices Stripe has alone; names a parked one at any age', () => {
    const fresh = pending({ updatedAt: ago(5_000) });
    expect(kinds(reconcileDeal(deal, [fresh], [], new Set(), [], due()))).toEqual([]);
    const posted = hub({ updatedAt: ago(3_600_000) });
    expect(kinds(reconcileDeal(deal, [posted], [stripe()], new Set(), [], due()))).toEqual([]);
    const parked = reconcileDeal(deal, [fresh], [], new Set(), [], due(['cl_deal_1|deposit']));
    expect(kinds(parked)).toEqual(['due_not_issued']);
    expect(parked.mismatches[0].message).toContain('its billing job is a dead letter');
    // The CSV's mismatches column names it like every other kind; the columns stay as they were.
    const line = reconciliationCsv({ deals: [parked] }).split('\r\n');
    expect(line[0]).toBe(CSV_HEADER.join(','));
    expect(line[1]).toContain('due_not_issued: invoice cl_deal_1|deposit for item deposit');
  });
});

describe('reconcileDeal: the reported leg', () => {
  const referred: DealInput = { ...deal, referralPlatform: 'aimitsu' };
  const report = (over: Partial<ReportRow> = {}): ReportRow => ({
    id: 'rpt_1',
    kind: 'confirmed_amount',
    status: 'REPORTED',
    factKey: 'cl_deal_1|confirmed_amount|cl_deal_1|deposit',
    billingKey: 'cl_deal_1|deposit',
    amountExTax: 300_000,
    reportedAmount: null,
    dueAt: null,
    deliveredAt: new Date('2026-11-24T00:00:00Z'),
    lastError: null,
    data: { billingCount: 'one_time', itemKey: 'deposit' },
    ...over,
  });

  it('finds nothing wrong when the platform has the invoice at its amount, and sums what it was told', () => {
    const r = reconcileDeal(referred, [hub()], [stripe()], new Set(), [
      report(),
      report({ id: 'rpt_0', kind: 'won', factKey: 'cl_deal_1|won', billingKey: null }),
    ]);
    expect(r.mismatches).toEqual([]);
    expect(r).toMatchObject({
      referralPlatform: 'aimitsu',
      reported: 300_000,
      reports: {
        total: 2,
        byStatus: { REPORTED: 2 },
        confirmed: [
          {
            id: 'rpt_1',
            status: 'REPORTED',
            billingKey: 'cl_deal_1|deposit',
            itemKey: 'deposit',
            amountExTax: 300_000,
          },
        ],
      },
    });
  });

  it('counts every status the platform has, with the amount entered there when it was given', () => {
    const statuses = ['UNDER_REVIEW', 'CORRECTION_REQUESTED', 'FEE_ONGOING', 'REPORTED'] as const;
    const rows = statuses.map((status, i) =>
      report({ id: `rpt_${i}`, status, billingKey: `k${i}`, reportedAmount: i === 0 ? 1 : null }),
    );
    const owed = ['PENDING', 'OVERDUE', 'FAILED', 'DEAD', 'NOT_APPLICABLE'] as const;
    rows.push(...owed.map((status, i) => report({ id: `rpt_o${i}`, status, billingKey: `o${i}` })));
    const r = reconcileDeal(referred, [], [], new Set(), rows);
    expect(r.reported).toBe(1 + 3 * 300_000);
    expect(r.reports.total).toBe(9);
  });

  it('names an invoice with no confirmed report, and one whose report is still owed (naming its state)', () => {
    const design = hub({
      billingKey: 'cl_deal_1|design',
      itemKey: 'design',
      state: 'PAID',
      providerInvoiceId: 'in_2',
      invoiceNumber: 'N-2',
    });
    const pending = hub({ billingKey: 'cl_deal_1|balance', itemKey: 'balance', state: 'CREATED' });
    const r = reconcileDeal(
      referred,
      [hub(), design, pending],
      [stripe(), stripe({ id: 'in_2', number: 'N-2', status: 'paid', metadata: {} })],
      new Set(),
      [report({ status: 'OVERDUE', dueAt: new Date('2026-12-16T15:00:00Z'), deliveredAt: null })],
    );
    const reported = r.mismatches.filter((m) => m.kind === 'invoiced_not_reported');
    expect(reported).toEqual([
      {
        kind: 'invoiced_not_reported',
        billingKey: 'cl_deal_1|deposit',
        stripeInvoiceId: 'in_1',
        reportId: 'rpt_1',
        message:
          'invoice N-1 for deposit (¥300,000 excl. tax, POSTED) is not reported to aimitsu: its confirmed-amount report rpt_1 is still OVERDUE (due 2026-12-16T15:00:00.000Z)',
      },
      {
        kind: 'invoiced_not_reported',
        billingKey: 'cl_deal_1|design',
        stripeInvoiceId: 'in_2',
        message:
          'invoice N-2 for design (¥300,000 excl. tax, PAID) is not reported to aimitsu: no confirmed-amount report (確定報告) exists for it',
      },
    ]);
    expect(r.reported).toBe(0);

    for (const status of ['PENDING', 'FAILED', 'DEAD'] as const) {
      const one = reconcileDeal(referred, [hub()], [stripe()], new Set(), [
        report({ status, lastError: status === 'PENDING' ? null : 'webhook 500' }),
      ]);
      expect(one.mismatches.map((m) => m.message)).toEqual([
        expect.stringContaining(
          `report rpt_1 is still ${status}${status === 'PENDING' ? '' : ' (webhook 500)'}`,
        ),
      ]);
    }
  });

  it('finds a report marked reported before its invoice came through its fact key', () => {
    const r = reconcileDeal(referred, [hub()], [stripe()], new Set(), [
      report({ billingKey: null }),
    ]);
    expect(r.mismatches).toEqual([]);
    expect(r.reports.confirmed[0].billingKey).toBe('cl_deal_1|deposit');
  });

  it('owes nothing to a platform that takes no confirmed amounts, nor for a deal from no referral', () => {
    const na = reconcileDeal(
      referred,
      [hub(), hub({ billingKey: 'x', itemKey: 'x' })],
      [stripe()],
      new Set(),
      [report({ status: 'NOT_APPLICABLE', deliveredAt: null })],
    );
    expect(na.mismatches.map((m) => m.kind)).not.toContain('invoiced_not_reported');
    // A task closed when the deal was lost (no invoice of its own) does not excuse an invoice.
    const lostTask = reconcileDeal(referred, [hub()], [stripe()], new Set(), [
      report({
        id: 'rpt_lost',
        status: 'NOT_APPLICABLE',
        billingKey: null,
        factKey: 'cl_deal_1|confirmed_amount|cl_deal_1|design',
      }),
    ]);
    expect(lostTask.mismatches.map((m) => m.kind)).toEqual(['invoiced_not_reported']);
    const plain = reconcileDeal(deal, [hub()], [stripe()]);
    expect(plain.mismatches).toEqual([]);
    expect(plain.reported).toBeNull();
  });

  it('lets one monthly_fixed report cover every month of its item, but not another item', () => {
    const month = (period: string, over: Partial<Hub> = {}) =>
      hub({
        billingKey: `cl_deal_1|retainer|${period}`,
        itemKey: 'retainer',
        period,
        amount: 50_000,
        providerInvoiceId: `in_${period}`,
        invoiceNumber: `R-${period}`,
        ...over,
      });
    const fixed = report({
      status: 'FEE_ONGOING',
      factKey: 'cl_deal_1|confirmed_amount|retainer',
      billingKey: 'cl_deal_1|retainer|2026-11',
      amountExTax: 50_000,
      data: { billingCount: 'monthly_fixed', itemKey: 'retainer' },
    });
    const invoices = [month('2026-11'), month('2026-12'), month('2027-01')];
    const stripeSide = invoices.map((h) =>
      stripe({ id: h.providerInvoiceId!, subtotal: 50_000, metadata: {} }),
    );
    const r = reconcileDeal(referred, [...invoices, hub()], stripeSide, new Set(), [fixed]);
    expect(r.mismatches.map((m) => [m.kind, m.billingKey])).toEqual([
      ['invoiced_not_reported', 'cl_deal_1|deposit'],
    ]);
    expect(r.reported).toBe(50_000);
  });

  it('names a reported amount that differs from the hub invoice or from Stripe', () => {
    const entered = reconcileDeal(referred, [hub()], [stripe()], new Set(), [
      report({ reportedAmount: 290_000 }),
    ]);
    expect(entered.mismatches).toEqual([
      {
        kind: 'reported_amount_differs',
        billingKey: 'cl_deal_1|deposit',
        stripeInvoiceId: 'in_1',
        reportId: 'rpt_1',
        message:
          'confirmed-amount report rpt_1 (REPORTED, ¥290,000 excl. tax) told aimitsu ¥290,000 for deposit, but the hub invoiced ¥300,000 and Stripe invoice N-1 (in_1) is for ¥300,000 excl. tax',
      },
    ]);
    expect(entered.reported).toBe(290_000);

    const stripeOnly = reconcileDeal(
      referred,
      [hub()],
      [stripe({ subtotal: 310_000 })],
      new Set(),
      [report({ status: 'UNDER_REVIEW' })],
    );
    expect(stripeOnly.mismatches.map((m) => m.kind)).toEqual([
      'amount_differs',
      'reported_amount_differs',
    ]);
    expect(stripeOnly.mismatches[1].message).toContain('Stripe invoice N-1 (in_1) is for ¥310,000');
    expect(stripeOnly.mismatches[1].message).not.toContain('the hub invoiced');
  });

  it('names a delivered report whose invoice is void in the hub or in Stripe, not an owed one', () => {
    const inStripe = reconcileDeal(referred, [hub()], [stripe({ status: 'void' })], new Set(), [
      report(),
    ]);
    expect(inStripe.mismatches.map((m) => m.kind)).toEqual([
      'status_differs',
      'reported_but_voided',
    ]);
    expect(inStripe.mismatches[1]).toMatchObject({
      reportId: 'rpt_1',
      message:
        'confirmed-amount report rpt_1 (REPORTED, ¥300,000 excl. tax) reports invoice N-1 for deposit to aimitsu, but that invoice is void in Stripe',
    });
    const both = reconcileDeal(
      referred,
      [hub({ state: 'VOID' })],
      [stripe({ status: 'void' })],
      new Set(),
      [report({ status: 'CORRECTION_REQUESTED' })],
    );
    expect(both.mismatches.map((m) => m.kind)).toEqual(['reported_but_voided']);
    expect(both.mismatches[0].message).toMatch(/void in the hub and in Stripe$/);
    // Not delivered yet: nothing was told to the platform, and a void invoice is owed no report.
    const owed = reconcileDeal(
      referred,
      [hub({ state: 'VOID' })],
      [stripe({ status: 'void' })],
      new Set(),
      [report({ status: 'PENDING' })],
    );
    expect(owed.mismatches).toEqual([]);
  });

  it('writes the reported columns into the CSV', () => {
    const r = reconcileDeal(referred, [hub()], [stripe()], new Set(), [
      report({ status: 'OVERDUE' }),
      report({ id: 'rpt_2', kind: 'won', factKey: 'cl_deal_1|won', billingKey: null }),
    ]);
    const text = reconciliationCsv({ deals: [r] });
    const [header, row] = text.split('\r\n');
    expect(header.split(',').slice(-5)).toEqual([
      'mismatches',
      'referral_platform',
      'reported',
      'reports',
      'reports_not_reported',
    ]);
    expect(row).toMatch(
      /^cl_deal_1,Website,123,jpy,1000000,300000,300000,0,"invoiced_not_reported: [^"]*",/,
    );
    expect(row).toMatch(/,aimitsu,0,2,1$/);
  });
});

describe('ReconciliationService: bounded work', () => {
  type Budget = StripeBudget | undefined;
  const dealRow = (i: number) => ({
    id: `cl_deal_${String(i).padStart(3, '0')}`,
    name: `Deal ${i}`,
    crmDealId: null,
    stage: 'WON',
    currency: 'jpy',
    amount: 1000,
    billingPlan: null,
    referralPlatform: null,
    billingCustomerId: `cus_${i}`,
    reports: [],
    invoices: [],
  });

  /** The service over a fake deal table (ids as given) and a fake Stripe that records each read. */
  function setup(count: number, opts: { failOn?: string } = {}) {
    const rows = Array.from({ length: count }, (_, i) => dealRow(i)).reverse(); // newest first
    const findMany = jest.fn(
      async (args: { where: unknown; take?: number }): Promise<ReturnType<typeof dealRow>[]> => {
        const cursor = JSON.stringify(args.where).match(/"lt":"([^"]+)"/)?.[1];
        const after = cursor ? rows.filter((r) => r.id < cursor) : rows;
        return after.slice(0, args.take);
      },
    );
    const budgets: Budget[] = [];
    let inFlight = 0;
    let peak = 0;
    const read = async (budget: Budget, what: string) => {
      budgets.push(budget);
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      if (opts.failOn === what) throw new Error(`stripe 500 api_error: ${what}`);
      return [];
    };
    const stripe = {
      listInvoicesForCustomer: (customer: string, budget?: StripeBudget) => read(budget, customer),
      searchInvoicesByDeal: (dealId: string, budget?: StripeBudget) => read(budget, dealId),
      retrieveInvoice: () => {
        throw new Error('no hub invoices here');
      },
    };
    const logger = { setContext: jest.fn(), warn: jest.fn() };
    const service = new ReconciliationService(
      { deal: { findMany } } as unknown as PrismaService,
      stripe as unknown as StripeClient,
      loadConfig({ STRIPE_SECRET_KEY: 'sk_test_1' }),
      logger as unknown as PinoLogger,
    );
    return { service, findMany, budgets, peak: () => peak, logger };
  }

  it("reads only the page's deals, all on reconciliation's budget, at most 4 deals at once", async () => {
    const { service, budgets, peak } = setup(30);
    const first = await service.report({ limit: 10 });
    expect(first.deals.map((d) => d.dealId)).toEqual(
      Array.from({ length: 10 }, (_, i) => dealRow(29 - i).id),
    );
    expect(first.nextCursor).toBe(dealRow(20).id);
    expect(budgets).toHaveLength(20); // a customer list and a search per deal of the page
    expect(new Set(budgets)).toEqual(new Set(['reconciliation']));
    expect(peak()).toBeLessThanOrEqual(2 * 4); // 4 deals, two reads each
    const last = await service.report({ limit: 10, cursor: dealRow(10).id });
    expect(last.deals.map((d) => d.dealId)).toEqual(
      Array.from({ length: 10 }, (_, i) => dealRow(9 - i).id),
    );
    expect(last.nextCursor).toBeNull();
  });

  it('stops reading Stripe for a page once one of its deals failed (502)', async () => {
    const { service, budgets } = setup(40, { failOn: 'cus_39' });
    await expect(service.report({ limit: 40 })).rejects.toMatchObject({
      code: 'STRIPE_UNAVAILABLE',
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(budgets.length).toBeLessThan(2 * 8); // not the 80 reads of the whole page
  });

  it('reads the CSV pages only as the stream is read, and breaks the stream off on a failing page', async () => {
    const { service, findMany } = setup(5);
    const { body } = await service.csv({ limit: 2 });
    expect(findMany).toHaveBeenCalledTimes(1); // the first page, before anything is sent
    let text = '';
    for await (const chunk of body) text += String(chunk);
    expect(findMany).toHaveBeenCalledTimes(3);
    const rows = text.split('\r\n').map((l) => l.split(',')[0]);
    expect(rows).toEqual(['deal_id', ...[4, 3, 2, 1, 0].map((i) => dealRow(i).id), '']);

    const failing = setup(5, { failOn: dealRow(1).id });
    const stream = (await failing.service.csv({ limit: 2 })).body;
    const received: string[] = [];
    const read = async () => {
      for await (const chunk of stream) received.push(String(chunk));
    };
    await expect(read()).rejects.toMatchObject({ code: 'STRIPE_UNAVAILABLE' });
    expect(received.join('').split('\r\n')[0]).toBe(CSV_HEADER.join(','));
    expect(failing.logger.warn).toHaveBeenCalledWith(
      expect.objectContaining({ cursor: dealRow(3).id }),
      'reconciliation CSV aborted: a page could not be read',
    );
  });
});
