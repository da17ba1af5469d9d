import { randomUUID } from 'node:crypto';

import { Queue } from 'bullmq';
import { Pool } from 'pg';

import { send, standardDelivery } from '../../tools/simulator/signed-delivery';
import {
  E2E,
  admin,
  dealIdForCrm,
  getDeal,
  milestone,
  quiesce,
  startE2EHub,
  startProviders,
} from '../support/e2e';
import { RunningHub, flushTestRedis, freePort, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_REDIS_URL, TEST_SECRETS } from '../support/test-env';

/** A plan whose dates stay in the future whatever day the suite runs. */
const PLAN = {
  currency: 'jpy',
  taxRatePercent: 10,
  billingCount: 'one_time',
  items: [
    { key: 'deposit', label: '着手金', percent: 30, trigger: 'contract.signed' },
    {
      key: 'design',
      label: 'Design',
      percent: 30,
      trigger: 'milestone.accepted',
      expectedInvoiceDate: '2099-12-15',
    },
    { key: 'balance', label: '残金', amount: 160000, trigger: 'milestone.accepted' },
  ],
};

interface ReportRow {
  id: string;
  kind: string;
  channel: string;
  status: string;
  fact_key: string;
  data: Record<string, unknown>;
  fields: { key: string; label: string; value: string }[];
  due_at: Date | null;
  delivered_at: Date | null;
  last_error: string | null;
  attempts: number;
}

describe('referral platforms: inbound referrals, response clocks and reports (CONTRACT §3.5, §5)', () => {
  let e2e: E2E;
  let hub: RunningHub;
  let db: Pool;
  const queues = ['webhooks', 'billing', 'connectors'].map(
    (name) => new Queue(name, { connection: { url: TEST_REDIS_URL } }),
  );

  const hubEnv = {
    LIFECYCLE_TIMER_MS: '200',
    JOB_ATTEMPTS: '3',
    JOB_BACKOFF_BASE_MS: '50',
    JOB_BACKOFF_MAX_MS: '200',
  };

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await flushTestRedis();
    e2e = await startProviders();
    hub = await startE2EHub(e2e, hubEnv);
  });

  afterAll(async () => {
    await hub?.stop();
    await e2e?.close();
    await Promise.all(queues.map((q) => q.close()));
    await db?.end();
  });

  async function api(method: string, path: string, body?: unknown) {
    const res = await fetch(`${hub.url}${path}`, {
      method,
      headers: { ...admin, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  function genericReferral(
    type: 'referral.created' | 'referral.updated',
    data: Record<string, unknown>,
    id = `msg_${randomUUID()}`,
  ) {
    return send(
      hub.url,
      standardDelivery(
        '/webhooks/referrals/generic',
        { type, timestamp: new Date().toISOString(), data },
        { secret: TEST_SECRETS.REFERRAL_WEBHOOK_SECRET, id },
      ),
    );
  }

  const referralOf = async (platform: string, externalId: string) =>
    waitFor(
      async () =>
        (
          await db.query<{
            id: string;
            deal_id: string;
            state: string;
            respond_by: Date | null;
            clock_rule: string | null;
          }>('SELECT * FROM referral WHERE platform = $1 AND external_id = $2', [
            platform,
            externalId,
          ])
        ).rows[0],
      { what: `referral ${platform} ${externalId}` },
    );

  const reportsOf = async (dealId: string) =>
    (
      await db.query<ReportRow>(
        'SELECT * FROM report WHERE deal_id = $1 ORDER BY occurred_at, id',
        [dealId],
      )
    ).rows;

  const kinds = (rows: ReportRow[]) => rows.map((r) => r.kind).sort();

  /** Links a HubSpot deal to the referral's hub deal and signs its contract: the deal is WON. */
  async function winThroughCrm(platform: string, referralId: string, dealId: string) {
    const { dealId: crmDealId } = e2e.hubspot.createDeal({
      properties: {
        dealname: `Referral ${referralId}`,
        amount: '400000',
        deal_currency_code: 'JPY',
        dealstage: 'qualifiedtobuy',
        closeloop_referral_platform: platform,
        closeloop_referral_id: referralId,
        closeloop_billing_plan: JSON.stringify(PLAN),
      },
      contact: { email: 'buyer@example.co.jp', firstname: 'Jiro', lastname: 'Sato' },
      company: { name: 'Referral Buyer K.K.' },
    });
    expect(await dealIdForCrm(db, crmDealId)).toBe(dealId);
    e2e.hubspot.setStage(crmDealId, 'contractsent');
    const envelope = await waitFor(
      () => e2e.docusign.envelopes().find((e) => e.customFields.some((f) => f.value === dealId)),
      { what: 'envelope' },
    );
    e2e.docusign.complete(envelope!.envelopeId);
    await waitFor(async () => (await getDeal(hub.url, dealId)).stage === 'WON', {
      what: 'WON',
      timeoutMs: 20_000,
    });
    return crmDealId;
  }

  it('a Partner Center referral: created → accepted → won → billed → delivered, each status reported once', async () => {
    const expiration = new Date(Date.now() + 2 * 86_400_000).toISOString();
    const pc = e2e.partnerCenter.createReferral({
      name: 'Contoso ERP rollout',
      expirationDateTime: expiration,
    });
    const referral = await referralOf('partner-center', pc.id);
    expect(referral).toMatchObject({ state: 'OPEN', clock_rule: 'expirationDateTime' });
    expect(referral.respond_by?.toISOString()).toBe(expiration);
    const dealId = referral.deal_id;
    const fresh = await getDeal(hub.url, dealId);
    expect(fresh).toMatchObject({ stage: 'REFERRED', name: 'Contoso ERP rollout' });

    // A platform update of the same referral links to the same deal.
    e2e.partnerCenter.updateReferral(pc.id, { details: { notes: 'updated by Microsoft' } });
    await quiesce(e2e, db, queues);
    expect((await db.query('SELECT id FROM deal')).rows.map((r) => r.id)).toEqual([dealId]);

    const accepted = await api('POST', `/api/referrals/${referral.id}/accept`);
    expect(accepted).toMatchObject({ status: 200, body: { state: 'ACCEPTED', changed: true } });
    expect((await api('POST', `/api/referrals/${referral.id}/accept`)).body.changed).toBe(false);
    await waitFor(() => e2e.partnerCenter.patchesFor(pc.id, { appliedOnly: true }).length === 1, {
      what: 'Active/Accepted PATCH',
    });
    expect(e2e.partnerCenter.referral(pc.id)).toMatchObject({
      status: 'Active',
      substatus: 'Accepted',
    });

    await winThroughCrm('partner-center', pc.id, dealId);
    await waitFor(() => e2e.partnerCenter.referral(pc.id)?.substatus === 'Won', {
      what: 'Closed/Won on Partner Center',
      timeoutMs: 20_000,
    });
    expect(e2e.partnerCenter.referral(pc.id)).toMatchObject({
      status: 'Closed',
      details: expect.objectContaining({ dealValue: 400000, currency: 'JPY' }) as unknown,
    });
    const patches = e2e.partnerCenter.patchesFor(pc.id, { appliedOnly: true });
    // Each PATCH sent the eTag the hub had just read.
    expect(patches.every((p) => p.ifMatch !== undefined)).toBe(true);

    await milestone(hub.url, 'milestone.accepted', { dealId, itemKey: 'design' });
    await milestone(hub.url, 'milestone.accepted', { dealId, itemKey: 'balance' });
    // A duplicate of the acceptance and of the signature change nothing.
    await milestone(hub.url, 'milestone.accepted', { dealId, itemKey: 'balance' });
    await waitFor(async () => (await getDeal(hub.url, dealId)).stage === 'DELIVERED', {
      what: 'DELIVERED',
      timeoutMs: 20_000,
    });
    await quiesce(e2e, db, queues);

    const reports = await reportsOf(dealId);
    expect(kinds(reports)).toEqual(
      [
        'appointment',
        'won',
        'confirmed_amount',
        'confirmed_amount',
        'confirmed_amount',
        'delivered',
      ].sort(),
    );
    const byKind = (k: string) => reports.filter((r) => r.kind === k);
    expect(byKind('appointment')[0]).toMatchObject({
      channel: 'partner-center',
      status: 'REPORTED',
    });
    expect(byKind('won')[0]).toMatchObject({ status: 'REPORTED' });
    expect(byKind('won')[0].data).toMatchObject({ amountExTax: 400000, taxAmount: 40000 });
    // Partner Center has no confirmed amounts or deliveries: recorded as not applicable, not sent.
    for (const r of [...byKind('confirmed_amount'), ...byKind('delivered')]) {
      expect(r.status).toBe('NOT_APPLICABLE');
      expect(r.last_error).toMatch(/Partner Center has no/);
    }
    expect(e2e.partnerCenter.patchesFor(pc.id, { appliedOnly: true })).toHaveLength(2);

    const detail = (await getDeal(hub.url, dealId)) as unknown as {
      referral: { state: string };
      reports: unknown[];
    };
    expect(detail.referral.state).toBe('ACCEPTED');
    expect(detail.reports).toHaveLength(6);
  });

  it('a Partner Center referral without a deadline gets the 72-hour window', async () => {
    const created = new Date(Date.now() - 3_600_000).toISOString();
    const pc = e2e.partnerCenter.createReferral({ createdDateTime: created });
    const referral = await referralOf('partner-center', pc.id);
    expect(referral.clock_rule).toBe('default-new-72h');
    expect(referral.respond_by?.getTime()).toBe(Date.parse(created) + 72 * 3_600_000);
  });

  it('a generic referral reports by signed webhook: every kind once, under duplicates, with a loss and its withdrawal', async () => {
    const referralId = `PN-${randomUUID()}`;
    const data = {
      referralId,
      platform: 'partner-network',
      customer: { name: 'Kaisha K.K.', email: 'info@kaisha.example' },
      title: 'Intranet redesign',
      estimatedValue: 500000,
      currency: 'jpy',
      respondBy: new Date(Date.now() + 5 * 86_400_000).toISOString(),
    };
    const msgId = `msg_${randomUUID()}`;
    expect((await genericReferral('referral.created', data, msgId)).status).toBe(200);
    expect((await genericReferral('referral.created', data, msgId)).status).toBe(200); // duplicate delivery
    expect(
      (await genericReferral('referral.updated', { ...data, title: 'Intranet v2' })).status,
    ).toBe(200);
    const referral = await referralOf('partner-network', referralId);
    expect(referral.clock_rule).toBe('respondBy');
    const dealId = referral.deal_id;

    // Worked through the CRM: engaged, lost, talks resumed, won.
    const { dealId: crmDealId } = e2e.hubspot.createDeal({
      properties: {
        dealname: 'Intranet v2',
        amount: '400000',
        deal_currency_code: 'JPY',
        dealstage: 'appointmentscheduled',
        closeloop_referral_platform: 'partner-network',
        closeloop_referral_id: referralId,
        closeloop_billing_plan: JSON.stringify(PLAN),
      },
    });
    expect(await dealIdForCrm(db, crmDealId)).toBe(dealId);
    await waitFor(async () => (await getDeal(hub.url, dealId)).stage === 'APPOINTMENT', {
      what: 'APPOINTMENT',
    });
    e2e.hubspot.setStage(crmDealId, 'closedlost');
    await waitFor(async () => (await getDeal(hub.url, dealId)).stage === 'LOST', { what: 'LOST' });
    e2e.hubspot.setStage(crmDealId, 'qualifiedtobuy');
    await waitFor(async () => (await getDeal(hub.url, dealId)).stage === 'NEGOTIATING', {
      what: 'loss withdrawn',
    });
    e2e.hubspot.setStage(crmDealId, 'contractsent');
    const envelope = await waitFor(
      () => e2e.docusign.envelopes().find((e) => e.customFields.some((f) => f.value === dealId)),
      { what: 'envelope' },
    );
    e2e.docusign.complete(envelope!.envelopeId);
    // Connect's duplicate of the completion.
    e2e.docusign.emitMessage(
      e2e.docusign.connectMessage(envelope!.envelopeId, 'envelope-completed'),
    );
    await waitFor(
      async () =>
        (await reportsOf(dealId)).some(
          (r) => r.kind === 'confirmed_amount' && r.status === 'REPORTED',
        ),
      { what: 'the deposit confirmed report delivered', timeoutMs: 20_000 },
    );
    // 追加発注: a new item, delivered twice (the same webhook-id) → one additional_order report.
    const order = {
      dealId,
      description: '多言語対応の追加',
      items: [{ key: 'i18n', label: '多言語対応', amount: 80000, trigger: 'milestone.accepted' }],
    };
    const orderId = `msg_${randomUUID()}`;
    expect((await milestone(hub.url, 'order.additional', order, orderId)).status).toBe(200);
    expect((await milestone(hub.url, 'order.additional', order, orderId)).status).toBe(200);
    await quiesce(e2e, db, queues);

    const reports = await reportsOf(dealId);
    expect(kinds(reports)).toEqual(
      [
        'appointment',
        'lost',
        'lost_withdrawn',
        'won',
        'confirmed_amount',
        'additional_order',
      ].sort(),
    );
    expect(reports.every((r) => r.channel === 'webhook' && r.status === 'REPORTED')).toBe(true);
    expect(reports.find((r) => r.kind === 'lost')?.fact_key).toBe(`${dealId}|lost|1`);

    // The receiver got each report once, with webhook-id = reportId and the CONTRACT §5 body.
    const received = e2e.reports.reports().filter((r) => r.data.dealId === dealId);
    expect(received.map((r) => r.id).sort()).toEqual(reports.map((r) => r.id).sort());
    expect(received.every((r) => r.deliveries === 1)).toBe(true);
    const confirmed = received.find((r) => r.type === 'referral.report.confirmed_amount')!;
    const invoice = e2e.sim.stripe.invoicesByMetadata('closeloop_deal_id', dealId)[0];
    expect(confirmed.data).toMatchObject({
      kind: 'confirmed_amount',
      platform: 'partner-network',
      referralId,
      dealId,
      crmDealId,
      amountExTax: 120000,
      taxAmount: 12000,
      currency: 'jpy',
      // 請求回数 per invoice (CONTRACT §5): design and balance are still to be invoiced.
      billingCount: 'monthly_variable',
      invoiceNumber: invoice.number,
      hostedInvoiceUrl: invoice.hosted_invoice_url,
      invoicePdfUrl: invoice.invoice_pdf,
      nextInvoiceDate: '2099-12-15',
    });
    expect(confirmed.data.issueDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    const won = received.find((r) => r.type === 'referral.report.won')!;
    expect(won.data).toMatchObject({ amountExTax: 400000, taxAmount: 40000, currency: 'jpy' });
    expect(won.data).not.toHaveProperty('invoiceNumber');
    const extra = received.find((r) => r.type === 'referral.report.additional_order')!;
    expect(extra.data).toMatchObject({
      amountExTax: 80000,
      taxAmount: 8000,
      orderDescription: '多言語対応の追加',
      items: [{ key: 'i18n', label: '多言語対応', amountExTax: 80000 }],
    });
  });

  it('a failing report endpoint is retried, dead-lettered, and delivered once after a replay', async () => {
    e2e.reports.setFaults({ always: 503 });
    const referralId = `PN-${randomUUID()}`;
    await genericReferral('referral.created', {
      referralId,
      platform: 'partner-network',
      customer: { name: 'Retry K.K.' },
      title: 'Retry me',
    });
    const { id, deal_id: dealId } = await referralOf('partner-network', referralId);
    await api('POST', `/api/referrals/${id}/accept`);
    const dead = await waitFor(
      async () =>
        (await reportsOf(dealId)).find((r) => r.kind === 'appointment' && r.status === 'DEAD'),
      { what: 'the appointment report dead-lettered', timeoutMs: 20_000 },
    );
    expect(dead!.attempts).toBe(3);
    expect(dead!.last_error).toMatch(/503/);
    const letter = (
      await db.query<{ id: string }>(
        "SELECT id FROM dead_letter WHERE job_name = 'ReportDeliver' AND data->>'reportId' = $1",
        [dead!.id],
      )
    ).rows[0];
    expect(letter).toBeDefined();
    expect(e2e.reports.byId(dead!.id)).toBeUndefined();

    e2e.reports.clearFaults();
    expect((await api('POST', `/api/dead-letters/${letter.id}/replay`)).status).toBe(202);
    await waitFor(
      async () => (await reportsOf(dealId)).find((r) => r.id === dead!.id)?.status === 'REPORTED',
      { what: 'delivered after the replay' },
    );
    expect((await api('POST', `/api/dead-letters/${letter.id}/replay`)).status).toBe(409);
    await quiesce(e2e, db, queues);
    expect(e2e.reports.byId(dead!.id)?.deliveries).toBe(1);

    // A permanent refusal (400) dead-letters at once.
    e2e.reports.setFaults({ always: 400 });
    const second = `PN-${randomUUID()}`;
    await genericReferral('referral.created', {
      referralId: second,
      platform: 'partner-network',
      customer: { name: 'Refused K.K.' },
      title: 'Refused',
    });
    const r2 = await referralOf('partner-network', second);
    await api('POST', `/api/referrals/${r2.id}/accept`);
    const refused = await waitFor(
      async () => (await reportsOf(r2.deal_id)).find((r) => r.status === 'DEAD'),
      { what: 'permanent failure dead-lettered' },
    );
    expect(refused!.attempts).toBe(1);
    e2e.reports.clearFaults();
  });

  it('declining a referral reports it; a worked referral can no longer be declined', async () => {
    const pc = e2e.partnerCenter.createReferral({ name: 'Not for us' });
    const referral = await referralOf('partner-center', pc.id);
    const declined = await api('POST', `/api/referrals/${referral.id}/decline`, {
      reason: 'outside our expertise',
    });
    expect(declined).toMatchObject({ status: 200, body: { state: 'DECLINED' } });
    await waitFor(() => e2e.partnerCenter.referral(pc.id)?.substatus === 'Declined', {
      what: 'Closed/Declined on Partner Center',
    });
    expect((await getDeal(hub.url, referral.deal_id)).stage).toBe('DECLINED');
    expect((await api('POST', `/api/referrals/${referral.id}/accept`)).status).toBe(409);
    const audit = await db.query(
      "SELECT role FROM audit_log WHERE action = 'referral.decline' AND target = $1",
      [referral.id],
    );
    expect(audit.rows).toEqual([{ role: 'admin' }]);
  });

  it('response clocks: an unanswered referral expires once, across a restart and two workers, with one alert', async () => {
    const referralId = `PN-${randomUUID()}`;
    const respondBy = new Date(Date.now() + 4_000);
    await genericReferral('referral.created', {
      referralId,
      platform: 'partner-network',
      customer: { name: 'Late K.K.' },
      title: 'Nobody answered',
      respondBy: respondBy.toISOString(),
    });
    const referral = await referralOf('partner-network', referralId);
    // Due within a day: warned once.
    await waitFor(
      async () =>
        (
          await db.query("SELECT 1 FROM alert WHERE kind = 'referral.expiring' AND deal_id = $1", [
            referral.deal_id,
          ])
        ).rowCount === 1,
      { what: 'expiring alert' },
    );
    // The hub is down when the deadline passes; two workers come back.
    await hub.stop();
    await new Promise((r) => setTimeout(r, Math.max(0, respondBy.getTime() - Date.now()) + 300));
    const worker = await startE2EHub(e2e, {
      ...hubEnv,
      ROLE: 'worker',
      PORT: String(await freePort()),
    });
    hub = await startE2EHub(e2e, hubEnv);
    try {
      await waitFor(async () => (await getDeal(hub.url, referral.deal_id)).stage === 'EXPIRED', {
        what: 'EXPIRED',
      });
      await new Promise((r) => setTimeout(r, 1_000)); // several more timer passes on both
      const alerts = await db.query(
        'SELECT kind FROM alert WHERE deal_id = $1 ORDER BY created_at',
        [referral.deal_id],
      );
      expect(alerts.rows.map((r) => r.kind)).toEqual(['referral.expiring', 'referral.expired']);
      const row = await referralOf('partner-network', referralId);
      expect(row.state).toBe('EXPIRED');
      const timeline = (await getDeal(hub.url, referral.deal_id)).timeline.filter((t) =>
        t.message.includes('expired: no answer'),
      );
      expect(timeline).toHaveLength(1);
      // Expired referrals cannot be accepted any more.
      expect((await api('POST', `/api/referrals/${referral.id}/accept`)).status).toBe(409);
    } finally {
      await worker.stop();
    }
  });

  it('a manual platform (PRONI アイミツ) gets copy-ready tasks with deadlines, the expected invoice date included', async () => {
    const referralId = `AIM-${randomUUID()}`;
    await genericReferral('referral.created', {
      referralId,
      platform: 'aimitsu',
      customer: { name: '見積株式会社' },
      title: 'コーポレートサイト制作',
    });
    const referral = await referralOf('aimitsu', referralId);
    await api('POST', `/api/referrals/${referral.id}/accept`);
    await winThroughCrm('aimitsu', referralId, referral.deal_id);
    await quiesce(e2e, db, queues);
    const reports = await reportsOf(referral.deal_id);
    expect(reports.every((r) => r.channel === 'manual')).toBe(true);
    expect(kinds(reports)).toEqual(
      ['appointment', 'won', 'confirmed_amount', 'confirmed_amount', 'confirmed_amount'].sort(),
    );
    // Every billable item has its 報告期限前 task from WON. The deposit's invoice is issued: its
    // task carries the invoice, due 3 days after it. The design item's task waits for its invoice,
    // due on its expected invoice date (Tokyo); the balance has no date: no deadline until its
    // invoice posts.
    const design = reports.find((r) => r.fact_key.endsWith('|design'))!;
    expect(design.status).toBe('PENDING');
    expect(design.due_at?.toISOString()).toBe('2099-12-15T15:00:00.000Z');
    const balance = reports.find((r) => r.fact_key.endsWith('|balance'))!;
    expect(balance).toMatchObject({ status: 'PENDING', due_at: null });
    expect(balance.data.invoiceNumber).toBeUndefined();
    const deposit = reports.find((r) => r.fact_key.endsWith('|deposit'))!;
    expect(deposit.data.invoiceNumber).toEqual(expect.any(String));
    expect(deposit.fields.length).toBeGreaterThan(0);
    expect(deposit.due_at).not.toBeNull();
    expect(
      reports.filter((r) => r.kind !== 'confirmed_amount').every((r) => r.due_at !== null),
    ).toBe(true);
    // Nothing was sent anywhere.
    expect(e2e.reports.reports().filter((r) => r.data.dealId === referral.deal_id)).toHaveLength(0);
  });
});
