import { Job } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';

import { TransientError } from '../../../src/common/errors';
import { billingKeyFor } from '../../../src/domain/billing-key';
import { ReportData } from '../../../src/domain/report';
import { InvoiceView, InvoicingPort } from '../../../src/ports/invoicing.port';
import {
  REFERRAL_PLATFORM_ADAPTERS,
  ReferralPlatformPort,
} from '../../../src/ports/referral-platform.port';
import { ReportDeliverData } from '../../../src/queue/job-data.types';
import { SerializationLockService } from '../../../src/queue/serialization-lock.service';
import { ReportDeliverHandler } from '../../../src/reporting/report-deliver.handler';
import { ReportRefresher } from '../../../src/reporting/report-refresher.service';
import {
  StartedReportReceiver,
  startReportReceiver,
} from '../../../tools/simulator/provider-sim/report-receiver';
import { ProviderSimulator } from '../../../tools/simulator/provider-sim/simulator';
import {
  CONTRACT_PLAN,
  createDeal,
  crmStageChanged,
  envelopeEvent,
  stripeInvoiceEvent,
  uniq,
} from '../../factories';
import { CORE_ENV, CORE_NOW, Core, startCore } from '../../support/core';

/**
 * Reports are built when they are delivered, from the facts then known (issue 13 item 6), against
 * the real Postgres, the simulator's Stripe and a signed report receiver: a confirmed amount made
 * from a Stripe event alone (the issuer's own answer was lost) goes out with the invoice's number,
 * hosted and PDF URLs and its own tax, read from Stripe and kept on the invoice row; never without
 * them. Also: 請求回数 per invoice, 失注 before or after an appointment, the signed contract as the
 * attachment of a task without an invoice.
 */

const hoursAgo = (h: number) => new Date(CORE_NOW.getTime() - h * 3_600_000);
const ctx = { cause: 'test', correlationId: 'corr-confirmed' };
const silentLogger = {
  setContext: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
} as unknown as PinoLogger;

describe('core: a confirmed amount is built when it is delivered', () => {
  let core: Core;
  let sim: ProviderSimulator;
  let receiver: StartedReportReceiver;
  let invoicing: InvoicingPort;
  let handler: ReportDeliverHandler;

  beforeAll(async () => {
    sim = await ProviderSimulator.start({ port: 0 });
    receiver = await startReportReceiver({
      secret: CORE_ENV.REFERRAL_REPORT_WEBHOOK_SECRET,
      path: '/reports',
    });
    core = await startCore({
      env: {
        STRIPE_SECRET_KEY: 'sk_test_closeloop_confirmed_report',
        STRIPE_API_BASE: sim.url,
        REFERRAL_REPORT_WEBHOOK_URL: receiver.reportUrl,
        PUBLIC_BASE_URL: 'https://hub.example.jp',
      },
    });
    const get = <T>(token: unknown): T => core.moduleRef.get(token as never, { strict: false });
    invoicing = get<InvoicingPort>(InvoicingPort);
    handler = new ReportDeliverHandler(
      core.prisma,
      get<SerializationLockService>(SerializationLockService),
      core.clock,
      get<ReferralPlatformPort[]>(REFERRAL_PLATFORM_ADAPTERS),
      new ReportRefresher(
        core.prisma,
        invoicing,
        core.reports,
        core.config,
        core.clock,
        silentLogger,
      ),
    );
  });

  afterAll(async () => {
    await core?.close();
    await receiver?.close();
    await sim?.close();
  });

  const deliver = (report: { id: string; dealId: string }) =>
    handler.handle({
      data: { reportId: report.id, dealId: report.dealId, correlationId: 'c-confirmed' },
    } as Job<ReportDeliverData>);
  const confirmedReports = (dealId: string) =>
    core.prisma.report.findMany({
      where: { dealId, kind: 'confirmed_amount' },
      orderBy: { createdAt: 'asc' },
    });

  /**
   * The Stripe invoice of a billing key, made in the simulator through the invoicing port (as the
   * issuer makes it), at `taxPercent`; `send` false leaves it a draft. The hub's row is told only
   * its id, as if the issuer crashed after creating it.
   */
  async function stripeInvoice(
    dealId: string,
    itemKey: string,
    opts: { amount: number; taxPercent: number; send?: boolean },
  ): Promise<InvoiceView> {
    const billingKey = billingKeyFor(dealId, itemKey);
    const customerId = await invoicing.ensureCustomer(
      { customerKey: `deal:${dealId}`, name: 'Acme 株式会社' },
      { searchFirst: false },
    );
    const draft = await invoicing.createDraftInvoice({
      billingKey,
      customerId,
      currency: 'jpy',
      description: `${itemKey} — Website renewal`,
      daysUntilDue: 30,
      metadata: {
        closeloop_deal_id: dealId,
        closeloop_item_key: itemKey,
        closeloop_billing_key: billingKey,
      },
    });
    await invoicing.addInvoiceLine({
      billingKey,
      customerId,
      invoiceId: draft.id,
      amount: opts.amount,
      currency: 'jpy',
      description: itemKey,
      taxRateId: await invoicing.ensureTaxRate(opts.taxPercent),
    });
    await core.prisma.invoice.update({
      where: { billingKey },
      data: { providerInvoiceId: draft.id, state: 'CREATED', issueAttempts: 1 },
    });
    return opts.send === false ? draft : invoicing.sendInvoice(billingKey, draft.id);
  }

  /** Stripe's invoice.sent as the hub normalizes a thin one: no number, URLs, total or tax. */
  const sentEvent = (dealId: string, itemKey: string, invoiceId: string) =>
    stripeInvoiceEvent(
      'invoice.sent',
      {
        providerInvoiceId: invoiceId,
        dealId,
        itemKey,
        billingKey: billingKeyFor(dealId, itemKey),
      },
      hoursAgo(1),
    );

  async function wonDeal(platform: string) {
    const d = await createDeal(core.prisma, {
      referral: { platform },
      stage: 'WON',
      stageAt: hoursAgo(9),
      plan: CONTRACT_PLAN,
    });
    // The signature makes the deposit due.
    await core.tx((tx) => core.lifecycle.settle(tx, d.id, ctx));
    return d;
  }

  it('a report from a thin invoice.sent goes out with the number, URLs and the invoice’s own tax, read from Stripe', async () => {
    const d = await wonDeal('partner-network');
    // Stripe's invoice charges 8%: the report states its tax, not the hub's 10% estimate.
    const view = await stripeInvoice(d.id, 'deposit', { amount: 120_000, taxPercent: 8 });
    expect(view).toMatchObject({ status: 'open', tax: 9_600 });
    expect(view.number).toEqual(expect.any(String));

    await core.apply(sentEvent(d.id, 'deposit', view.id));
    const [report, ...more] = await confirmedReports(d.id);
    expect(more).toEqual([]);
    // As recorded: the row knew no more than the event said.
    expect(report.data).toMatchObject({ taxAmount: 12_000 });
    expect((report.data as unknown as ReportData).invoiceNumber).toBeUndefined();

    await expect(deliver(report)).resolves.toBe('SUCCEEDED');

    const [sent, ...others] = receiver.receiver
      .byKind('confirmed_amount')
      .filter((r) => r.id === report.id);
    expect(others).toEqual([]);
    expect(sent.data).toMatchObject({
      reportId: report.id,
      kind: 'confirmed_amount',
      dealId: d.id,
      amountExTax: 120_000,
      taxAmount: 9_600,
      currency: 'jpy',
      invoiceNumber: view.number,
      hostedInvoiceUrl: view.hostedInvoiceUrl,
      invoicePdfUrl: view.invoicePdf,
      issueDate: '2026-11-20',
      // Design and balance are still to be invoiced: 複数回(毎月変動), design's date next.
      billingCount: 'monthly_variable',
      nextInvoiceDate: '2026-12-15',
    });
    expect(view.hostedInvoiceUrl).toEqual(expect.any(String));
    expect(view.invoicePdf).toEqual(expect.any(String));

    // The invoice row is completed, and the report row states what was sent.
    expect(
      await core.prisma.invoice.findUnique({
        where: { billingKey: billingKeyFor(d.id, 'deposit') },
      }),
    ).toMatchObject({
      invoiceNumber: view.number,
      hostedInvoiceUrl: view.hostedInvoiceUrl,
      invoicePdfUrl: view.invoicePdf,
      total: BigInt(129_600),
      taxAmount: BigInt(9_600),
    });
    const row = await core.prisma.report.findUniqueOrThrow({ where: { id: report.id } });
    expect(row.status).toBe('REPORTED');
    expect(row.data).toEqual(sent.data);
    const timeline = await core.prisma.timelineEntry.findMany({ where: { dealId: d.id } });
    expect(timeline.map((t) => t.message)).toContainEqual(
      expect.stringContaining(`invoice ${view.number} completed from stripe`),
    );
  });

  it('never sends a confirmed amount while Stripe has no number for it: retried later, then sent complete', async () => {
    const d = await wonDeal('partner-network');
    const draft = await stripeInvoice(d.id, 'deposit', {
      amount: 120_000,
      taxPercent: 10,
      send: false,
    });
    await core.apply(sentEvent(d.id, 'deposit', draft.id));
    const [report] = await confirmedReports(d.id);

    await expect(deliver(report)).rejects.toBeInstanceOf(TransientError);
    await expect(deliver(report)).rejects.toThrow(
      /has no number, hosted URL, PDF URL, own tax yet/,
    );
    expect(receiver.receiver.byId(report.id)).toBeUndefined();
    expect((await core.prisma.report.findUniqueOrThrow({ where: { id: report.id } })).status).toBe(
      'PENDING',
    );

    const sent = await invoicing.sendInvoice(billingKeyFor(d.id, 'deposit'), draft.id);
    await expect(deliver(report)).resolves.toBe('SUCCEEDED');
    expect(receiver.receiver.byId(report.id)?.data).toMatchObject({
      invoiceNumber: sent.number,
      hostedInvoiceUrl: sent.hostedInvoiceUrl,
      invoicePdfUrl: sent.invoicePdf,
      taxAmount: 12_000,
    });
  });

  it('請求回数 per invoice: the deposit is monthly_variable, the last invoice of the plan one_time', async () => {
    const d = await wonDeal('partner-network');
    const keys = ['deposit', 'design', 'balance'];
    // Design and balance become due by their acceptance.
    await core.prisma.billingItem.updateMany({
      where: { dealId: d.id, key: { in: ['design', 'balance'] } },
      data: { acceptedAt: hoursAgo(2), acceptedBy: 'client@example.com' },
    });
    await core.tx((tx) => core.lifecycle.settle(tx, d.id, ctx));
    for (const key of keys) {
      const item = await core.prisma.billingItem.findFirstOrThrow({
        where: { dealId: d.id, key },
      });
      const view = await stripeInvoice(d.id, key, {
        amount: Number(item.amount),
        taxPercent: 10,
      });
      await core.apply(sentEvent(d.id, key, view.id));
    }
    const reports = await confirmedReports(d.id);
    expect(
      reports.map((r) => {
        const data = r.data as unknown as ReportData;
        return [data.itemKey, data.billingCount, data.nextInvoiceDate ?? null];
      }),
    ).toEqual([
      ['deposit', 'monthly_variable', '2026-12-15'],
      ['design', 'monthly_variable', null],
      ['balance', 'one_time', null],
    ]);
    // Rebuilt at delivery, after every invoice exists: each still states its own place.
    for (const r of reports) await deliver(r);
    expect(reports.map((r) => receiver.receiver.byId(r.id)?.data.billingCount)).toEqual([
      'monthly_variable',
      'monthly_variable',
      'one_time',
    ]);
  });

  it('an アイミツ task: 請求回数 from the plan’s remaining items, the signed contract as 請求書添付, then the invoice’s facts', async () => {
    const d = await createDeal(core.prisma, {
      referral: { platform: 'aimitsu' },
      stage: 'CONTRACT_SENT',
      stageAt: hoursAgo(9),
      plan: CONTRACT_PLAN,
    });
    await core.apply(
      envelopeEvent('completed', { envelopeId: `env-${uniq()}`, dealId: d.id }, hoursAgo(2)),
    );
    // A task for every billable item from WON (the confirmation cycle): the design's here.
    const task = (await confirmedReports(d.id)).find(
      (r) => (r.data as unknown as ReportData).itemKey === 'design',
    )!;
    const contract = `https://hub.example.jp/api/deals/${encodeURIComponent(d.id)}/contract`;
    expect(task.data).toMatchObject({
      itemKey: 'design',
      // The balance is still planned after the design.
      billingCount: 'monthly_variable',
      contractDocumentUrl: `${contract}/document`,
      contractCertificateUrl: `${contract}/certificate`,
    });
    const fields = () =>
      core.prisma.report
        .findUniqueOrThrow({ where: { id: task.id } })
        .then((r) =>
          (r.fields as { key: string; label: string; value: string }[]).map((f) => [
            f.key,
            f.label,
            f.value,
          ]),
        );
    expect(await fields()).toEqual([
      ['billingCount', '請求回数', '複数回(毎月変動)'],
      ['orderDescription', '受注内容', expect.stringContaining('Design')],
      ['amountExTax', '請求金額', '120000'],
      ['issueDate', '初回の請求書発行日', '2026-12-15'],
      ['nextInvoiceDate', '次回請求書発行日', '未定 / not set yet'],
      ['attachment', '請求書添付', `${contract}/document`],
      ['attachmentCertificate', '請求書添付', `${contract}/certificate`],
    ]);

    // The design invoice, known only from a thin Stripe event: the task asks for a rebuild.
    await core.prisma.billingItem.updateMany({
      where: { dealId: d.id, key: 'design' },
      data: { acceptedAt: hoursAgo(1), acceptedBy: 'client@example.com' },
    });
    await core.tx((tx) => core.lifecycle.settle(tx, d.id, ctx));
    const view = await stripeInvoice(d.id, 'design', { amount: 120_000, taxPercent: 10 });
    await core.apply(sentEvent(d.id, 'design', view.id));
    const jobs = await core.prisma.$queryRaw<{ job_id: string }[]>`
      SELECT job_id FROM outbox WHERE job_name = 'ReportDeliver' AND data->>'reportId' = ${task.id}`;
    expect(jobs).toEqual([{ job_id: `report|${task.id}` }]);

    await expect(deliver(task)).resolves.toBe('SUCCEEDED');
    const row = await core.prisma.report.findUniqueOrThrow({ where: { id: task.id } });
    // Rebuilt, not delivered: people enter it on the platform.
    expect(row.status).toBe('PENDING');
    expect(receiver.receiver.byId(task.id)).toBeUndefined();
    expect(row.data).toMatchObject({
      invoiceNumber: view.number,
      invoicePdfUrl: view.invoicePdf,
      billingCount: 'monthly_variable',
    });
    expect((await fields()).find(([key]) => key === 'attachment')).toEqual([
      'attachment',
      '請求書添付',
      view.invoicePdf,
    ]);
    expect((await fields()).map(([key]) => key)).not.toContain('attachmentCertificate');
  });

  it('失注報告: つながらなかった before an appointment, 成約には至らなかった after one', async () => {
    const early = await createDeal(core.prisma, {
      crmDealId: `hs-${uniq()}`,
      referral: { platform: 'aimitsu' },
      stageAt: hoursAgo(9),
    });
    await core.apply(crmStageChanged(early.crmDealId!, 'closedlost', hoursAgo(5)));
    const late = await createDeal(core.prisma, {
      crmDealId: `hs-${uniq()}`,
      referral: { platform: 'partner-network' },
      stageAt: hoursAgo(9),
    });
    await core.apply(crmStageChanged(late.crmDealId!, 'appointmentscheduled', hoursAgo(6)));
    await core.apply(crmStageChanged(late.crmDealId!, 'closedlost', hoursAgo(5)));

    const lost = (dealId: string) =>
      core.prisma.report.findFirstOrThrow({ where: { dealId, kind: 'lost' } });
    const before = await lost(early.id);
    expect(before.data).toMatchObject({ lostStage: 'before_appointment' });
    expect(before.fields).toEqual([
      expect.objectContaining({ key: 'lostStage', label: '失注の状況', value: 'つながらなかった' }),
    ]);
    // A webhook receiver gets the field too.
    const after = await lost(late.id);
    expect(after.channel).toBe('webhook');
    await deliver(after);
    expect(receiver.receiver.byId(after.id)?.data).toMatchObject({
      kind: 'lost',
      lostStage: 'after_appointment',
    });
  });
});
