import { AuditService } from '../../../src/admin/audit.service';
import { DealLossService } from '../../../src/admin/deal-loss.service';
import { DealQueries } from '../../../src/admin/deal-queries';
import { ReportsService } from '../../../src/admin/reports.service';
import { Actor } from '../../../src/admin/tokens.service';
import { DomainException } from '../../../src/common/domain.exception';
import { billingKeyFor } from '../../../src/domain/billing-key';
import { NormalizedEvent } from '../../../src/domain/normalized-event';
import { Report } from '../../../src/generated/prisma/client';
import {
  CONTRACT_PLAN,
  createDeal,
  crmStageChanged,
  envelopeEvent,
  milestoneEvent,
  stripeInvoiceEvent,
  uniq,
} from '../../factories';
import { CORE_NOW, Core, startCore } from '../../support/core';

/**
 * PRONI アイミツ's 確定報告 cycle (issue 13 item 2; CONTRACT §5) against the real Postgres, through
 * the lifecycle (events) and the admin services (the operator's transitions, as the admin API
 * and the dashboard call them): tasks from WON for every billable item, invoices filling them
 * in, the next cycle on approval, まだ未定 with its three reasons, 納品報告 only after a 確定報告,
 * and a loss proposed from the queue, confirmed or dismissed.
 */

const finance: Actor = { tokenId: null, name: 'fin-kato', role: 'finance' };
const hoursBefore = (h: number) => new Date(CORE_NOW.getTime() - h * 3_600_000);
const NAME = 'Website renewal';

/** Deposit + balance, a monthly variable item and a progress item (CONTRACT §4 terms). */
const LIFE_PLAN = {
  currency: 'jpy',
  taxRatePercent: 10,
  billingCount: 'monthly_variable' as const,
  items: [
    { key: 'deposit', label: '着手金', amount: 200_000, trigger: 'contract.signed' as const },
    {
      key: 'balance',
      label: '残金',
      amount: 300_000,
      trigger: 'milestone.accepted' as const,
      expectedInvoiceDate: '2027-01-29',
    },
    {
      key: 'ops',
      label: '保守運用',
      amount: 50_000,
      trigger: 'monthly' as const,
      startOn: '2026-12-25',
      months: 3,
    },
    {
      key: 'build',
      label: '開発',
      amount: 600_000,
      trigger: 'milestone.progress' as const,
      expectedInvoiceDate: '2026-12-18',
    },
  ],
};

describe('core: PRONI アイミツ 確定報告 cycle', () => {
  let core: Core;
  let admin: ReportsService;
  let loss: DealLossService;
  let queries: DealQueries;

  beforeAll(async () => {
    core = await startCore();
    const audit = new AuditService();
    admin = new ReportsService(
      core.prisma,
      audit,
      core.config,
      core.clock,
      core.lifecycle,
      core.reports,
    );
    loss = new DealLossService(
      core.prisma,
      core.lifecycle,
      core.reports,
      audit,
      core.clock,
      core.config,
    );
    queries = new DealQueries(core.prisma, core.config);
  });

  afterAll(async () => {
    await core?.close();
  });

  const reportsOf = (dealId: string, kind?: string) =>
    core.prisma.report.findMany({
      where: { dealId, ...(kind ? { kind } : {}) },
      orderBy: { factKey: 'asc' },
    });
  const byKey = async (factKey: string) =>
    core.prisma.report.findUniqueOrThrow({ where: { factKey } });
  const confirmedKey = (dealId: string, item: string, period?: string) =>
    `${dealId}|confirmed_amount|${billingKeyFor(dealId, item, period)}`;
  const stepKey = (dealId: string, n: number) =>
    `${dealId}|confirmed_amount|${billingKeyFor(dealId, 'build')}|step${n}`;
  const field = (r: Report, key: string) =>
    (r.fields as { key: string; value: string }[]).find((f) => f.key === key)?.value;

  /** The columns and content of a task the operator copies from, field by field. */
  const task = (r: Report) => ({
    factKey: r.factKey,
    kind: r.kind,
    channel: r.channel,
    status: r.status,
    billingKey: r.billingKey,
    dueAt: r.dueAt,
    amountExTax: r.amountExTax === null ? null : Number(r.amountExTax),
    postponeReason: r.postponeReason,
    data: pick(r.data as Record<string, unknown>, [
      'itemKey',
      'amountExTax',
      'taxAmount',
      'currency',
      'billingCount',
      'orderDescription',
      'issueDate',
      'nextInvoiceDate',
      'invoiceNumber',
    ]),
  });

  /** Stripe finalizes and sends an invoice the hub created (the issuer's answer, as events). */
  async function post(dealId: string, billingKey: string, number: string, paidFirst = false) {
    const itemKey = billingKey.split('|')[1];
    const stripe = { providerInvoiceId: `in_${uniq()}`, dealId, itemKey, billingKey, number };
    const paid = stripeInvoiceEvent('invoice.paid', { ...stripe, amountPaid: 1 });
    if (paidFirst) await core.apply(paid);
    await core.apply(stripeInvoiceEvent('invoice.finalized', stripe));
    const sent = await core.apply(stripeInvoiceEvent('invoice.sent', stripe));
    // Stripe's redelivery of the same event, and the same news again in a new event.
    await core.apply(stripeInvoiceEvent('invoice.sent', stripe), { eventId: sent.eventId });
    await core.apply(stripeInvoiceEvent('invoice.sent', stripe));
  }

  const status = (id: string, to: 'UNDER_REVIEW' | 'CORRECTION_REQUESTED' | 'REPORTED') =>
    admin.setStatus(id, { status: to }, finance);
  const approve = async (id: string) => {
    await status(id, 'UNDER_REVIEW');
    await status(id, 'REPORTED');
  };
  const apply = (ev: NormalizedEvent) => core.apply(ev);

  describe("an アイミツ deal's whole life", () => {
    let id: string;
    const crmDealId = `hs-${uniq()}`;

    beforeAll(async () => {
      core.clock.set(CORE_NOW);
      const d = await createDeal(core.prisma, {
        crmDealId,
        name: NAME,
        referral: { platform: 'aimitsu' },
        stage: 'REFERRED',
        amount: 1_250_000,
        plan: LIFE_PLAN,
      });
      id = d.id;
    });
    afterAll(() => core.clock.set(CORE_NOW));

    it('won (events late, twice, out of order): appointment, won and a 報告期限前 task for every billable item', async () => {
      const won = await apply(crmStageChanged(crmDealId, 'closedwon', hoursBefore(2)));
      await apply(crmStageChanged(crmDealId, 'appointmentscheduled', hoursBefore(5)));
      await core.apply(crmStageChanged(crmDealId, 'closedwon', hoursBefore(2)), {
        eventId: won.eventId,
      });
      await apply(crmStageChanged(crmDealId, 'closedwon', hoursBefore(1)));

      const deal = await core.prisma.deal.findUniqueOrThrow({ where: { id } });
      expect(deal.stage).toBe('WON');
      const rows = await reportsOf(id);
      expect(rows.map((r) => r.factKey).sort()).toEqual(
        [
          `${id}|appointment`,
          `${id}|won`,
          confirmedKey(id, 'balance'),
          confirmedKey(id, 'deposit'),
          confirmedKey(id, 'ops', '2026-12'),
          stepKey(id, 1),
        ].sort(),
      );
      const common = {
        kind: 'confirmed_amount',
        channel: 'manual',
        status: 'PENDING',
        billingKey: null,
        postponeReason: null,
      };
      const base = { currency: 'jpy', billingCount: 'monthly_variable' };
      expect(task(await byKey(confirmedKey(id, 'deposit')))).toEqual({
        ...common,
        factKey: confirmedKey(id, 'deposit'),
        // Billed at signing without an expected date: no deadline until its invoice posts.
        dueAt: null,
        amountExTax: 200_000,
        data: {
          ...base,
          itemKey: 'deposit',
          amountExTax: 200_000,
          taxAmount: 20_000,
          orderDescription: `着手金 — ${NAME}`,
          // 請求回数 per invoice: the rest of the plan follows it, the progress item's date first.
          nextInvoiceDate: '2026-12-18',
        },
      });
      expect(task(await byKey(confirmedKey(id, 'balance')))).toEqual({
        ...common,
        factKey: confirmedKey(id, 'balance'),
        // Due when its expected invoice date (Tokyo) is over.
        dueAt: new Date('2027-01-29T15:00:00Z'),
        amountExTax: 300_000,
        data: {
          ...base,
          itemKey: 'balance',
          amountExTax: 300_000,
          taxAmount: 30_000,
          orderDescription: `残金 — ${NAME}`,
          issueDate: '2027-01-29',
          nextInvoiceDate: '2026-12-18',
        },
      });
      expect(task(await byKey(confirmedKey(id, 'ops', '2026-12')))).toEqual({
        ...common,
        factKey: confirmedKey(id, 'ops', '2026-12'),
        // The monthly item's first month, due on its billing date.
        dueAt: new Date('2026-12-25T15:00:00Z'),
        amountExTax: 50_000,
        data: {
          ...base,
          itemKey: 'ops',
          amountExTax: 50_000,
          taxAmount: 5_000,
          orderDescription: `保守運用 (2026-12) — ${NAME}`,
          issueDate: '2026-12-25',
          nextInvoiceDate: '2026-12-18',
        },
      });
      const step1 = await byKey(stepKey(id, 1));
      expect(task(step1)).toEqual({
        ...common,
        factKey: stepKey(id, 1),
        // The progress item's first step: its amount is known once the progress is.
        dueAt: new Date('2026-12-18T15:00:00Z'),
        amountExTax: null,
        data: {
          ...base,
          itemKey: 'build',
          orderDescription: `開発 — ${NAME}`,
          issueDate: '2026-12-18',
          // The step stands for the rest of its item: the monthly item's first month is next.
          nextInvoiceDate: '2026-12-25',
        },
      });
      expect(field(step1, 'issueDate')).toBe('2026-12-18');
    });

    it('an invoice fills its task in (once, whatever Stripe repeats), due 3 days after it when the item had no date', async () => {
      await post(id, billingKeyFor(id, 'deposit'), 'AIM-0001');
      const deposit = await byKey(confirmedKey(id, 'deposit'));
      expect(task(deposit)).toEqual({
        factKey: confirmedKey(id, 'deposit'),
        kind: 'confirmed_amount',
        channel: 'manual',
        status: 'PENDING',
        billingKey: billingKeyFor(id, 'deposit'),
        // Posted 2026-11-20 10:00 in Tokyo: due when 11-23 is over.
        dueAt: new Date('2026-11-23T15:00:00Z'),
        amountExTax: 200_000,
        postponeReason: null,
        data: {
          itemKey: 'deposit',
          amountExTax: 200_000,
          taxAmount: 20_000,
          currency: 'jpy',
          billingCount: 'monthly_variable',
          orderDescription: `着手金 — ${NAME}`,
          invoiceNumber: 'AIM-0001',
          issueDate: '2026-11-20',
          // The earliest of what is still planned: the progress item's date.
          nextInvoiceDate: '2026-12-18',
        },
      });
      expect(field(deposit, 'amountExTax')).toBe('200000');
      expect(await reportsOf(id, 'confirmed_amount')).toHaveLength(4);
    });

    it('納品報告 waits for a 確定報告 in the platform’s hands, then is recorded exactly once', async () => {
      core.clock.set(new Date(CORE_NOW.getTime() + 3_600_000));
      await apply(milestoneEvent('delivery.completed', { dealId: id, deliveredOn: '2026-11-20' }));
      await apply(milestoneEvent('delivery.completed', { dealId: id, deliveredOn: '2026-11-20' }));
      expect((await core.prisma.deal.findUniqueOrThrow({ where: { id } })).stage).toBe('DELIVERED');
      expect(await reportsOf(id, 'delivered')).toEqual([]);

      const deposit = await byKey(confirmedKey(id, 'deposit'));
      await status(deposit.id, 'UNDER_REVIEW');
      const [delivered, ...more] = await reportsOf(id, 'delivered');
      expect(more).toEqual([]);
      expect(delivered).toMatchObject({
        factKey: `${id}|delivered`,
        channel: 'manual',
        status: 'PENDING',
        data: expect.objectContaining({ kind: 'delivered', deliveredOn: '2026-11-20' }),
      });
      expect(field(delivered, 'deliveredOn')).toBe('2026-11-20');

      await status(deposit.id, 'CORRECTION_REQUESTED');
      await status(deposit.id, 'UNDER_REVIEW');
      await status(deposit.id, 'REPORTED');
      // Another event settling the deal: still one delivered report.
      await apply(milestoneEvent('delivery.completed', { dealId: id, deliveredOn: '2026-11-20' }));
      expect(await reportsOf(id, 'delivered')).toHaveLength(1);
      // A one-off item approved: no next cycle for it; every other item has its task already.
      expect(await reportsOf(id, 'confirmed_amount')).toHaveLength(4);
    });

    it('a progress item: its step fills the first task; approval (事務局確認中 → 報告済み) opens the next step, date_changed moves the item’s date', async () => {
      core.clock.set('2026-12-18T03:00:00Z');
      await apply(
        milestoneEvent('milestone.progress', { dealId: id, itemKey: 'build', progressPercent: 40 }),
      );
      const p40 = billingKeyFor(id, 'build', 'p40');
      await post(id, p40, 'AIM-0002');
      const step1 = await byKey(stepKey(id, 1));
      expect(task(step1)).toMatchObject({
        status: 'PENDING',
        billingKey: p40,
        dueAt: new Date('2026-12-18T15:00:00Z'),
        amountExTax: 240_000,
        data: expect.objectContaining({
          amountExTax: 240_000,
          invoiceNumber: 'AIM-0002',
          issueDate: '2026-12-18',
        }),
      });
      expect(await core.prisma.report.count({ where: { billingKey: p40 } })).toBe(1);

      await approve(step1.id);
      const step2 = await byKey(stepKey(id, 2));
      expect(task(step2)).toEqual({
        factKey: stepKey(id, 2),
        kind: 'confirmed_amount',
        channel: 'manual',
        status: 'PENDING',
        billingKey: null,
        // The item's date was the first step's: the next step has none yet.
        dueAt: null,
        amountExTax: null,
        postponeReason: null,
        data: {
          itemKey: 'build',
          currency: 'jpy',
          billingCount: 'monthly_variable',
          orderDescription: `開発 — ${NAME}`,
          nextInvoiceDate: '2026-12-25',
        },
      });

      // まだ未定 (請求予定日が変更): the item's expected invoice date moves, the task follows.
      await admin.postpone(step2.id, { reason: 'date_changed', newDueAt: '2027-02-26' }, finance);
      const item = await core.prisma.billingItem.findUniqueOrThrow({
        where: { dealId_key: { dealId: id, key: 'build' } },
      });
      expect(item.expectedInvoiceDate).toBe('2027-02-26');
      const moved = await byKey(stepKey(id, 2));
      expect(task(moved)).toMatchObject({
        status: 'PENDING',
        postponeReason: 'date_changed',
        dueAt: new Date('2027-02-26T15:00:00Z'),
        data: expect.objectContaining({ issueDate: '2027-02-26' }),
      });
      expect(field(moved, 'issueDate')).toBe('2027-02-26');
      const timeline = await core.prisma.timelineEntry.findMany({
        where: { dealId: id, kind: 'billing', message: { contains: 'expected invoice date' } },
      });
      expect(timeline.map((t) => t.message)).toEqual([
        `expected invoice date of 開発 (build) moved from 2026-12-18 to 2027-02-26 (まだ未定: 請求予定日が変更, report ${step2.id})`,
      ]);

      // The last step fills the second task; approving it opens nothing (100% billed).
      core.clock.set('2027-02-20T03:00:00Z');
      await apply(
        milestoneEvent('milestone.progress', {
          dealId: id,
          itemKey: 'build',
          progressPercent: 100,
        }),
      );
      const p100 = billingKeyFor(id, 'build', 'p100');
      await post(id, p100, 'AIM-0003');
      expect(task(await byKey(stepKey(id, 2)))).toMatchObject({
        billingKey: p100,
        amountExTax: 360_000,
        dueAt: new Date('2027-02-26T15:00:00Z'),
      });
      await approve(step2.id);
      const steps = (await reportsOf(id, 'confirmed_amount')).filter(
        (r) => (r.data as { itemKey?: string }).itemKey === 'build',
      );
      expect(steps.map((r) => [r.factKey, r.billingKey, r.status])).toEqual([
        [stepKey(id, 1), p40, 'REPORTED'],
        [stepKey(id, 2), p100, 'REPORTED'],
      ]);
    });

    it('a monthly variable item: each approval opens the next month (also approved by mark-reported), until its last month', async () => {
      core.clock.set('2026-12-25T00:00:00Z');
      await core.lifecycle.billDue(id, core.clock.now());
      const dec = billingKeyFor(id, 'ops', '2026-12');
      // Stripe's events out of order: paid before finalized and sent.
      await post(id, dec, 'AIM-0004', true);
      const month1 = await byKey(confirmedKey(id, 'ops', '2026-12'));
      expect(task(month1)).toMatchObject({
        billingKey: dec,
        amountExTax: 50_000,
        dueAt: new Date('2026-12-25T15:00:00Z'),
        data: expect.objectContaining({ invoiceNumber: 'AIM-0004', issueDate: '2026-12-25' }),
      });

      await approve(month1.id);
      const month2 = await byKey(confirmedKey(id, 'ops', '2027-01'));
      expect(task(month2)).toEqual({
        factKey: confirmedKey(id, 'ops', '2027-01'),
        kind: 'confirmed_amount',
        channel: 'manual',
        status: 'PENDING',
        billingKey: null,
        dueAt: new Date('2027-01-25T15:00:00Z'),
        amountExTax: 50_000,
        postponeReason: null,
        data: {
          itemKey: 'ops',
          amountExTax: 50_000,
          taxAmount: 5_000,
          currency: 'jpy',
          billingCount: 'monthly_variable',
          orderDescription: `保守運用 (2027-01) — ${NAME}`,
          issueDate: '2027-01-25',
          // The balance's date comes before the item's next month.
          nextInvoiceDate: '2027-01-29',
        },
      });
      // A correction and approval again: the next month's task is not made twice.
      await status(month1.id, 'CORRECTION_REQUESTED');
      await status(month1.id, 'REPORTED');
      expect(await core.prisma.report.count({ where: { factKey: month2.factKey } })).toBe(1);

      // Entered and accepted before its invoice (mark-reported from 報告期限前): the next month opens.
      await admin.markReported(month2.id, {}, finance);
      const month3 = await byKey(confirmedKey(id, 'ops', '2027-02'));
      expect(task(month3)).toMatchObject({
        status: 'PENDING',
        dueAt: new Date('2027-02-25T15:00:00Z'),
      });
      // Its invoice then links to the report the platform has, without changing what was entered.
      core.clock.set('2027-01-25T00:00:00Z');
      await core.lifecycle.billDue(id, core.clock.now());
      await post(id, billingKeyFor(id, 'ops', '2027-01'), 'AIM-0005');
      expect(task(await byKey(month2.factKey))).toMatchObject({
        status: 'REPORTED',
        billingKey: billingKeyFor(id, 'ops', '2027-01'),
        data: expect.not.objectContaining({ invoiceNumber: 'AIM-0005' }),
      });

      await approve(month3.id);
      const months = (await reportsOf(id, 'confirmed_amount')).filter(
        (r) => (r.data as { itemKey?: string }).itemKey === 'ops',
      );
      // Three months, three reports: nothing is left after the last.
      expect(months.map((r) => [r.factKey, r.status])).toEqual([
        [confirmedKey(id, 'ops', '2026-12'), 'REPORTED'],
        [confirmedKey(id, 'ops', '2027-01'), 'REPORTED'],
        [confirmedKey(id, 'ops', '2027-02'), 'REPORTED'],
      ]);
      expect(await reportsOf(id, 'confirmed_amount')).toHaveLength(7);
      expect(await reportsOf(id, 'delivered')).toHaveLength(1);
    });
  });

  describe('an additional order (追加発注)', () => {
    it('starts a new cycle: the added item gets its 報告期限前 task, due on its expected date', async () => {
      core.clock.set(CORE_NOW);
      const d = await createDeal(core.prisma, {
        name: NAME,
        referral: { platform: 'aimitsu' },
        stage: 'WON',
        plan: DEPOSIT_BALANCE,
      });
      await core.tx((tx) => core.lifecycle.settle(tx, d.id, { cause: 'test', correlationId: 'c' }));
      const order = milestoneEvent('order.additional', {
        dealId: d.id,
        description: '追加ページ制作',
        items: [
          {
            key: 'extra',
            label: '追加ページ',
            amount: 80_000,
            trigger: 'milestone.accepted',
            expectedInvoiceDate: '2027-03-15',
          },
        ],
      });
      await apply(order);
      expect(await reportsOf(d.id, 'additional_order')).toHaveLength(1);
      const extra = await byKey(confirmedKey(d.id, 'extra'));
      expect(task(extra)).toEqual({
        factKey: confirmedKey(d.id, 'extra'),
        kind: 'confirmed_amount',
        channel: 'manual',
        status: 'PENDING',
        billingKey: null,
        dueAt: new Date('2027-03-15T15:00:00Z'),
        amountExTax: 80_000,
        postponeReason: null,
        data: {
          itemKey: 'extra',
          amountExTax: 80_000,
          taxAmount: 8_000,
          currency: 'jpy',
          // 請求回数 per invoice (CONTRACT §5): the balance is still planned, before it.
          billingCount: 'monthly_variable',
          orderDescription: `追加ページ — ${NAME}`,
          issueDate: '2027-03-15',
          nextInvoiceDate: '2027-01-29',
        },
      });
      expect(await reportsOf(d.id, 'confirmed_amount')).toHaveLength(3);
    });
  });

  describe('まだ未定', () => {
    beforeEach(() => core.clock.set(CORE_NOW));

    async function wonDeal(plan: unknown = MILESTONE_PLAN) {
      const d = await createDeal(core.prisma, {
        name: NAME,
        referral: { platform: 'aimitsu' },
        stage: 'CONTRACT_SENT',
        stageAt: hoursBefore(9),
        plan: plan as typeof CONTRACT_PLAN,
      });
      await apply(
        envelopeEvent('completed', { envelopeId: `env-${uniq()}`, dealId: d.id }, hoursBefore(3)),
      );
      return d.id;
    }

    it('date_changed moves the item’s expected invoice date and what follows from it; not_started moves only the deadline', async () => {
      const id = await wonDeal(DEPOSIT_BALANCE);
      await post(id, billingKeyFor(id, 'deposit'), 'AIM-0101');
      const deposit = await byKey(confirmedKey(id, 'deposit'));
      expect((deposit.data as { nextInvoiceDate?: string }).nextInvoiceDate).toBe('2027-01-29');
      const balance = await byKey(confirmedKey(id, 'balance'));

      const answer = await admin.postpone(
        balance.id,
        { reason: 'date_changed', newDueAt: '2027-03-10T18:00:00+09:00' },
        finance,
      );
      // A date-time: the item's date is its local date, the deadline the instant given.
      expect(answer).toMatchObject({ status: 'PENDING', dueAt: new Date('2027-03-10T09:00:00Z') });
      const item = () =>
        core.prisma.billingItem.findUniqueOrThrow({
          where: { dealId_key: { dealId: id, key: 'balance' } },
        });
      expect((await item()).expectedInvoiceDate).toBe('2027-03-10');
      expect((await byKey(balance.factKey)).data).toMatchObject({ issueDate: '2027-03-10' });
      // The deposit's 次回請求書発行日, not entered yet, follows the plan.
      const followed = await byKey(deposit.factKey);
      expect((followed.data as { nextInvoiceDate?: string }).nextInvoiceDate).toBe('2027-03-10');
      expect(field(followed, 'nextInvoiceDate')).toBe('2027-03-10');
      const detail = await queries.detail(core.prisma, id);
      expect(detail?.items.find((i) => i.key === 'balance')?.expectedInvoiceDate).toBe(
        '2027-03-10',
      );

      await admin.postpone(balance.id, { reason: 'not_started', newDueAt: '2027-04-01' }, finance);
      expect((await item()).expectedInvoiceDate).toBe('2027-03-10');
      expect(await byKey(balance.factKey)).toMatchObject({
        postponeReason: 'not_started',
        dueAt: new Date('2027-04-01T15:00:00Z'),
      });
    });

    it('失注: proposes the loss on the deal; confirming makes it LOST with the lost report, and the waiting tasks leave the queue', async () => {
      const id = await wonDeal();
      const design = await byKey(confirmedKey(id, 'design'));
      await admin.postpone(design.id, { reason: 'lost', note: '先方の予算凍結' }, finance);

      let deal = await core.prisma.deal.findUniqueOrThrow({ where: { id } });
      expect(deal).toMatchObject({
        stage: 'WON',
        lossProposedAt: CORE_NOW,
        lossProposal: '先方の予算凍結',
      });
      expect((await queries.detail(core.prisma, id))?.lossProposal).toEqual({
        proposedAt: CORE_NOW,
        reason: '先方の予算凍結',
      });
      expect(await byKey(design.factKey)).toMatchObject({
        status: 'PENDING',
        dueAt: null,
        postponeReason: 'lost',
      });
      expect(await reportsOf(id, 'lost')).toEqual([]);

      core.clock.set(new Date(CORE_NOW.getTime() + 3_600_000));
      const detail = await loss.confirm(id, { note: '確認済み' }, finance, 'corr-loss');
      expect(detail).toMatchObject({ stage: 'LOST', lossProposal: null });
      deal = await core.prisma.deal.findUniqueOrThrow({ where: { id } });
      expect(deal).toMatchObject({ stage: 'LOST', lossProposedAt: null, lossProposal: null });
      const [lost, ...more] = await reportsOf(id, 'lost');
      expect(more).toEqual([]);
      expect(lost).toMatchObject({
        factKey: `${id}|lost|1`,
        channel: 'manual',
        status: 'PENDING',
        data: expect.objectContaining({ kind: 'lost', reason: '先方の予算凍結' }),
      });
      // Both items' tasks waited for invoices that will not come.
      expect(
        (await reportsOf(id, 'confirmed_amount')).map((r) => [r.factKey, r.status, r.dueAt]),
      ).toEqual([
        [confirmedKey(id, 'balance'), 'NOT_APPLICABLE', null],
        [confirmedKey(id, 'design'), 'NOT_APPLICABLE', null],
      ]);
      expect(
        await core.prisma.stageTrigger.count({ where: { dealId: id, type: 'loss.confirmed' } }),
      ).toBe(1);
      const audit = await core.prisma.auditLog.findMany({ where: { target: id } });
      expect(audit).toEqual([
        expect.objectContaining({
          actor: 'fin-kato',
          role: 'finance',
          action: 'deal.loss.confirm',
          details: expect.objectContaining({ from: 'WON', to: 'LOST', note: '確認済み' }),
        }),
      ]);

      // Nothing is proposed any more.
      expect(await refusal(loss.confirm(id, {}, finance, 'corr-again'))).toMatchObject({
        status: 409,
        code: 'NO_LOSS_PROPOSED',
      });
      // The signature's event again, late: the deal stays LOST and nothing is reported twice.
      await apply(
        envelopeEvent('completed', { envelopeId: `env-${uniq()}`, dealId: id }, hoursBefore(3)),
      );
      expect((await core.prisma.deal.findUniqueOrThrow({ where: { id } })).stage).toBe('LOST');
      expect(await reportsOf(id, 'lost')).toHaveLength(1);
    });

    it('失注 dismissed: the proposal goes, the task is owed again with its deadline', async () => {
      const id = await wonDeal();
      const design = await byKey(confirmedKey(id, 'design'));
      await admin.postpone(design.id, { reason: 'lost' }, finance);
      expect((await core.prisma.deal.findUniqueOrThrow({ where: { id } })).lossProposal).toBe(
        `まだ未定（失注）: 確定報告 ${design.id}`,
      );

      const detail = await loss.dismiss(id, {}, finance, 'corr-dismiss');
      expect(detail).toMatchObject({ stage: 'WON', lossProposal: null });
      expect(await byKey(design.factKey)).toMatchObject({
        status: 'PENDING',
        postponeReason: null,
        dueAt: new Date('2026-12-15T15:00:00Z'),
      });
      expect(await reportsOf(id, 'lost')).toEqual([]);
      expect(
        (await core.prisma.auditLog.findMany({ where: { target: id } })).map((a) => a.action),
      ).toEqual(['deal.loss.dismiss']);
      expect(await refusal(loss.dismiss(id, {}, finance, 'corr-again'))).toMatchObject({
        status: 409,
        code: 'NO_LOSS_PROPOSED',
      });
    });

    it('失注 is refused for a deal with invoices: nothing changes', async () => {
      const id = await wonDeal(CONTRACT_PLAN);
      const design = await byKey(confirmedKey(id, 'design'));
      await admin.postpone(design.id, { reason: 'lost' }, finance);
      const before = await core.prisma.deal.findUniqueOrThrow({ where: { id } });

      const refused = await refusal(loss.confirm(id, {}, finance, 'corr-refused'));
      expect(refused).toMatchObject({ status: 409, code: 'LOSS_REFUSED' });
      expect(refused.message).toContain('a deal with invoices is not lost (invoice');
      expect(await core.prisma.deal.findUniqueOrThrow({ where: { id } })).toEqual(before);
      expect(await reportsOf(id, 'lost')).toEqual([]);
      expect(
        await core.prisma.stageTrigger.count({ where: { dealId: id, type: 'loss.confirmed' } }),
      ).toBe(0);
      expect(await core.prisma.auditLog.count({ where: { target: id } })).toBe(0);
    });
  });
});

/** Milestone items only (nothing billed at signing). */
const MILESTONE_PLAN = {
  currency: 'jpy',
  taxRatePercent: 10,
  billingCount: 'one_time' as const,
  items: [
    {
      key: 'design',
      label: 'Design',
      amount: 150_000,
      trigger: 'milestone.accepted' as const,
      expectedInvoiceDate: '2026-12-15',
    },
    { key: 'balance', label: '残金', amount: 250_000, trigger: 'milestone.accepted' as const },
  ],
};

/** 着手金と残金 (deposit + balance). */
const DEPOSIT_BALANCE = {
  currency: 'jpy',
  taxRatePercent: 10,
  billingCount: 'one_time' as const,
  items: [
    { key: 'deposit', label: '着手金', amount: 100_000, trigger: 'contract.signed' as const },
    {
      key: 'balance',
      label: '残金',
      amount: 300_000,
      trigger: 'milestone.accepted' as const,
      expectedInvoiceDate: '2027-01-29',
    },
  ],
};

/** How an admin service refused: the HTTP status and code the admin API answers with. */
async function refusal(
  p: Promise<unknown>,
): Promise<{ status: number; code: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof DomainException)) throw new Error(`expected a refusal, got ${String(err)}`);
  const body = err.getResponse() as { error: { message: string } };
  return { status: err.getStatus(), code: String(err.code), message: body.error.message };
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}
