import { billingKeyFor } from '../../../src/domain/billing-key';
import {
  CONTRACT_PLAN,
  createDeal,
  envelopeEvent,
  milestoneAccepted,
  monthlyPlan,
  uniq,
} from '../../factories';
import { CORE_NOW, Core, startCore } from '../../support/core';

/**
 * Billing against the real Postgres: which invoice rows (billing keys) and issue jobs a deal gets,
 * driven through the lifecycle as events and timers drive it.
 */

const hoursAgo = (h: number) => new Date(CORE_NOW.getTime() - h * 3_600_000);

describe('core: billing', () => {
  let core: Core;

  beforeAll(async () => {
    core = await startCore();
  });

  afterEach(() => core.clock.set(CORE_NOW));

  afterAll(async () => {
    await core?.close();
  });

  const invoices = (dealId: string) =>
    core.prisma.invoice.findMany({
      where: { dealId },
      orderBy: [{ itemKey: 'asc' }, { period: 'asc' }],
    });
  const issueJobs = (dealId: string) =>
    core.prisma.$queryRaw<{ job_id: string; job_name: string }[]>`
      SELECT job_id, job_name FROM outbox
       WHERE job_name = 'BillingInvoiceIssue' AND data->>'dealId' = ${dealId} ORDER BY job_id`;

  it('nothing bills before WON; the signature bills what had become due', async () => {
    const d = await createDeal(core.prisma, {
      stage: 'CONTRACT_SENT',
      stageAt: hoursAgo(9),
      plan: CONTRACT_PLAN,
    });
    expect(d.items.map((i) => [i.key, Number(i.amount)])).toEqual([
      ['deposit', 120_000],
      ['design', 120_000],
      ['balance', 120_000],
    ]);

    // The design milestone is accepted while the contract is still out: recorded, not billed.
    await core.apply(milestoneAccepted(d.id, 'design', hoursAgo(5)));
    expect(await invoices(d.id)).toEqual([]);
    expect(await issueJobs(d.id)).toEqual([]);
    const design = await core.prisma.billingItem.findUniqueOrThrow({
      where: { dealId_key: { dealId: d.id, key: 'design' } },
    });
    expect(design.acceptedAt).toEqual(hoursAgo(5));
    const note = await core.prisma.timelineEntry.findFirst({
      where: { dealId: d.id, kind: 'item' },
    });
    expect(note?.message).toBe(
      'Design (design) accepted by buyer@example.test — billed once the deal is WON (now CONTRACT_SENT)',
    );

    await core.apply(
      envelopeEvent('completed', { envelopeId: `env-${uniq()}`, dealId: d.id }, hoursAgo(2)),
    );

    const rows = await invoices(d.id);
    expect(
      rows.map((i) => ({
        billingKey: i.billingKey,
        itemKey: i.itemKey,
        period: i.period,
        amount: Number(i.amount),
        taxAmount: Number(i.taxAmount),
        state: i.state,
      })),
    ).toEqual([
      {
        billingKey: billingKeyFor(d.id, 'deposit'),
        itemKey: 'deposit',
        period: null,
        amount: 120_000,
        taxAmount: 12_000,
        state: 'PENDING',
      },
      {
        billingKey: billingKeyFor(d.id, 'design'),
        itemKey: 'design',
        period: null,
        amount: 120_000,
        taxAmount: 12_000,
        state: 'PENDING',
      },
    ]);
    expect(await issueJobs(d.id)).toEqual(
      rows.map((i) => ({ job_id: `bill|${i.billingKey}`, job_name: 'BillingInvoiceIssue' })),
    );
  });

  it("a WON deal's accepted milestone gets exactly one invoice row per billing key, also when applied twice", async () => {
    const d = await createDeal(core.prisma, {
      stage: 'WON',
      stageAt: hoursAgo(9),
      plan: CONTRACT_PLAN,
    });
    // The WON deal's contract.signed item is billed by the first settle.
    await core.tx(async (tx) =>
      core.lifecycle.settle(tx, d.id, { cause: 'test', correlationId: 'c' }),
    );
    expect((await invoices(d.id)).map((i) => i.itemKey)).toEqual(['deposit']);

    const accepted = await core.apply(milestoneAccepted(d.id, 'balance', hoursAgo(3)));
    // The same event replayed, and the buyer's tool sending the acceptance again.
    await core.apply(milestoneAccepted(d.id, 'balance', hoursAgo(3)), {
      eventId: accepted.eventId,
    });
    const resent = await core.apply(milestoneAccepted(d.id, 'balance', hoursAgo(1)));

    const rows = await invoices(d.id);
    expect(rows.map((i) => i.billingKey)).toEqual([
      billingKeyFor(d.id, 'balance'),
      billingKeyFor(d.id, 'deposit'),
    ]);
    expect(await issueJobs(d.id)).toEqual(
      rows.map((i) => ({ job_id: `bill|${i.billingKey}`, job_name: 'BillingInvoiceIssue' })),
    );
    const balance = await core.prisma.billingItem.findUniqueOrThrow({
      where: { dealId_key: { dealId: d.id, key: 'balance' } },
    });
    expect(balance.acceptedAt).toEqual(hoursAgo(3));
    const duplicate = await core.prisma.timelineEntry.findMany({
      where: { dealId: d.id, eventId: resent.eventId },
    });
    expect(duplicate.map((t) => t.message)).toEqual([
      '残金 (balance) was already accepted; duplicate ignored',
    ]);

    // Billing itself, run again under the deal's lock, finds every key taken.
    const again = await core.tx(async (tx) => {
      const deal = await core.lifecycle.lockDeal(tx, d.id);
      return core.billing.materialize(tx, deal, { cause: 'test', correlationId: 'c' });
    });
    expect(again).toEqual([]);
    expect(await invoices(d.id)).toHaveLength(2);
  });

  it('monthly items materialize one invoice per period as their billing dates come', async () => {
    // ¥50,000 a month from 2026-09-01 for 6 months; the clock stands at 2026-11-20 (Tokyo).
    const d = await createDeal(core.prisma, {
      stage: 'WON',
      stageAt: new Date('2026-08-20T00:00:00Z'),
      plan: monthlyPlan({ amount: 50_000, startOn: '2026-09-01', months: 6 }),
    });
    const bill = () =>
      core.tx(async (tx) => {
        const deal = await core.lifecycle.lockDeal(tx, d.id);
        return core.billing.materialize(tx, deal, { cause: 'timer', correlationId: 'c' });
      });

    expect(await bill()).toEqual(
      ['2026-09', '2026-10', '2026-11'].map((p) => billingKeyFor(d.id, 'monthly', p)),
    );
    expect(await bill()).toEqual([]);
    const [item] = await core.tx((tx) => core.billing.planItems(tx, d.id));
    expect(item).toMatchObject({ key: 'monthly', trigger: 'monthly', months: 6 });
    // The next billing date, 2026-12-01 00:00 in Tokyo, is where the worker's clock looks next.
    expect(item.nextDueAt).toEqual(new Date('2026-11-30T15:00:00Z'));

    core.clock.set('2027-01-05T03:00:00Z');
    expect(await bill()).toEqual(
      ['2026-12', '2027-01'].map((p) => billingKeyFor(d.id, 'monthly', p)),
    );

    const rows = await invoices(d.id);
    expect(rows.map((i) => [i.period, Number(i.amount), Number(i.taxAmount)])).toEqual([
      ['2026-09', 50_000, 5_000],
      ['2026-10', 50_000, 5_000],
      ['2026-11', 50_000, 5_000],
      ['2026-12', 50_000, 5_000],
      ['2027-01', 50_000, 5_000],
    ]);
    expect(await issueJobs(d.id)).toHaveLength(5);
  });

  it('a deal that is not WON materializes nothing, whatever its items say', async () => {
    const d = await createDeal(core.prisma, {
      stage: 'NEGOTIATING',
      plan: monthlyPlan({ startOn: '2026-09-01', months: 3 }),
    });
    const created = await core.tx(async (tx) => {
      const deal = await core.lifecycle.lockDeal(tx, d.id);
      return core.billing.materialize(tx, deal, { cause: 'timer', correlationId: 'c' });
    });
    expect(created).toEqual([]);
    expect(await invoices(d.id)).toEqual([]);
    expect(await issueJobs(d.id)).toEqual([]);
  });
});
