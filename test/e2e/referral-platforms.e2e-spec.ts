import { randomUUID } from 'node:crypto';

import { Queue } from 'bullmq';
import { Pool } from 'pg';

import { send, standardDelivery } from '../../tools/simulator/signed-delivery';
import type { SimPartnerCenterPatch } from '../../tools/simulator/provider-sim/partner-center.sim';
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
import { RunningHub, flushTestRedis, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_REDIS_URL, TEST_SECRETS } from '../support/test-env';

/**
 * Referral platforms as their users meet them (issue 13; CONTRACT §3.5, §5, §6;
 * docs/decisions/0013), through the provider simulator: PRONI アイミツ without a response clock,
 * Partner Center's Failed told apart from Expired, a closed referral that does not close the deal
 * and reports nothing more, every Partner Center answer field by field, and the deal-registration
 * wait before Won.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

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
  not_before: Date | null;
}

interface ReferralRow {
  id: string;
  deal_id: string;
  platform: string;
  state: string;
  respond_by: Date | null;
  clock_rule: string | null;
  status_reason: string | null;
}

const op = (path: string, value: unknown) => ({ op: 'replace', path, value });

describe('referral platforms, field by field (issue 13)', () => {
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

  const quiet = () => quiesce(e2e, db, queues);

  async function api(method: string, path: string, body?: unknown) {
    const res = await fetch(`${hub.url}${path}`, {
      method,
      headers: { ...admin, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** A signed generic referral.created whose own time (`timestamp`) is `createdAt`. */
  function genericReferral(data: Record<string, unknown>, createdAt = new Date()) {
    return send(
      hub.url,
      standardDelivery(
        '/webhooks/referrals/generic',
        { type: 'referral.created', timestamp: createdAt.toISOString(), data },
        { secret: TEST_SECRETS.REFERRAL_WEBHOOK_SECRET, id: `msg_${randomUUID()}` },
      ),
    );
  }

  const referralOf = (platform: string, externalId: string) =>
    waitFor(
      async () =>
        (
          await db.query<ReferralRow>(
            'SELECT * FROM referral WHERE platform = $1 AND external_id = $2',
            [platform, externalId],
          )
        ).rows[0],
      { what: `referral ${platform} ${externalId}` },
    );

  const referralState = async (id: string) =>
    (await db.query<ReferralRow>('SELECT * FROM referral WHERE id = $1', [id])).rows[0];

  const reportsOf = async (dealId: string) =>
    (
      await db.query<ReportRow>(
        'SELECT * FROM report WHERE deal_id = $1 ORDER BY occurred_at, id',
        [dealId],
      )
    ).rows;

  const stageOf = async (dealId: string) => (await getDeal(hub.url, dealId)).stage;

  const applied = (id: string): SimPartnerCenterPatch[] =>
    e2e.partnerCenter.patchesFor(id, { appliedOnly: true });

  /** A HubSpot deal naming the referral (CONTRACT §3.2 closeloop_referral_* properties). */
  function crmDealFor(platform: string, referralId: string, stage = 'appointmentscheduled') {
    return e2e.hubspot.createDeal({
      properties: {
        dealname: `Referral ${referralId}`,
        amount: '400000',
        deal_currency_code: 'JPY',
        dealstage: stage,
        closedate: '2027-03-31T00:00:00.000Z',
        closeloop_referral_platform: platform,
        closeloop_referral_id: referralId,
        closeloop_billing_plan: JSON.stringify(PLAN),
      },
      contact: { email: 'buyer@example.co.jp', firstname: 'Jiro', lastname: 'Sato' },
      company: { name: 'Referral Buyer K.K.' },
    }).dealId;
  }

  /** contractsent, then the envelope signed: the deal is WON. */
  async function signContract(crmDealId: string, dealId: string) {
    e2e.hubspot.setStage(crmDealId, 'contractsent');
    const envelope = await waitFor(
      () => e2e.docusign.envelopes().find((e) => e.customFields.some((f) => f.value === dealId)),
      { what: 'envelope', timeoutMs: 20_000 },
    );
    e2e.docusign.complete(envelope!.envelopeId);
    await waitFor(async () => (await stageOf(dealId)) === 'WON', {
      what: 'WON',
      timeoutMs: 20_000,
    });
    return envelope!.envelopeId;
  }

  // ---- PRONI アイミツ: no clock -----------------------------------------------------------------

  it('the 72-hour case: an アイミツ referral without respondBy, engaged on day 4, ends billed and reported', async () => {
    // The referrals were received four days ago: the hub's clock has moved 4 days past their
    // creation when the vendor books the first meeting (every event in its real order).
    const fourDaysAgo = new Date(Date.now() - 4 * DAY);
    const aimitsuId = `AIM-${randomUUID()}`;
    const otherId = `PN-${randomUUID()}`;
    expect(
      (
        await genericReferral(
          {
            referralId: aimitsuId,
            platform: 'proni',
            customer: { name: '見積株式会社' },
            title: 'コーポレートサイト制作',
          },
          fourDaysAgo,
        )
      ).status,
    ).toBe(200);
    expect(
      (
        await genericReferral(
          {
            referralId: otherId,
            platform: 'partner-network',
            customer: { name: 'Kaisha K.K.' },
            title: 'Intranet redesign',
          },
          fourDaysAgo,
        )
      ).status,
    ).toBe(200);

    // Another platform's referral without respondBy has 72 hours: it failed long ago.
    const other = await referralOf('partner-network', otherId);
    await waitFor(async () => (await referralState(other.id)).state === 'FAILED', {
      what: 'the other referral FAILED',
    });
    // PRONI アイミツ has no clock: stored under its one name, no deadline, never expired.
    const aimitsu = await referralOf('aimitsu', aimitsuId);
    expect(aimitsu).toMatchObject({ state: 'OPEN', respond_by: null, clock_rule: null });
    const listed = await api('GET', `/api/referrals/${aimitsu.id}`);
    expect(listed.body).toMatchObject({ platform: 'aimitsu', respondBy: null, state: 'OPEN' });
    expect((await api('GET', '/api/referrals?platform=proni')).body.items).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: aimitsu.id })]),
    );
    expect(await stageOf(aimitsu.deal_id)).toBe('REFERRED');

    // Day 4: the first meeting, booked in the CRM (which spells the platform "proni").
    const crmDealId = crmDealFor('proni', aimitsuId);
    expect(await dealIdForCrm(db, crmDealId)).toBe(aimitsu.deal_id);
    await waitFor(async () => (await stageOf(aimitsu.deal_id)) === 'APPOINTMENT', {
      what: 'APPOINTMENT',
    });
    await signContract(crmDealId, aimitsu.deal_id);
    const invoice = await waitFor(
      () =>
        e2e.sim.stripe
          .invoicesByMetadata('closeloop_deal_id', aimitsu.deal_id)
          .find((i) => i.metadata.closeloop_item_key === 'deposit' && i.number),
      { what: 'the deposit invoice', timeoutMs: 20_000 },
    );
    await quiet();
    const reports = await reportsOf(aimitsu.deal_id);
    expect(reports.map((r) => [r.kind, r.channel]).sort()).toEqual(
      [
        ['appointment', 'manual'],
        ['won', 'manual'],
        // A 確定報告 task for every billable item (deposit, design, balance).
        ['confirmed_amount', 'manual'],
        ['confirmed_amount', 'manual'],
        ['confirmed_amount', 'manual'],
      ].sort(),
    );
    // The confirmed task of the deposit carries its invoice: ready to report on PRONI.
    const deposit = reports.find(
      (r) => r.kind === 'confirmed_amount' && r.data.itemKey === 'deposit',
    )!;
    expect(deposit.data).toMatchObject({
      platform: 'aimitsu',
      invoiceNumber: invoice!.number,
      amountExTax: 120000,
    });
  });

  it('a failed referral engaged later through the CRM: the deal moves on, its platform hears nothing more', async () => {
    const referralId = `PN-${randomUUID()}`;
    await genericReferral(
      {
        referralId,
        platform: 'partner-network',
        customer: { name: 'Late K.K.' },
        title: 'Nobody answered',
      },
      new Date(Date.now() - 4 * DAY),
    );
    const referral = await referralOf('partner-network', referralId);
    await waitFor(async () => (await stageOf(referral.deal_id)) === 'EXPIRED', { what: 'EXPIRED' });
    const crmDealId = crmDealFor('partner-network', referralId);
    expect(await dealIdForCrm(db, crmDealId)).toBe(referral.deal_id);
    await signContract(crmDealId, referral.deal_id);
    await quiet();
    const detail = await getDeal(hub.url, referral.deal_id);
    expect(detail.timeline.map((t) => t.message)).toContainEqual(
      'EXPIRED → APPOINTMENT — the referral failed (nobody answered it within 72 hours); the deal moves on without it (nothing more is reported to partner-network)',
    );
    expect(await referralState(referral.id)).toMatchObject({ state: 'FAILED' });
    // The report receiver got the expiry, with its reason, and nothing after it.
    const received = e2e.reports.reports().filter((r) => r.data.dealId === referral.deal_id);
    expect(received.map((r) => r.type)).toEqual(['referral.report.expired']);
    expect(received[0].data).toMatchObject({
      kind: 'expired',
      reason: expect.stringMatching(/^No response within 72 hours of the referral's creation/),
    });
  });

  // ---- Partner Center ---------------------------------------------------------------------------

  it('a Partner Center referral that FAILS at 72 h: Closed/Expired with its reason; a later CRM stage moves the deal, nothing more is sent', async () => {
    const created = new Date(Date.now() - 73 * HOUR);
    const pc = e2e.partnerCenter.createReferral({ createdDateTime: created.toISOString() });
    const referral = await referralOf('partner-center', pc.id);
    expect(referral.clock_rule).toBe('default-new-72h');
    await waitFor(() => applied(pc.id).length === 1, { what: 'the expiry PATCH' });
    const due = new Date(created.getTime() + 72 * HOUR).toISOString();
    expect(applied(pc.id)[0]).toMatchObject({
      ifMatch: pc.eTag,
      ops: [
        op('/status', 'Closed'),
        op('/substatus', 'Expired'),
        op('/statusReason', `No response within 72 hours of the referral's creation (due ${due})`),
      ],
    });
    expect(await referralState(referral.id)).toMatchObject({ state: 'FAILED' });
    const alerts = await db.query<{ kind: string }>(
      'SELECT kind FROM alert WHERE deal_id = $1 ORDER BY created_at',
      [referral.deal_id],
    );
    expect(alerts.rows.map((a) => a.kind)).toEqual(['referral.failed']);

    const crmDealId = crmDealFor('partner-center', pc.id);
    expect(await dealIdForCrm(db, crmDealId)).toBe(referral.deal_id);
    await waitFor(async () => (await stageOf(referral.deal_id)) === 'APPOINTMENT', {
      what: 'the deal moved on',
    });
    await quiet();
    expect(e2e.partnerCenter.patchesFor(pc.id)).toHaveLength(1);
    const view = await api('GET', `/api/referrals/${referral.id}`);
    expect(view.body).toMatchObject({
      state: 'FAILED',
      platformState: 'Closed/Expired',
      respondBy: null,
      statusReason: expect.stringMatching(/^No response within 72 hours/),
    });
  });

  it('decline and skip send Closed/Declined with their statusReason; evaluate and skip are refused elsewhere', async () => {
    const declined = e2e.partnerCenter.createReferral({ name: 'Not for us' });
    const d = await referralOf('partner-center', declined.id);
    expect(
      await api('POST', `/api/referrals/${d.id}/decline`, { reason: 'outside our expertise' }),
    ).toMatchObject({ status: 200, body: { state: 'DECLINED', changed: true } });
    await waitFor(() => applied(declined.id).length === 1, { what: 'the decline PATCH' });
    expect(applied(declined.id)[0].ops).toEqual([
      op('/status', 'Closed'),
      op('/substatus', 'Declined'),
      op('/statusReason', 'outside our expertise'),
    ]);

    const skipped = e2e.partnerCenter.createReferral({ name: 'No thanks' });
    const s = await referralOf('partner-center', skipped.id);
    expect(
      await api('POST', `/api/referrals/${s.id}/skip`, { reason: 'no capacity this quarter' }),
    ).toMatchObject({ status: 200, body: { state: 'SKIPPED', changed: true } });
    expect((await api('POST', `/api/referrals/${s.id}/skip`)).body.changed).toBe(false);
    expect((await api('POST', `/api/referrals/${s.id}/evaluate`)).status).toBe(409);
    await waitFor(() => applied(skipped.id).length === 1, { what: 'the skip PATCH' });
    expect(applied(skipped.id)[0].ops).toEqual([
      op('/status', 'Closed'),
      op('/substatus', 'Declined'),
      op('/statusReason', 'Not interested (skipped): no capacity this quarter'),
    ]);
    expect(await stageOf(s.deal_id)).toBe('DECLINED');
    const audit = await db.query(
      "SELECT role FROM audit_log WHERE action = 'referral.skip' AND target = $1",
      [s.id],
    );
    // The answer that changed something is audited; the repeat changed nothing.
    expect(audit.rows).toEqual([{ role: 'admin' }]);

    // Bad input changes nothing: an unknown field, a reason on evaluate.
    const fresh = e2e.partnerCenter.createReferral();
    const f = await referralOf('partner-center', fresh.id);
    expect((await api('POST', `/api/referrals/${f.id}/skip`, { why: 'x' })).status).toBe(400);
    expect((await api('POST', `/api/referrals/${f.id}/evaluate`, { reason: 'x' })).status).toBe(
      400,
    );
    expect((await referralState(f.id)).state).toBe('OPEN');

    // PRONI アイミツ has neither "interested" nor "skipped".
    const aimitsuId = `AIM-${randomUUID()}`;
    await genericReferral({
      referralId: aimitsuId,
      platform: 'aimitsu',
      customer: { name: '見積株式会社' },
      title: 'ロゴ制作',
    });
    const a = await referralOf('aimitsu', aimitsuId);
    const refused = await api('POST', `/api/referrals/${a.id}/evaluate`);
    expect(refused).toMatchObject({
      status: 409,
      body: { error: { code: 'REFERRAL_ANSWER_NOT_OFFERED' } },
    });
    expect((await referralState(a.id)).state).toBe('OPEN');
  });

  it("a Partner Center deal's whole life under duplicate and reordered webhooks: every PATCH, field by field", async () => {
    const pc = e2e.partnerCenter.createReferral({
      name: 'Contoso ERP rollout',
      expirationDateTime: new Date(Date.now() + 2 * DAY).toISOString(),
    });
    const referral = await referralOf('partner-center', pc.id);
    const dealId = referral.deal_id;
    // Partner Center's webhooks again, out of order and twice: nothing new.
    e2e.partnerCenter.updateReferral(pc.id, { details: { notes: 'first update' } });
    e2e.partnerCenter.updateReferral(pc.id, { details: { notes: 'second update' } });
    const mine = e2e.partnerCenter.events.filter((ev) => ev.ResourceUri.endsWith(pc.id));
    for (const ev of [...mine].reverse()) e2e.partnerCenter.webhooks.enqueue(ev);
    await e2e.partnerCenter.webhooksIdle();
    await quiet();
    expect((await db.query('SELECT id FROM deal WHERE referral_id = $1', [pc.id])).rows).toEqual([
      { id: dealId },
    ]);
    expect(applied(pc.id)).toEqual([]);

    // Accepting: the estimated value (the deal has no amount yet) and the expected close date.
    await db.query("UPDATE deal SET close_date = '2027-03-31' WHERE id = $1", [dealId]);
    const before = e2e.partnerCenter.referral(pc.id)!;
    expect(await api('POST', `/api/referrals/${referral.id}/accept`)).toMatchObject({
      status: 200,
      body: { state: 'ACCEPTED' },
    });
    await waitFor(() => applied(pc.id).length === 1, { what: 'the accept PATCH' });
    expect(applied(pc.id)[0]).toMatchObject({
      ifMatch: before.eTag,
      ops: [
        op('/status', 'Active'),
        op('/substatus', 'Accepted'),
        op('/details/dealValue', '300000'),
        op('/details/currency', 'JPY'),
        op('/details/closingDateTime', '2027-03-31T00:00:00Z'),
      ],
    });

    // The CRM: its stage changes delivered twice, and a stale one late.
    const crmDealId = crmDealFor('partner-center', pc.id, 'qualifiedtobuy');
    expect(await dealIdForCrm(db, crmDealId)).toBe(dealId);
    await waitFor(async () => (await stageOf(dealId)) === 'NEGOTIATING', { what: 'NEGOTIATING' });
    const envelopeId = await signContract(crmDealId, dealId);
    for (const batch of [...e2e.hubspot.webhooks.delivered]) {
      for (const ev of batch)
        if (String(ev.objectId) === crmDealId) e2e.hubspot.webhooks.enqueue(ev);
    }
    e2e.hubspot.emitEvent({
      objectId: Number(crmDealId),
      propertyName: 'dealstage',
      propertyValue: 'appointmentscheduled',
      occurredAt: Date.now() - HOUR,
    });
    e2e.docusign.emitMessage(e2e.docusign.connectMessage(envelopeId, 'envelope-completed'));
    await e2e.hubspot.webhooksIdle();
    await milestone(hub.url, 'milestone.accepted', { dealId, itemKey: 'design' });
    await milestone(hub.url, 'milestone.accepted', { dealId, itemKey: 'balance' });
    await waitFor(async () => (await stageOf(dealId)) === 'DELIVERED', {
      what: 'DELIVERED',
      timeoutMs: 20_000,
    });
    await quiet();

    // Two answers in the whole life: accepted, then won with the contracted value.
    const patches = applied(pc.id);
    expect(patches).toHaveLength(2);
    expect(patches[1]).toMatchObject({
      ifMatch: patches[0].eTagAfter,
      ops: [
        op('/status', 'Closed'),
        op('/substatus', 'Won'),
        op('/details/dealValue', '400000'),
        op('/details/currency', 'JPY'),
        op('/details/closingDateTime', expect.stringMatching(/^\d{4}-\d{2}-\d{2}T00:00:00Z$/)),
      ],
    });
    expect(e2e.partnerCenter.patchesFor(pc.id)).toHaveLength(2);
    expect(e2e.partnerCenter.referral(pc.id)).toMatchObject({
      status: 'Closed',
      substatus: 'Won',
      details: expect.objectContaining({ dealValue: 400000, currency: 'JPY' }) as unknown,
    });
    const reports = await reportsOf(dealId);
    expect(reports.map((r) => [r.kind, r.status]).sort()).toEqual(
      [
        ['appointment', 'REPORTED'],
        ['won', 'REPORTED'],
        ['confirmed_amount', 'NOT_APPLICABLE'],
        ['confirmed_amount', 'NOT_APPLICABLE'],
        ['confirmed_amount', 'NOT_APPLICABLE'],
        ['delivered', 'NOT_APPLICABLE'],
      ].sort(),
    );
    const view = await api('GET', `/api/referrals/${referral.id}`);
    expect(view.body).toMatchObject({ state: 'ACCEPTED', platformState: 'Closed/Won' });
  });

  // ---- time passes: the evaluation window and the registration wait ----------------------------

  it('evaluate → its 7-day window → EXPIRED; a co-sell Won waits 72 hours after creation, then goes', async () => {
    // Interested: in evaluation, 7 days from now.
    const evaluated = e2e.partnerCenter.createReferral({ name: 'Maybe' });
    const ev = await referralOf('partner-center', evaluated.id);
    const answered = await api('POST', `/api/referrals/${ev.id}/evaluate`);
    expect(answered).toMatchObject({
      status: 200,
      body: { state: 'IN_EVALUATION', clockRule: 'default-evaluation-7d', changed: true },
    });
    const evaluatedAt = Date.parse(String(answered.body.respondBy)) - 7 * DAY;
    expect(Math.abs(evaluatedAt - Date.now())).toBeLessThan(60_000);
    await waitFor(() => applied(evaluated.id).length === 1, { what: 'the evaluation PATCH' });
    expect(applied(evaluated.id)[0].ops).toEqual([
      op('/status', 'New'),
      op('/substatus', 'Received'),
    ]);

    // A co-sell referral the partner created (outbound) an hour ago, won at once: held.
    const created = new Date(Date.now() - HOUR);
    const cosell = e2e.partnerCenter.createReferral({
      name: 'Co-sell: Fabrikam',
      createdDateTime: created.toISOString(),
      status: 'Active',
      substatus: 'Accepted',
    });
    const co = await referralOf('partner-center', cosell.id);
    await db.query("UPDATE referral SET direction = 'outbound' WHERE id = $1", [co.id]);
    const crmDealId = crmDealFor('partner-center', cosell.id);
    expect(await dealIdForCrm(db, crmDealId)).toBe(co.deal_id);
    await signContract(crmDealId, co.deal_id);
    await quiet();
    const notBefore = new Date(created.getTime() + 72 * HOUR);
    const won = (await reportsOf(co.deal_id)).find((r) => r.kind === 'won')!;
    expect(won).toMatchObject({ status: 'PENDING', not_before: notBefore });
    expect((await api('GET', `/api/reports/${won.id}`)).body).toMatchObject({
      notBefore: notBefore.toISOString(),
      status: 'PENDING',
    });
    expect(applied(cosell.id).some((p) => p.after?.substatus === 'Won')).toBe(false);
    expect((await getDeal(hub.url, co.deal_id)).timeline.map((t) => t.message)).toContainEqual(
      expect.stringContaining(
        `won report for partner-center held until ${notBefore.toISOString()}`,
      ),
    );

    // Eight days later (the hub's clock moved on, Postgres decides): the evaluation expired, the
    // registration wait is over.
    await hub.stop();
    hub = await startE2EHub(e2e, {
      ...hubEnv,
      CLOCK_START: new Date(Date.now() + 8 * DAY).toISOString(),
    });
    await waitFor(() => applied(evaluated.id).length === 2, {
      what: 'the evaluation expiry PATCH',
      timeoutMs: 20_000,
    });
    expect(applied(evaluated.id)[1].ops).toEqual([
      op('/status', 'Closed'),
      op('/substatus', 'Expired'),
      op(
        '/statusReason',
        expect.stringMatching(/^Not accepted or declined within 7 days in evaluation/),
      ),
    ]);
    expect(await referralState(ev.id)).toMatchObject({ state: 'EXPIRED' });
    const alerts = await db.query<{ kind: string }>(
      'SELECT kind FROM alert WHERE deal_id = $1 ORDER BY created_at',
      [ev.deal_id],
    );
    expect(alerts.rows.map((a) => a.kind)).toContain('referral.expired');
    expect(alerts.rows.map((a) => a.kind)).not.toContain('referral.failed');

    await waitFor(() => applied(cosell.id).some((p) => p.after?.substatus === 'Won'), {
      what: 'the held Won PATCH',
      timeoutMs: 20_000,
    });
    const wonPatch = applied(cosell.id).find((p) => p.after?.substatus === 'Won')!;
    expect(wonPatch.ops).toEqual([
      op('/status', 'Closed'),
      op('/substatus', 'Won'),
      op('/details/dealValue', '400000'),
      op('/details/currency', 'JPY'),
      op('/details/closingDateTime', expect.stringMatching(/^\d{4}-\d{2}-\d{2}T00:00:00Z$/)),
    ]);
    await quiet();
    expect((await reportsOf(co.deal_id)).find((r) => r.id === won.id)?.status).toBe('REPORTED');
  });
});
