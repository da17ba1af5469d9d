import { BillingPlanInput } from '../../../src/billing/billing-plan';
import { billingKeyFor } from '../../../src/domain/billing-key';
import { createDeal, monthlyPlan, stripeInvoiceEvent, uniq } from '../../factories';
import { CORE_NOW, Core, startCore } from '../../support/core';

/**
 * A monthly_fixed fee whose amount changes from a month on and that ends early (CONTRACT §4):
 * months already invoiced never change, later months bill the new amount, nothing bills after the
 * end, and the platform is told each change and the end once (§5) — against the real Postgres,
 * through the plan service and the settle step as the admin API and the CRM property drive them.
 */

const ctx = { cause: 'test', correlationId: 'corr-monthly-changes' };

describe('core: monthly fee changes and early end', () => {
  let core: Core;

  beforeAll(async () => {
    core = await startCore();
  });

  afterEach(() => core.clock.set(CORE_NOW));

  afterAll(async () => {
    await core?.close();
  });

  /** ¥50,000 a month from 2026-09-01 for 6 months (2026-09 to 2027-02), plus the given terms. */
  const plan = (monthly: Record<string, unknown> = {}): BillingPlanInput => {
    const base = monthlyPlan({ amount: 50_000, startOn: '2026-09-01', months: 6 });
    return { ...base, monthly: { ...base.monthly!, ...monthly } } as BillingPlanInput;
  };

  /** Applies a plan as the admin API's PUT does (plan, then settle) in one transaction. */
  const applyPlan = (dealId: string, input: unknown) =>
    core.tx(async (tx) => {
      const deal = await core.lifecycle.lockDeal(tx, dealId);
      const outcome = await core.plans.applyPlan(tx, deal, input, ctx);
      if (outcome.ok) await core.lifecycle.settle(tx, dealId, ctx);
      return outcome;
    });
  const settle = (dealId: string) =>
    core.tx((tx) => core.lifecycle.settle(tx, dealId, { ...ctx, now: core.clock.now() }));

  const invoices = async (dealId: string) =>
    (await core.prisma.invoice.findMany({ where: { dealId }, orderBy: { period: 'asc' } })).map(
      (i) => [i.period, Number(i.amount), Number(i.taxAmount), i.state],
    );
  const feeReports = (dealId: string) =>
    core.prisma.report.findMany({
      where: { dealId, kind: 'confirmed_amount' },
      orderBy: [{ createdAt: 'asc' }, { factKey: 'asc' }],
    });
  const fee = (dealId: string) =>
    core.prisma.billingItem.findUniqueOrThrow({
      where: { dealId_key: { dealId, key: 'monthly' } },
    });

  /** Stripe's invoice.sent for each invoice of the deal not yet posted (the invoices go out). */
  async function sendInvoices(dealId: string, paid = false): Promise<void> {
    const rows = await core.prisma.invoice.findMany({
      where: { dealId, state: { in: paid ? ['PENDING', 'POSTED'] : ['PENDING'] } },
      orderBy: { period: 'asc' },
    });
    for (const i of rows) {
      const stripe = {
        providerInvoiceId: i.providerInvoiceId ?? `in_${uniq()}`,
        dealId,
        itemKey: i.itemKey,
        billingKey: i.billingKey,
        number: `CL-${i.period}`,
      };
      if (i.state === 'PENDING') await core.apply(stripeInvoiceEvent('invoice.sent', stripe));
      if (paid) {
        await core.apply(
          stripeInvoiceEvent('invoice.paid', {
            ...stripe,
            amountPaid: Number(i.amount) + Number(i.taxAmount),
          }),
        );
      }
    }
  }

  it('bills months at the amount in force, never changes an invoiced month, stops at the end, and reports each change and the end once', async () => {
    // 2026-10-05 in Tokyo: September and October are due.
    core.clock.set('2026-10-05T03:00:00Z');
    const d = await createDeal(core.prisma, {
      referral: { platform: 'partner-network' },
      stage: 'WON',
      stageAt: new Date('2026-08-20T00:00:00Z'),
      amount: null,
      plan: plan(),
    });
    await settle(d.id);
    expect(await invoices(d.id)).toEqual([
      ['2026-09', 50_000, 5_000, 'PENDING'],
      ['2026-10', 50_000, 5_000, 'PENDING'],
    ]);
    await sendInvoices(d.id);
    // The fee's one confirmed amount (monthly_fixed: reported once for every month).
    expect((await feeReports(d.id)).map((r) => r.factKey)).toEqual([
      `${d.id}|confirmed_amount|monthly`,
    ]);
    const won = await core.prisma.report.findUniqueOrThrow({ where: { factKey: `${d.id}|won` } });
    expect(Number(won.amountExTax)).toBe(300_000);

    // ¥60,000 from November: a PUT of the plan with the change, twice.
    const changed = plan({ changes: [{ fromMonth: '2026-11', amount: 60_000 }] });
    expect(await applyPlan(d.id, changed)).toEqual({ ok: true, items: 1 });
    expect(await applyPlan(d.id, changed)).toEqual({ ok: true, items: 1 });
    const afterChange = await feeReports(d.id);
    expect(afterChange.map((r) => r.factKey)).toEqual([
      `${d.id}|confirmed_amount|monthly`,
      `${d.id}|confirmed_amount|monthly|change|2026-11`,
    ]);
    const change = afterChange[1];
    expect(change).toMatchObject({
      kind: 'confirmed_amount',
      channel: 'webhook',
      status: 'PENDING',
      billingKey: null,
    });
    expect(Number(change.amountExTax)).toBe(60_000);
    expect(change.data).toEqual({
      reportId: change.id,
      kind: 'confirmed_amount',
      platform: 'partner-network',
      referralId: d.referralId,
      dealId: d.id,
      occurredAt: '2026-10-05T03:00:00.000Z',
      dealName: 'Website renewal',
      customerName: 'Example KK',
      amountExTax: 60_000,
      taxAmount: 6_000,
      currency: 'jpy',
      billingCount: 'monthly_fixed',
      itemKey: 'monthly',
      orderDescription: '月額 (monthly fee) — Website renewal',
      issueDate: '2026-11-01',
      effectiveMonth: '2026-11',
    });
    // Delivered like every report: one ReportDeliver job per report.
    const jobs = await core.prisma.$queryRaw<{ job_id: string }[]>`
      SELECT job_id FROM outbox WHERE job_name = 'ReportDeliver' AND job_id = ${`report|${change.id}`}`;
    expect(jobs).toHaveLength(1);
    expect(await fee(d.id)).toMatchObject({
      amount: 50_000n,
      monthlyChanges: [{ fromMonth: '2026-11', amount: 60_000 }],
      endMonth: null,
    });
    // The deal had no amount of its own: its contracted amount follows the plan.
    expect(Number((await core.prisma.deal.findUniqueOrThrow({ where: { id: d.id } })).amount)).toBe(
      2 * 50_000 + 4 * 60_000,
    );

    // December 5th: November and December bill the new amount; September and October are untouched.
    core.clock.set('2026-12-05T03:00:00Z');
    await settle(d.id);
    expect(await invoices(d.id)).toEqual([
      ['2026-09', 50_000, 5_000, 'POSTED'],
      ['2026-10', 50_000, 5_000, 'POSTED'],
      ['2026-11', 60_000, 6_000, 'PENDING'],
      ['2026-12', 60_000, 6_000, 'PENDING'],
    ]);
    await sendInvoices(d.id);

    // The fee ends after December (two months early), asked twice.
    const ended = plan({
      changes: [{ fromMonth: '2026-11', amount: 60_000 }],
      endMonth: '2026-12',
    });
    expect(await applyPlan(d.id, ended)).toEqual({ ok: true, items: 1 });
    expect(await applyPlan(d.id, ended)).toEqual({ ok: true, items: 1 });
    const afterEnd = await feeReports(d.id);
    expect(afterEnd.map((r) => r.factKey)).toEqual([
      `${d.id}|confirmed_amount|monthly`,
      `${d.id}|confirmed_amount|monthly|change|2026-11`,
      `${d.id}|confirmed_amount|monthly|end|2026-12`,
    ]);
    const end = afterEnd[2];
    expect(end.amountExTax).toBeNull();
    expect(end.data).toMatchObject({
      amountExTax: 60_000,
      taxAmount: 6_000,
      billingCount: 'monthly_fixed',
      itemKey: 'monthly',
      issueDate: '2026-12-01',
      endMonth: '2026-12',
    });
    expect(end.data).not.toHaveProperty('effectiveMonth');
    expect(await fee(d.id)).toMatchObject({ endMonth: '2026-12', nextDueAt: null });
    expect(Number((await core.prisma.deal.findUniqueOrThrow({ where: { id: d.id } })).amount)).toBe(
      2 * 50_000 + 2 * 60_000,
    );

    // Months after the end never bill.
    core.clock.set('2027-04-05T03:00:00Z');
    await settle(d.id);
    expect((await invoices(d.id)).map(([period]) => period)).toEqual([
      '2026-09',
      '2026-10',
      '2026-11',
      '2026-12',
    ]);
    expect(
      await core.prisma.invoice.count({
        where: { billingKey: billingKeyFor(d.id, 'monthly', '2027-01') },
      }),
    ).toBe(0);

    // Every month it bills is billed: delivered and paid, the deal closes.
    await sendInvoices(d.id, true);
    await core.prisma.deal.update({ where: { id: d.id }, data: { deliveredOn: '2027-01-10' } });
    expect((await settle(d.id)).stage).toBe('CLOSED');
    expect((await feeReports(d.id)).length).toBe(3);
  });

  it('refuses a plan that changes an invoiced month or ends before one, and changes nothing', async () => {
    core.clock.set('2026-10-05T03:00:00Z');
    const d = await createDeal(core.prisma, {
      referral: { platform: 'partner-network' },
      stage: 'WON',
      stageAt: new Date('2026-08-20T00:00:00Z'),
      plan: plan(),
    });
    await settle(d.id);
    await sendInvoices(d.id);
    const before = {
      deal: await core.prisma.deal.findUniqueOrThrow({ where: { id: d.id } }),
      fee: await fee(d.id),
      invoices: await invoices(d.id),
      reports: (await feeReports(d.id)).map((r) => r.factKey),
    };

    // As the CRM property applies it (committed: the refusal shows on the deal's timeline).
    const refused = await applyPlan(
      d.id,
      plan({ changes: [{ fromMonth: '2026-10', amount: 60_000 }] }),
    );
    const reason =
      'monthly.changes[0].fromMonth: 2026-10 would bill ¥60,000 for 2026-10, already invoiced at ¥50,000; months already invoiced never change (a change can start from 2026-11)';
    expect(refused).toEqual({ ok: false, errors: [reason] });
    const ended = await applyPlan(d.id, plan({ endMonth: '2026-09' }));
    expect(ended).toEqual({
      ok: false,
      errors: [
        'monthly.endMonth: 2026-09 ends before 2026-10, which is already invoiced; months already invoiced never change (the earliest end is 2026-10)',
      ],
    });
    // The same refusal again records nothing new.
    await applyPlan(d.id, plan({ endMonth: '2026-09' }));

    const deal = await core.prisma.deal.findUniqueOrThrow({ where: { id: d.id } });
    expect(deal.billingPlan).toEqual(before.deal.billingPlan);
    expect(deal.amount).toEqual(before.deal.amount);
    expect(deal.planError).toBe(ended.ok ? null : ended.errors[0]);
    expect(await fee(d.id)).toEqual(before.fee);
    expect(await invoices(d.id)).toEqual(before.invoices);
    expect((await feeReports(d.id)).map((r) => r.factKey)).toEqual(before.reports);
    const refusals = await core.prisma.timelineEntry.findMany({
      where: { dealId: d.id, kind: 'refused' },
      orderBy: { id: 'asc' },
    });
    expect(refusals.map((t) => t.message)).toEqual([
      `billing plan refused: ${reason}`,
      'billing plan refused: monthly.endMonth: 2026-09 ends before 2026-10, which is already invoiced; months already invoiced never change (the earliest end is 2026-10)',
    ]);

    // A change from the first month not invoiced is taken, and clears the refusal.
    expect(
      await applyPlan(d.id, plan({ changes: [{ fromMonth: '2026-11', amount: 60_000 }] })),
    ).toEqual({ ok: true, items: 1 });
    expect(
      (await core.prisma.deal.findUniqueOrThrow({ where: { id: d.id } })).planError,
    ).toBeNull();
    // The deal's own amount (¥400,000) stays its contracted amount.
    expect(Number((await core.prisma.deal.findUniqueOrThrow({ where: { id: d.id } })).amount)).toBe(
      400_000,
    );
  });

  it('reports a change made before the first invoice once that invoice goes out', async () => {
    core.clock.set('2026-08-20T03:00:00Z');
    const d = await createDeal(core.prisma, {
      referral: { platform: 'partner-network' },
      stage: 'WON',
      stageAt: new Date('2026-08-19T00:00:00Z'),
      plan: plan({ changes: [{ fromMonth: '2026-12', amount: 45_000 }] }),
    });
    await settle(d.id);
    expect(await feeReports(d.id)).toEqual([]);
    core.clock.set('2026-09-02T03:00:00Z');
    await settle(d.id);
    await sendInvoices(d.id);
    expect(
      (await feeReports(d.id)).map((r) => [
        r.factKey,
        (r.data as { amountExTax: number }).amountExTax,
      ]),
    ).toEqual([
      [`${d.id}|confirmed_amount|monthly`, 50_000],
      [`${d.id}|confirmed_amount|monthly|change|2026-12`, 45_000],
    ]);
  });
});
