import { Pool } from 'pg';

import { ProviderSimulator } from '../../tools/simulator/provider-sim/simulator';
import { reportFields } from '../../src/reporting/report-fields';
import { ReportData } from '../../src/domain/report';
import { RunningHub, flushTestRedis, startHub, testDb, truncateAll } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';
import { parseCsv } from '../support/csv';

/**
 * Three-way reconciliation (issue item 4): GET /api/reconciliation with the reported leg, against
 * the built hub (ROLE=api), real Postgres and Stripe played by the provider simulator. Deals,
 * invoices, reports and the Stripe invoices are seeded directly, so each mismatch kind is set up
 * on purpose and must be named.
 */

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function call(hub: RunningHub, urlPath: string, token: string): Promise<Answer> {
  const res = await fetch(`${hub.url}${urlPath}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body };
}

describe('reconciliation: the reported leg', () => {
  let hub: RunningHub;
  let sim: ProviderSimulator;
  let db: Pool;
  let n = 0;

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await db.query('TRUNCATE report, alert, referral RESTART IDENTITY CASCADE');
    await flushTestRedis();
    sim = await ProviderSimulator.start({ port: 0 });
    hub = await startHub({
      ROLE: 'api',
      STRIPE_SECRET_KEY: 'sk_test_closeloop_reconciliation_reported',
      STRIPE_API_BASE: sim.url,
    });
  });

  afterAll(async () => {
    await hub?.stop();
    await sim?.close();
    await db?.end();
  });

  async function seedDeal(name: string, platform: string | null) {
    const id = `cl_deal_0199${String(++n).padStart(4, '0')}-0000-7000-8000-000000000000`;
    const customer = sim.stripe.createCustomer({ email: `${n}@example.jp`, name });
    await db.query(
      `INSERT INTO deal (id, name, stage, source, referral_platform, referral_id, currency, amount,
                         time_zone, billing_customer_id)
       VALUES ($1, $2, 'WON', $3, $4, $5, 'jpy', 1000000, 'Asia/Tokyo', $6)`,
      [
        id,
        name,
        platform ? 'referral' : 'admin',
        platform,
        platform ? `R-${n}` : null,
        customer.id,
      ],
    );
    return { id, customer: customer.id };
  }

  /** A hub invoice and its Stripe twin (status as given), made without webhooks. */
  async function seedInvoice(
    deal: { id: string; customer: string },
    itemKey: string,
    amount: number,
    hubState: string,
    stripeStatus: 'open' | 'paid' | 'void',
  ) {
    const billingKey = `${deal.id}|${itemKey}`;
    const inv = sim.stripe.createInvoiceOutsideHub({
      customer: deal.customer,
      amount,
      currency: 'jpy',
      description: itemKey,
      status: stripeStatus,
      emit: false,
      metadata: {
        closeloop_deal_id: deal.id,
        closeloop_item_key: itemKey,
        closeloop_billing_key: billingKey,
      },
    });
    await db.query(
      `INSERT INTO invoice (id, billing_key, deal_id, item_key, amount, tax_rate_percent, tax_amount,
                            currency, description, state, billing_customer_id, provider_invoice_id,
                            invoice_number, posted_at)
       VALUES ($1, $2, $3, $4, $5, 0, 0, 'jpy', $4, $6::"InvoiceState", $7, $8, $9, now())`,
      [
        `inv_${billingKey}`,
        billingKey,
        deal.id,
        itemKey,
        amount,
        hubState,
        deal.customer,
        inv.id,
        inv.number,
      ],
    );
    return { billingKey, stripeInvoiceId: inv.id, number: inv.number! };
  }

  async function seedReport(
    dealId: string,
    billingKey: string,
    status: string,
    amountExTax: number,
    over: { reportedAmount?: number; dueAt?: Date; platform?: string; channel?: string } = {},
  ) {
    const id = `rpt_0199${String(++n).padStart(4, '0')}-0000-7000-8000-000000000000`;
    const platform = over.platform ?? 'aimitsu';
    const data: ReportData = {
      reportId: id,
      kind: 'confirmed_amount',
      platform,
      dealId,
      occurredAt: '2026-11-23T01:00:00.000Z',
      amountExTax,
      currency: 'jpy',
      billingCount: 'one_time',
      itemKey: billingKey.split('|')[1],
    };
    await db.query(
      `INSERT INTO report (id, fact_key, deal_id, kind, platform, channel, status, data, fields,
                           occurred_at, due_at, billing_key, amount_ex_tax, reported_amount,
                           delivered_at, updated_at)
       VALUES ($1, $2, $3, 'confirmed_amount', $4, $5, $6::"ReportStatus", $7, $8, $9, $10, $11,
               $12, $13, $14, now())`,
      [
        id,
        `${dealId}|confirmed_amount|${billingKey}`,
        dealId,
        platform,
        over.channel ?? 'manual',
        status,
        JSON.stringify(data),
        JSON.stringify(reportFields(data, 'Asia/Tokyo')),
        data.occurredAt,
        over.dueAt ?? null,
        billingKey,
        amountExTax,
        over.reportedAmount ?? null,
        ['REPORTED', 'UNDER_REVIEW', 'FEE_ONGOING', 'CORRECTION_REQUESTED'].includes(status)
          ? new Date('2026-11-24T00:00:00Z')
          : null,
      ],
    );
    return id;
  }

  it('names invoiced-but-not-reported, a differing reported amount and a report of a voided invoice; clean deals stay clean', async () => {
    // Clean: invoiced, in Stripe, reported at the same amount.
    const clean = await seedDeal('Clean K.K.', 'aimitsu');
    const cleanInv = await seedInvoice(clean, 'deposit', 300_000, 'POSTED', 'open');
    await seedReport(clean.id, cleanInv.billingKey, 'REPORTED', 300_000);

    // Every reported-leg mismatch on one deal.
    const messy = await seedDeal('Messy K.K.', 'aimitsu');
    const unreported = await seedInvoice(messy, 'deposit', 300_000, 'POSTED', 'open');
    const owed = await seedInvoice(messy, 'design', 200_000, 'PAID', 'paid');
    const owedReport = await seedReport(messy.id, owed.billingKey, 'OVERDUE', 200_000, {
      dueAt: new Date('2026-12-16T15:00:00Z'),
    });
    const differs = await seedInvoice(messy, 'balance', 120_000, 'POSTED', 'open');
    const differsReport = await seedReport(messy.id, differs.billingKey, 'REPORTED', 120_000, {
      reportedAmount: 100_000,
    });
    const voided = await seedInvoice(messy, 'extra', 50_000, 'VOID', 'void');
    const voidedReport = await seedReport(messy.id, voided.billingKey, 'UNDER_REVIEW', 50_000);

    // A platform that takes no confirmed amounts (Partner Center) and a deal from no referral.
    const partner = await seedDeal('Partner K.K.', 'partner-center');
    const partnerInv = await seedInvoice(partner, 'deposit', 300_000, 'POSTED', 'open');
    await seedReport(partner.id, partnerInv.billingKey, 'NOT_APPLICABLE', 300_000, {
      platform: 'partner-center',
      channel: 'partner-center',
    });
    await seedInvoice(partner, 'design', 100_000, 'POSTED', 'open');
    const direct = await seedDeal('Direct K.K.', null);
    await seedInvoice(direct, 'deposit', 300_000, 'POSTED', 'open');

    const res = await call(hub, '/api/reconciliation', TEST_SECRETS.ADMIN_TOKEN);
    expect(res.status).toBe(200);
    const byId = new Map<string, Answer['body']>(
      res.body.deals.map((d: { dealId: string }) => [d.dealId, d]),
    );
    // One page, newest first (the dashboard shows a page's mismatches first).
    expect(res.body.deals.map((d: { dealId: string }) => d.dealId)).toEqual([
      direct.id,
      partner.id,
      messy.id,
      clean.id,
    ]);
    expect(res.body.nextCursor).toBeNull();
    expect(res.body.summary).toMatchObject({ deals: 4, dealsWithMismatches: 1, mismatches: 4 });

    expect(byId.get(clean.id)).toMatchObject({
      referralPlatform: 'aimitsu',
      invoicedHub: 300_000,
      invoicedStripe: 300_000,
      reported: 300_000,
      reports: { total: 1, byStatus: { REPORTED: 1 } },
      mismatches: [],
    });
    expect(byId.get(partner.id)).toMatchObject({ reported: 0, mismatches: [] });
    expect(byId.get(direct.id)).toMatchObject({
      referralPlatform: null,
      reported: null,
      reports: { total: 0 },
      mismatches: [],
    });

    const m = byId.get(messy.id);
    // What the platform has: the UNDER_REVIEW report (50,000) and the entered 100,000.
    expect(m).toMatchObject({ invoicedHub: 300_000 + 200_000 + 120_000, reported: 150_000 });
    expect(m.reports.byStatus).toEqual({ OVERDUE: 1, REPORTED: 1, UNDER_REVIEW: 1 });
    expect(m.mismatches).toEqual([
      {
        kind: 'invoiced_not_reported',
        billingKey: unreported.billingKey,
        stripeInvoiceId: unreported.stripeInvoiceId,
        message: `invoice ${unreported.number} for deposit (¥300,000 excl. tax, POSTED) is not reported to aimitsu: no confirmed-amount report (確定報告) exists for it`,
      },
      {
        kind: 'invoiced_not_reported',
        billingKey: owed.billingKey,
        stripeInvoiceId: owed.stripeInvoiceId,
        reportId: owedReport,
        message: `invoice ${owed.number} for design (¥200,000 excl. tax, PAID) is not reported to aimitsu: its confirmed-amount report ${owedReport} is still OVERDUE (due 2026-12-16T15:00:00.000Z)`,
      },
      {
        kind: 'reported_amount_differs',
        billingKey: differs.billingKey,
        stripeInvoiceId: differs.stripeInvoiceId,
        reportId: differsReport,
        message: `confirmed-amount report ${differsReport} (REPORTED, ¥100,000 excl. tax) told aimitsu ¥100,000 for balance, but the hub invoiced ¥120,000 and Stripe invoice ${differs.number} (${differs.stripeInvoiceId}) is for ¥120,000 excl. tax`,
      },
      {
        kind: 'reported_but_voided',
        billingKey: voided.billingKey,
        stripeInvoiceId: voided.stripeInvoiceId,
        reportId: voidedReport,
        message: `confirmed-amount report ${voidedReport} (UNDER_REVIEW, ¥50,000 excl. tax) reports invoice ${voided.number} for extra to aimitsu, but that invoice is void in the hub and in Stripe`,
      },
    ]);

    const csv = await call(hub, '/api/reconciliation?format=csv', TEST_SECRETS.ADMIN_TOKEN);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const rows = parseCsv(csv.text);
    expect(rows[0]).toEqual([
      'deal_id',
      'deal_name',
      'crm_deal_id',
      'currency',
      'contracted',
      'invoiced_hub',
      'invoiced_stripe',
      'paid',
      'mismatches',
      'referral_platform',
      'reported',
      'reports',
      'reports_not_reported',
    ]);
    expect(rows.slice(1).map((r) => r[0])).toEqual([direct.id, partner.id, messy.id, clean.id]);
    const messyRow = rows.find((r) => r[0] === messy.id)!;
    expect(messyRow.slice(9)).toEqual(['aimitsu', '150000', '3', '1']);
    for (const kind of [
      'invoiced_not_reported',
      'reported_amount_differs',
      'reported_but_voided',
    ]) {
      expect(messyRow[8]).toContain(`${kind}: `);
    }
    expect(rows.find((r) => r[0] === direct.id)!.slice(9)).toEqual(['', '', '0', '0']);
  });

  it('reconciles one deal on request, and the reported leg follows a report marked reported', async () => {
    const deal = await seedDeal('Later K.K.', 'aimitsu');
    const inv = await seedInvoice(deal, 'deposit', 80_000, 'POSTED', 'open');
    const reportId = await seedReport(deal.id, inv.billingKey, 'PENDING', 80_000, {
      dueAt: new Date('2099-01-01T00:00:00Z'),
    });
    const before = await call(
      hub,
      `/api/reconciliation?dealId=${deal.id}`,
      TEST_SECRETS.ADMIN_TOKEN,
    );
    expect(before.body.deals).toHaveLength(1);
    expect(before.body.deals[0].mismatches.map((x: { kind: string }) => x.kind)).toEqual([
      'invoiced_not_reported',
    ]);
    expect(before.body.deals[0].mismatches[0].message).toContain(`${reportId} is still PENDING`);

    const marked = await fetch(`${hub.url}/api/reports/${reportId}/mark-reported`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ amountExTax: 88_000 }),
    });
    expect(marked.status).toBe(200);
    const after = await call(
      hub,
      `/api/reconciliation?dealId=${deal.id}`,
      TEST_SECRETS.ADMIN_TOKEN,
    );
    expect(after.body.deals[0]).toMatchObject({ reported: 88_000 });
    expect(after.body.deals[0].mismatches.map((x: { kind: string }) => x.kind)).toEqual([
      'reported_amount_differs',
    ]);
  });
});
