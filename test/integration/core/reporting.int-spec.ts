import { billingKeyFor } from '../../../src/domain/billing-key';
import {
  CONTRACT_PLAN,
  createDeal,
  crmStageChanged,
  envelopeEvent,
  stripeInvoiceEvent,
  uniq,
} from '../../factories';
import { CORE_NOW, Core, startCore } from '../../support/core';

/**
 * Reports owed to referral platforms against the real Postgres: derived from what the lifecycle
 * records (stage history, posted invoices), once per fact, on the platform's channel.
 */

const hoursAgo = (h: number) => new Date(CORE_NOW.getTime() - h * 3_600_000);
const ctx = { cause: 'test', correlationId: 'corr-reporting' };

describe('core: reporting', () => {
  let core: Core;

  beforeAll(async () => {
    core = await startCore();
  });

  afterAll(async () => {
    await core?.close();
  });

  const reports = (dealId: string) =>
    core.prisma.report.findMany({ where: { dealId }, orderBy: { createdAt: 'asc' } });
  const deliveries = (dealId: string) =>
    core.prisma.$queryRaw<{ job_id: string }[]>`
      SELECT job_id FROM outbox
       WHERE job_name = 'ReportDeliver' AND data->>'dealId' = ${dealId} ORDER BY id`;

  it('a referral deal reaching WON gets its won report once, with the contracted amount', async () => {
    const crmDealId = `hs-${uniq()}`;
    const d = await createDeal(core.prisma, {
      crmDealId,
      referral: { platform: 'partner-network' },
      stage: 'NEGOTIATING',
      stageAt: hoursAgo(9),
      amount: 400_000,
      plan: CONTRACT_PLAN,
    });

    await core.apply(crmStageChanged(crmDealId, 'contractsent', hoursAgo(6)));
    await core.apply(
      envelopeEvent('completed', { envelopeId: `env-${uniq()}`, dealId: d.id }, hoursAgo(4)),
    );
    // HubSpot's closedwon after the signature, and the same stage again: nothing more to report.
    await core.apply(crmStageChanged(crmDealId, 'closedwon', hoursAgo(3)));
    await core.apply(crmStageChanged(crmDealId, 'closedwon', hoursAgo(2)));

    const rows = await reports(d.id);
    expect(rows.map((r) => [r.kind, r.factKey])).toEqual([
      ['appointment', `${d.id}|appointment`],
      ['won', `${d.id}|won`],
    ]);
    const won = rows[1];
    expect(won).toMatchObject({
      platform: 'partner-network',
      referralId: d.referralId,
      channel: 'webhook',
      status: 'PENDING',
      occurredAt: hoursAgo(4),
      dueAt: null,
    });
    expect(Number(won.amountExTax)).toBe(400_000);
    expect(won.data).toMatchObject({
      reportId: won.id,
      kind: 'won',
      dealId: d.id,
      crmDealId,
      amountExTax: 400_000,
      taxAmount: 40_000,
      currency: 'jpy',
      billingCount: 'one_time',
    });
    // Each report is delivered by one job keyed by its id (the webhook-id the platform dedupes on).
    expect(await deliveries(d.id)).toEqual(rows.map((r) => ({ job_id: `report|${r.id}` })));
  });

  it('a POSTED invoice (Stripe invoice.sent through the lifecycle) yields one confirmed-amount report', async () => {
    const d = await createDeal(core.prisma, {
      referral: { platform: 'partner-network' },
      stage: 'WON',
      stageAt: hoursAgo(9),
      plan: CONTRACT_PLAN,
    });
    await core.tx((tx) => core.lifecycle.settle(tx, d.id, ctx));
    const billingKey = billingKeyFor(d.id, 'deposit');
    const stripe = {
      providerInvoiceId: `in_${uniq()}`,
      dealId: d.id,
      itemKey: 'deposit',
      billingKey,
      number: 'CL-0042',
    };
    const confirmed = async () =>
      (await reports(d.id)).filter((r) => r.kind === 'confirmed_amount');

    await core.apply(stripeInvoiceEvent('invoice.finalized', stripe, hoursAgo(3)));
    expect(await core.prisma.invoice.findUnique({ where: { billingKey } })).toMatchObject({
      state: 'CREATED',
      providerInvoiceId: stripe.providerInvoiceId,
    });
    expect(await confirmed()).toEqual([]);

    await core.apply(stripeInvoiceEvent('invoice.sent', stripe, hoursAgo(2)));
    // Stripe resending invoice.sent, then the payment: the invoice moves on, the report is not repeated.
    await core.apply(stripeInvoiceEvent('invoice.sent', stripe, hoursAgo(2)));
    await core.apply(
      stripeInvoiceEvent('invoice.paid', { ...stripe, amountPaid: 132_000 }, hoursAgo(1)),
    );

    expect(await core.prisma.invoice.findUnique({ where: { billingKey } })).toMatchObject({
      state: 'PAID',
      invoiceNumber: 'CL-0042',
      postedAt: CORE_NOW,
    });
    const [report, ...more] = await confirmed();
    expect(more).toEqual([]);
    expect(report).toMatchObject({
      factKey: `${d.id}|confirmed_amount|${billingKey}`,
      billingKey,
      channel: 'webhook',
      status: 'PENDING',
    });
    expect(Number(report.amountExTax)).toBe(120_000);
    expect(report.data).toMatchObject({
      kind: 'confirmed_amount',
      amountExTax: 120_000,
      taxAmount: 12_000,
      currency: 'jpy',
      invoiceNumber: 'CL-0042',
      issueDate: '2026-11-20',
      // The design item is expected to be invoiced next (CONTRACT §4's plan).
      nextInvoiceDate: '2026-12-15',
      itemKey: 'deposit',
    });
    expect(await deliveries(d.id)).toContainEqual({ job_id: `report|${report.id}` });
  });

  it.each(['aimitsu', 'proni'])(
    'a %s deal (manual queue) gets tasks with deadlines instead of deliveries',
    async (platform) => {
      const d = await createDeal(core.prisma, {
        referral: { platform },
        stage: 'CONTRACT_SENT',
        stageAt: hoursAgo(9),
        plan: CONTRACT_PLAN,
      });

      await core.apply(
        envelopeEvent('completed', { envelopeId: `env-${uniq()}`, dealId: d.id }, hoursAgo(2)),
      );

      const rows = await reports(d.id);
      expect(rows.map((r) => [r.kind, r.channel, r.status])).toEqual([
        ['appointment', 'manual', 'PENDING'],
        ['won', 'manual', 'PENDING'],
        ['confirmed_amount', 'manual', 'PENDING'],
        ['confirmed_amount', 'manual', 'PENDING'],
        ['confirmed_amount', 'manual', 'PENDING'],
      ]);
      const [, won] = rows;
      // Signed 2026-11-20 08:00 in Tokyo: due by the end of the third day after (11-23 JST).
      expect(won.dueAt).toEqual(new Date('2026-11-23T15:00:00Z'));
      expect(won.fields).toEqual(
        expect.arrayContaining([expect.objectContaining({ label: '受注金額（税抜）' })]),
      );
      // Every billable item's confirmed amount waits for its invoice (報告期限前), keyed like the
      // report its invoice will make; due on its expected date, or without a deadline until the
      // invoice posts when it has none (the deposit, billed at signing; the balance).
      const task = (item: string) =>
        rows.find((r) => r.factKey === `${d.id}|confirmed_amount|${billingKeyFor(d.id, item)}`);
      expect(
        ['deposit', 'design', 'balance'].map((item) => {
          const r = task(item)!;
          return [item, r.billingKey, r.dueAt, Number(r.amountExTax)];
        }),
      ).toEqual([
        ['deposit', null, null, 120_000],
        ['design', null, new Date('2026-12-15T15:00:00Z'), 120_000],
        ['balance', null, null, 120_000],
      ]);
      expect(await deliveries(d.id)).toEqual([]);
    },
  );
});
