import { ModuleRef } from '@nestjs/core';

import { billingKeyFor } from '../../../src/domain/billing-key';
import { CrmSyncService } from '../../../src/lifecycle/crm-sync.service';
import { LifecycleModule } from '../../../src/lifecycle/lifecycle.module';
import { CrmPort } from '../../../src/ports/crm.port';
import { FakeCrmAdapter, FakeCrmRecord } from '../../fake-crm/fake-crm.adapter';
import { FakeCrmDelivery, FakeCrmWebhook } from '../../fake-crm/fake-crm.webhook';
import { envelopeEvent, stripeInvoiceEvent, uniq } from '../../factories';
import { CORE_NOW, Core, startCore } from '../../support/core';

/**
 * docs/adding-a-provider.md, proven: a test-only CRM (test/fake-crm: its own deal fields, board and
 * column ids) bound as CrmPort instead of HubSpot drives a deal through the same core — the CRM
 * deal handler, the settle step, billing, reporting and the CRM write-back — with no change to
 * src/. The events are what a FakeCRM door would normalize; the remote read is the adapter's, as
 * the event pipeline makes it before the lane transaction.
 */

const hoursAgo = (h: number) => new Date(CORE_NOW.getTime() - h * 3_600_000);

/** One item billed on signature: the whole contracted amount. */
const SIGNATURE_PLAN = JSON.stringify({
  currency: 'jpy',
  taxRatePercent: 10,
  items: [{ key: 'work', label: 'Kiosk rollout', percent: 100, trigger: 'contract.signed' }],
});

describe('core: a CRM adapter other than HubSpot (test/fake-crm)', () => {
  const fake = new FakeCrmAdapter();
  const door = new FakeCrmWebhook();
  let core: Core;
  let crmSync: CrmSyncService;

  beforeAll(async () => {
    core = await startCore({ crm: fake });
    // The CRM write-back job's service, built by Nest in the lifecycle module's context (its
    // CrmPort is the fake, its LifecycleService the core's).
    crmSync = await core.moduleRef.select(LifecycleModule).get(ModuleRef).create(CrmSyncService);
  });

  afterAll(async () => {
    await core?.close();
  });

  /** A FakeCRM event through the core, with the deal as FakeCRM has it now. */
  const deliver = async (d: Omit<FakeCrmDelivery, 'at'>, at: Date) =>
    core.apply(door.event({ ...d, at: at.getTime() }), { remote: await fake.readDeal(d.deal) });

  const deal = (id: string) => core.prisma.deal.findUniqueOrThrow({ where: { id } });
  const timeline = (dealId: string) =>
    core.prisma.timelineEntry.findMany({ where: { dealId }, orderBy: { id: 'asc' } });
  const jobs = (dealId: string) =>
    core.prisma.$queryRaw<{ job_name: string; job_id: string }[]>`
      SELECT job_name, job_id FROM outbox WHERE data->>'dealId' = ${dealId} ORDER BY id`;

  const newFakeDeal = (over: Partial<FakeCrmRecord> = {}): FakeCrmRecord =>
    fake.put({
      id: `fc-${uniq()}`,
      title: 'Kiosk rollout',
      value: '1200000',
      currencyCode: 'JPY',
      column: 'fc-intro',
      person: { email: `hanako-${uniq()}@example.test`, first: 'Hanako', last: 'Yamada' },
      organisation: 'Fake Foods KK',
      ...over,
    });

  it('binds the fake as the CrmPort every core service injects', () => {
    expect(core.moduleRef.get(CrmPort, { strict: false })).toBe(fake);
  });

  it("drives a FakeCRM deal by the fake's own stage ids to WON, billing and reports through the same core", async () => {
    const referralId = `R-${uniq()}`;
    const fc = newFakeDeal({ plan: SIGNATURE_PLAN, referralTag: `zehitomo:${referralId}` });

    const created = await deliver({ event: 'deal.added', deal: fc.id }, hoursAgo(8));
    expect(created.ignored).toBeUndefined();
    const dealId = created.dealId!;
    const first = await deal(dealId);
    expect(first).toMatchObject({
      source: 'fake-crm',
      crmDealId: fc.id,
      crmPipeline: 'fc-main',
      crmStage: 'fc-intro',
      stage: 'APPOINTMENT',
      name: 'Kiosk rollout',
      currency: 'jpy',
      customerEmail: fc.person!.email,
      contactName: 'Hanako Yamada',
      companyName: 'Fake Foods KK',
      customerName: 'Fake Foods KK',
      referralPlatform: 'zehitomo',
      referralId,
      planError: null,
    });
    expect(Number(first.amount)).toBe(1_200_000);

    for (const [column, stage, h] of [
      ['fc-talks', 'NEGOTIATING', 6],
      ['fc-contract', 'CONTRACT_SENT', 4],
    ] as const) {
      fake.move(fc.id, column);
      const moved = await deliver({ event: 'deal.moved', deal: fc.id, column }, hoursAgo(h));
      expect(moved).toMatchObject({ dealId });
      expect(await deal(dealId)).toMatchObject({ stage, crmStage: column });
    }
    const envelopeId = `env-${uniq()}`;
    await core.apply(envelopeEvent('completed', { envelopeId, dealId }, hoursAgo(2)));

    const won = await deal(dealId);
    expect(won.stage).toBe('WON');
    expect(won.wonAt).toEqual(CORE_NOW);
    const entries = await timeline(dealId);
    expect(entries.filter((t) => t.kind === 'crm').map((t) => t.message)).toEqual([
      `deal created from FakeCRM deal ${fc.id}`,
    ]);
    expect(
      entries.filter((t) => t.kind === 'transition').map((t) => [t.fromStage, t.toStage]),
    ).toEqual([
      ['REFERRED', 'APPOINTMENT'],
      ['APPOINTMENT', 'NEGOTIATING'],
      ['NEGOTIATING', 'CONTRACT_SENT'],
      ['CONTRACT_SENT', 'WON'],
    ]);
    expect(entries.filter((t) => t.kind === 'refused')).toEqual([]);

    // The plan FakeCRM carried bills on signature; the referral platform is owed its reports;
    // FakeCRM is configured, so the won stage queues the CRM write-back.
    const invoice = await core.prisma.invoice.findUniqueOrThrow({
      where: { billingKey: billingKeyFor(dealId, 'work') },
    });
    expect(invoice).toMatchObject({ state: 'PENDING', currency: 'jpy' });
    expect(Number(invoice.amount)).toBe(1_200_000);
    const reports = await core.prisma.report.findMany({
      where: { dealId },
      orderBy: { occurredAt: 'asc' },
    });
    expect(reports.map((r) => [r.kind, r.channel, r.referralId])).toEqual([
      ['appointment', 'webhook', referralId],
      ['won', 'webhook', referralId],
    ]);
    expect(Number(reports[1].amountExTax)).toBe(1_200_000);
    expect(reports[1].data).toMatchObject({ crmDealId: fc.id, dealName: 'Kiosk rollout' });
    expect(await jobs(dealId)).toEqual([
      { job_name: 'ReportDeliver', job_id: `report|${reports[0].id}` },
      { job_name: 'CrmDealSync', job_id: `crm-sync|${dealId}|stage-WON-v${won.version}` },
      { job_name: 'BillingInvoiceIssue', job_id: expect.stringContaining(invoice.billingKey) },
      { job_name: 'ReportDeliver', job_id: `report|${reports[1].id}` },
    ]);
  });

  it('refuses a stage id the fake does not map (HubSpot ids included) onto the timeline, moving nothing', async () => {
    const fc = newFakeDeal({ column: 'fc-talks' });
    const { dealId } = await deliver({ event: 'deal.added', deal: fc.id }, hoursAgo(8));
    expect((await deal(dealId!)).stage).toBe('NEGOTIATING');

    for (const column of ['fc-parked', 'closedwon']) {
      fake.move(fc.id, column);
      const outcome = await deliver({ event: 'deal.moved', deal: fc.id, column }, hoursAgo(3));
      expect(outcome).toMatchObject({ dealId });
    }

    const after = await deal(dealId!);
    expect(after.stage).toBe('NEGOTIATING');
    expect(after.wonAt).toBeNull();
    expect(await core.prisma.stageTrigger.count({ where: { dealId } })).toBe(1);
    const refused = (await timeline(dealId!)).filter((t) => t.kind === 'refused');
    expect(refused.map((t) => t.message)).toEqual([
      expect.stringMatching(
        /^FakeCRM stage "fc-parked" of pipeline "fc-main" is not mapped to a hub stage \(map it in the fake CRM adapter\)$/,
      ),
      expect.stringMatching(
        /^FakeCRM stage "closedwon" of pipeline "fc-main" is not mapped to a hub stage \(map it in the fake CRM adapter\)$/,
      ),
    ]);
  });

  it('a deal FakeCRM no longer has is ignored; a removed one keeps its hub record', async () => {
    const fc = newFakeDeal();
    const { dealId } = await deliver({ event: 'deal.added', deal: fc.id }, hoursAgo(8));
    fake.deals.delete(fc.id);

    const gone = await deliver({ event: 'deal.moved', deal: fc.id, column: 'fc-won' }, hoursAgo(4));
    expect(gone).toMatchObject({ ignored: `FakeCRM deal ${fc.id} no longer exists` });
    const removed = await deliver({ event: 'deal.removed', deal: fc.id }, hoursAgo(3));
    expect(removed).toMatchObject({ dealId });

    expect((await deal(dealId!)).stage).toBe('APPOINTMENT');
    expect((await timeline(dealId!)).map((t) => t.message)).toContain(
      'the deal was deleted in FakeCRM; the hub keeps its record and invoices',
    );
  });

  it('writes invoiced and paid totals, the won stage and one note per fact back through the fake', async () => {
    const fc = newFakeDeal({ column: 'fc-contract', plan: SIGNATURE_PLAN });
    const { dealId } = await deliver({ event: 'deal.added', deal: fc.id }, hoursAgo(8));
    await core.apply(
      envelopeEvent('completed', { envelopeId: `env-${uniq()}`, dealId }, hoursAgo(6)),
    );
    const billingKey = billingKeyFor(dealId!, 'work');
    const invoice = { providerInvoiceId: `in_${uniq()}`, dealId, billingKey, number: 'FC-0001' };
    await core.apply(stripeInvoiceEvent('invoice.sent', invoice, hoursAgo(4)));
    await core.apply(
      stripeInvoiceEvent('invoice.paid', { ...invoice, amountPaid: 1_320_000 }, hoursAgo(2)),
    );
    expect(await core.prisma.invoice.findUniqueOrThrow({ where: { billingKey } })).toMatchObject({
      state: 'PAID',
    });
    // The one CRM-sync policy: the won stage, the confirmed amount and the payment each queue a
    // sync (the payment confirms the amount again under the same job id: a sync is idempotent).
    const syncJobs = (await jobs(dealId!)).filter((j) => j.job_name === 'CrmDealSync');
    expect([...new Set(syncJobs.map((j) => j.job_id))]).toEqual([
      expect.stringMatching(new RegExp(`^crm-sync\\|${dealId}\\|stage-WON-v\\d+$`)),
      `crm-sync|${dealId}|${billingKey}`,
      expect.stringMatching(new RegExp(`^crm-sync\\|${dealId}\\|invoice\\.paid-inv_`)),
    ]);

    expect(await crmSync.sync(dealId!)).toBe('SUCCEEDED');

    const mine = () => fake.writeBacks.filter((w) => w.crmDealId === fc.id);
    expect(mine()).toEqual([
      {
        crmDealId: fc.id,
        values: {
          invoicedAmount: 1_200_000,
          paidAmount: 1_320_000,
          syncStatus: 'in_sync',
          stageId: 'fc-won',
        },
      },
    ]);
    expect(fake.deals.get(fc.id)?.column).toBe('fc-won');
    const notes = fake.notes.filter((n) => n.crmDealId === fc.id);
    expect(notes.map((n) => n.body)).toEqual([
      'closeloop: deal WON (contract signed)',
      expect.stringMatching(/^closeloop: invoice FC-0001 sent — /),
      expect.stringMatching(/^closeloop: invoice FC-0001 paid — /),
    ]);

    // A second sync (its next job) sets the same totals again and adds no note.
    expect(await crmSync.sync(dealId!)).toBe('SUCCEEDED');
    expect(mine()).toHaveLength(2);
    expect(mine()[1].values).toMatchObject({ invoicedAmount: 1_200_000, paidAmount: 1_320_000 });
    expect(fake.notes.filter((n) => n.crmDealId === fc.id)).toHaveLength(3);
  });

  it('with no credentials the fake is not called and nothing is queued for it', async () => {
    const offline = new FakeCrmAdapter(false);
    const other = await startCore({ crm: offline });
    try {
      const fc = offline.put({ id: `fc-${uniq()}`, title: 'Offline deal', column: 'fc-contract' });
      const ev = door.event({ event: 'deal.added', deal: fc.id, at: hoursAgo(5).getTime() });
      const { dealId } = await other.apply(ev, { remote: await offline.readDeal(fc.id) });
      await other.apply(
        envelopeEvent('completed', { envelopeId: `env-${uniq()}`, dealId }, hoursAgo(4)),
      );
      expect((await other.prisma.deal.findUniqueOrThrow({ where: { id: dealId } })).stage).toBe(
        'WON',
      );
      const syncJobs = await other.prisma.$queryRaw<{ job_id: string }[]>`
        SELECT job_id FROM outbox WHERE job_name = 'CrmDealSync' AND data->>'dealId' = ${dealId}`;
      expect(syncJobs).toEqual([]);
    } finally {
      await other.close();
    }
  });
});
