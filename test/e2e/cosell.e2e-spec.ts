import { Queue } from 'bullmq';
import { Pool } from 'pg';

import type { PartnerCenterReferral } from '../../tools/simulator/provider-sim/partner-center.sim';
import {
  E2E,
  admin,
  dealIdForCrm,
  getDeal,
  quiesce,
  startE2EHub,
  startProviders,
} from '../support/e2e';
import { RunningHub, flushTestRedis, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_REDIS_URL } from '../support/test-env';

const REFERRALS = '/v1.0/engagements/referrals';

/** A HubSpot deal that asks for co-sell and carries everything Partner Center requires. */
function cosellDeal(name: string, overrides: Record<string, string | null> = {}) {
  return {
    properties: {
      dealname: name,
      amount: '1200000',
      deal_currency_code: 'JPY',
      dealstage: 'qualifiedtobuy',
      // Midnight in Tokyo on 31 March, as HubSpot stores a date picked in Japan.
      closedate: '2027-03-30T15:00:00.000Z',
      description: `${name}: migrate the warehouse to Azure`,
      closeloop_cosell: 'true',
      ...overrides,
    },
    contact: {
      email: 'hanako.yamada@contoso.example',
      firstname: 'Hanako',
      lastname: 'Yamada',
      phone: '+81-3-0000-0000',
    },
    company: {
      name: 'Contoso K.K.',
      address: '1-2-3 Marunouchi',
      city: 'Chiyoda-ku',
      state: 'Tokyo',
      zip: '100-0005',
      country: 'Japan',
    },
  };
}

interface ReferralRow {
  id: string;
  platform: string;
  external_id: string;
  deal_id: string;
  state: string;
  direction: string;
  e_tag: string | null;
  platform_created_at: Date | null;
  platform_status: string | null;
  platform_substatus: string | null;
  snapshot: { id: string; externalReferenceId: string };
}

interface CosellView {
  state: string;
  referralId?: string;
  reason?: string;
  deadLetterId?: string;
}

describe('co-sell out (CONTRACT §5): a HubSpot deal with closeloop_cosell = true gets one Partner Center referral', () => {
  let e2e: E2E;
  let hub: RunningHub;
  let db: Pool;
  const queues = ['webhooks', 'billing', 'connectors'].map(
    (name) => new Queue(name, { connection: { url: TEST_REDIS_URL } }),
  );
  const hubEnv = {
    JOB_ATTEMPTS: '4',
    JOB_BACKOFF_BASE_MS: '50',
    JOB_BACKOFF_MAX_MS: '200',
    // A worker killed mid-job is noticed within a couple of seconds.
    JOB_LOCK_MS: '2000',
    // Work whose job Redis lost is handed out again after a second.
    RECOVERY_SWEEP_MS: '500',
    RECOVERY_GRACE_MS: '1000',
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

  /** The POSTs the simulated Partner Center received for a CRM deal (created or refused). */
  const createsFor = (crmDealId: string) =>
    e2e.partnerCenter.creates.filter((c) => c.body?.externalReferenceId === crmDealId);

  const referralOfDeal = (dealId: string) =>
    waitFor(
      async () =>
        (await db.query<ReferralRow>('SELECT * FROM referral WHERE deal_id = $1', [dealId]))
          .rows[0],
      { what: `the co-sell referral of ${dealId}`, timeoutMs: 20_000 },
    );

  const cosellOf = async (dealId: string) =>
    ((await getDeal(hub.url, dealId)) as unknown as { cosell: CosellView | null }).cosell;

  const messages = async (dealId: string) =>
    (await getDeal(hub.url, dealId)).timeline.map((t) => t.message);

  it('creates exactly one referral with every required field, whatever the duplicates, and links the deal to it', async () => {
    const { dealId: crmDealId } = e2e.hubspot.createDeal(cosellDeal('Contoso data platform'));
    const dealId = await dealIdForCrm(db, crmDealId);
    // The same deal announced again and again: created, and the co-sell box ticked, twice more.
    for (let i = 0; i < 2; i++) {
      e2e.hubspot.emitEvent({ objectId: Number(crmDealId), subscriptionType: 'deal.creation' });
      e2e.hubspot.emitEvent({
        objectId: Number(crmDealId),
        subscriptionType: 'deal.propertyChange',
        propertyName: 'closeloop_cosell',
        propertyValue: 'true',
      });
    }
    const referral = await referralOfDeal(dealId);
    await quiesce(e2e, db, queues);

    const posts = createsFor(crmDealId);
    expect(posts.map((p) => p.status)).toEqual([201]);
    expect(posts[0].body).toEqual({
      name: 'Contoso data platform',
      externalReferenceId: crmDealId,
      type: 'Shared',
      qualification: 'SalesQualified',
      customerProfile: {
        name: 'Contoso K.K.',
        address: {
          addressLine1: '1-2-3 Marunouchi',
          city: 'Chiyoda-ku',
          state: 'Tokyo',
          postalCode: '100-0005',
          country: 'JP',
        },
        team: [
          {
            firstName: 'Hanako',
            lastName: 'Yamada',
            email: 'hanako.yamada@contoso.example',
            phoneNumber: '+81-3-0000-0000',
          },
        ],
      },
      consent: {
        consentToShareInfoWithOthers: true,
        consentToToShareInfoWithOthers: true,
        consentToContact: true,
        consentToShareReferralWithMicrosoftSellers: true,
      },
      details: {
        notes: 'Contoso data platform: migrate the warehouse to Azure',
        dealValue: 1200000,
        currency: 'JPY',
        closingDateTime: '2027-03-31T00:00:00Z',
      },
    });
    const created = posts[0].created!;
    expect(e2e.partnerCenter.referral(created.id)).toMatchObject({
      status: 'Active',
      substatus: 'Accepted',
      direction: 'Outgoing',
    });

    expect(referral).toMatchObject({
      platform: 'partner-center',
      external_id: created.id,
      state: 'ACCEPTED',
      direction: 'outbound',
      e_tag: created.eTag,
      platform_status: 'Active',
      platform_substatus: 'Accepted',
      snapshot: expect.objectContaining({
        id: created.id,
        externalReferenceId: crmDealId,
      }) as unknown,
    });
    expect(referral.platform_created_at?.toISOString()).toBe(created.createdDateTime);
    const deal = (
      await db.query(
        'SELECT referral_platform, referral_id, cosell, close_date, cosell_requested_at FROM deal WHERE id = $1',
        [dealId],
      )
    ).rows[0] as Record<string, unknown>;
    expect(deal).toMatchObject({
      referral_platform: 'partner-center',
      referral_id: created.id,
      cosell: true,
      close_date: '2027-03-31',
    });
    expect(deal.cosell_requested_at).toBeInstanceOf(Date);

    expect(await cosellOf(dealId)).toMatchObject({ state: 'created', referralId: created.id });
    // The referral's id is written back onto the HubSpot deal.
    expect(e2e.hubspot.deal(crmDealId)?.properties).toMatchObject({
      closeloop_referral_platform: 'partner-center',
      closeloop_referral_id: created.id,
      closeloop_cosell: 'true',
    });
    const timeline = await messages(dealId);
    expect(timeline.filter((m) => m.startsWith('co-sell requested'))).toHaveLength(1);
    expect(timeline).toContainEqual(
      `co-sell referral ${created.id} created on partner-center (Active/Accepted): the deal now reports to it`,
    );

    // It reports like an inbound referral: engaged (NEGOTIATING) is Active/Accepted, which the
    // referral already is, so nothing is patched.
    const reports = await db.query<{ kind: string; status: string; referral_id: string }>(
      'SELECT kind, status, referral_id FROM report WHERE deal_id = $1 ORDER BY occurred_at',
      [dealId],
    );
    expect(reports.rows).toEqual([
      { kind: 'appointment', status: 'REPORTED', referral_id: created.id },
    ]);
    expect(e2e.partnerCenter.patchesFor(created.id)).toEqual([]);
  });

  it('won in HubSpot: Closed/Won with the value on that referral', async () => {
    const { dealId: crmDealId } = e2e.hubspot.createDeal(cosellDeal('Fabrikam analytics'));
    const dealId = await dealIdForCrm(db, crmDealId);
    const referral = await referralOfDeal(dealId);
    await quiesce(e2e, db, queues);

    e2e.hubspot.setStage(crmDealId, 'closedwon');
    const won = await waitFor(
      async () =>
        (
          await db.query<{ status: string; not_before: Date | null }>(
            "SELECT status, not_before FROM report WHERE deal_id = $1 AND kind = 'won'",
            [dealId],
          )
        ).rows[0],
      { what: 'the won report' },
    );
    if (won.not_before) {
      // Partner Center's deal-registration wait (provider-facts §4.2 [PC-REG]): Won no sooner than
      // 72 hours after the referral was created. The hub is started again on a clock past it.
      expect(won.not_before.getTime()).toBe(
        referral.platform_created_at!.getTime() + 72 * 3_600_000,
      );
      await quiesce(e2e, db, queues);
      expect(e2e.partnerCenter.referral(referral.external_id)?.substatus).toBe('Accepted');
      await hub.stop();
      hub = await startE2EHub(e2e, {
        ...hubEnv,
        LIFECYCLE_TIMER_MS: '200',
        CLOCK_START: new Date(won.not_before.getTime() + 60_000).toISOString(),
      });
    }
    await waitFor(() => e2e.partnerCenter.referral(referral.external_id)?.substatus === 'Won', {
      what: 'Closed/Won on Partner Center',
      timeoutMs: 20_000,
    });
    expect(e2e.partnerCenter.referral(referral.external_id)).toMatchObject({
      status: 'Closed',
      substatus: 'Won',
      details: expect.objectContaining({ dealValue: 1200000, currency: 'JPY' }) as unknown,
    });
    const applied = e2e.partnerCenter.patchesFor(referral.external_id, { appliedOnly: true });
    expect(applied).toHaveLength(1);
    expect(applied[0].ifMatch).toBe(referral.e_tag);
    expect(createsFor(crmDealId)).toHaveLength(1);
  });

  it('the answer of the POST is lost: the retry finds the referral by externalReferenceId and creates no second', async () => {
    e2e.sim.faults.add({
      provider: 'partner-center',
      method: 'POST',
      path: REFERRALS,
      responses: [{ drop: 'after' }],
    });
    const { dealId: crmDealId } = e2e.hubspot.createDeal(cosellDeal('Northwind portal'));
    const dealId = await dealIdForCrm(db, crmDealId);
    const referral = await referralOfDeal(dealId);
    await quiesce(e2e, db, queues);

    const posts = createsFor(crmDealId);
    expect(posts.map((p) => p.status)).toEqual([201]);
    expect(referral.external_id).toBe(posts[0].created!.id);
    const lists = e2e.sim.requests
      .list()
      .filter((r) => r.provider === 'partner-center' && r.method === 'GET' && r.path === REFERRALS);
    expect(lists.length).toBeGreaterThanOrEqual(2); // before the first POST, and before the retry
    expect(await messages(dealId)).toContainEqual(
      `co-sell referral ${referral.external_id} found (an earlier attempt had created it) on partner-center (Active/Accepted): the deal now reports to it`,
    );
    const attempts = await db.query<{ outcome: string }>(
      "SELECT outcome FROM job_attempt WHERE deal_id = $1 AND job_name = 'ReferralCosellCreate' ORDER BY id",
      [dealId],
    );
    expect(attempts.rows.map((a) => a.outcome)).toEqual(['RETRYING', 'SUCCEEDED']);
  });

  it('the worker is killed between the POST and its record: the next run finds the referral and creates no second', async () => {
    // Partner Center creates the referral, then holds its answer until the worker is gone.
    e2e.sim.faults.add({
      provider: 'partner-center',
      method: 'POST',
      path: REFERRALS,
      responses: [{ holdMs: 15_000 }],
    });
    const { dealId: crmDealId } = e2e.hubspot.createDeal(cosellDeal('Tailspin fleet'));
    const dealId = await dealIdForCrm(db, crmDealId);
    await waitFor(() => createsFor(crmDealId).length === 1, {
      what: 'the POST',
      timeoutMs: 20_000,
    });
    expect(await hub.stop('SIGKILL')).toBeNull();
    expect(
      (await db.query('SELECT referral_id FROM deal WHERE id = $1', [dealId])).rows[0],
    ).toEqual({ referral_id: null });

    hub = await startE2EHub(e2e, hubEnv);
    const referral = await referralOfDeal(dealId);
    await quiesce(e2e, db, queues);
    const posts = createsFor(crmDealId);
    expect(posts.map((p) => p.status)).toEqual([201]);
    expect(referral.external_id).toBe(posts[0].created!.id);
    expect(
      e2e.partnerCenter.listReferrals().filter((r) => r.externalReferenceId === crmDealId),
    ).toHaveLength(1);
  });

  it('a request whose job Redis lost is handed out again by the recovery sweep, and done once', async () => {
    const { dealId: crmDealId } = e2e.hubspot.createDeal(
      cosellDeal('Wingtip kiosks', { closeloop_cosell: 'false' }),
    );
    const dealId = await dealIdForCrm(db, crmDealId);
    await quiesce(e2e, db, queues);
    // The settle step asked (an hour ago), and its job never reached Redis.
    await db.query(
      "UPDATE deal SET cosell = true, cosell_requested_at = now() - interval '1 hour' WHERE id = $1",
      [dealId],
    );
    e2e.hubspot.updateDeal(crmDealId, { closeloop_cosell: 'true' });

    const referral = await referralOfDeal(dealId);
    await quiesce(e2e, db, queues);
    expect(createsFor(crmDealId).map((p) => p.status)).toEqual([201]);
    expect(referral.external_id).toBe(createsFor(crmDealId)[0].created!.id);
    const runs = await db.query<{ job_id: string }>(
      "SELECT job_id FROM job_attempt WHERE deal_id = $1 AND job_name = 'ReferralCosellCreate'",
      [dealId],
    );
    const { requested } = (
      await db.query<{ requested: Date }>(
        'SELECT cosell_requested_at AS requested FROM deal WHERE id = $1',
        [dealId],
      )
    ).rows[0];
    // The sweep's job (the settle step queued none: the deal had asked already).
    expect(runs.rows.map((r) => r.job_id)).toEqual([`cosell|${dealId}|${requested.getTime()}`]);
    expect(await messages(dealId)).not.toContainEqual(
      expect.stringMatching(/^co-sell requested/) as unknown,
    );
  });

  it('required data missing: a dead letter naming it, nothing sent; fixed in HubSpot and replayed: created once', async () => {
    const { dealId: crmDealId } = e2e.hubspot.createDeal(
      cosellDeal('Litware intranet', { amount: null, closedate: null }),
    );
    const dealId = await dealIdForCrm(db, crmDealId);
    const dl = await waitFor(
      async () =>
        (
          await db.query<{ id: string; reason: string; error: string }>(
            "SELECT id, reason, error FROM dead_letter WHERE job_name = 'ReferralCosellCreate' AND data->>'dealId' = $1",
            [dealId],
          )
        ).rows[0],
      { what: 'the dead letter', timeoutMs: 20_000 },
    );
    const why = `HubSpot deal ${crmDealId} lacks the amount, the close date (partner-center requires them): fill them in and replay the dead letter`;
    expect(dl).toMatchObject({
      reason: 'PERMANENT',
      error: expect.stringContaining(why) as unknown,
    });
    expect(createsFor(crmDealId)).toEqual([]);
    expect(await cosellOf(dealId)).toMatchObject({
      state: 'failed',
      deadLetterId: dl.id,
      reason: expect.stringContaining(why) as unknown,
    });
    expect(await messages(dealId)).toContainEqual(
      expect.stringContaining(`co-sell referral not created: `) as unknown,
    );

    const preview = (await (
      await fetch(`${hub.url}/api/dead-letters/${dl.id}/replay-preview`, { headers: admin })
    ).json()) as { summary: string[] };
    expect(preview.summary).toEqual([
      `create the deal's co-sell referral on Partner Center from CRM deal ${crmDealId} as it is now`,
      'an earlier attempt may have created it: it is looked up by externalReferenceId first (no second referral)',
    ]);

    e2e.hubspot.updateDeal(crmDealId, { amount: '800000', closedate: '2027-06-30T15:00:00.000Z' });
    const replay = await fetch(`${hub.url}/api/dead-letters/${dl.id}/replay`, {
      method: 'POST',
      headers: admin,
    });
    expect(replay.status).toBe(202);
    const referral = await referralOfDeal(dealId);
    await quiesce(e2e, db, queues);
    const posts = createsFor(crmDealId);
    expect(posts.map((p) => p.status)).toEqual([201]);
    expect(posts[0].body).toMatchObject({
      details: { dealValue: 800000, currency: 'JPY', closingDateTime: '2027-07-01T00:00:00Z' },
    });
    expect(referral.external_id).toBe(posts[0].created!.id);
    expect(await cosellOf(dealId)).toMatchObject({
      state: 'created',
      referralId: referral.external_id,
    });
  });

  it('a deal without closeloop_cosell asks for nothing; a deal with a referral of its own creates none', async () => {
    const { dealId: plain } = e2e.hubspot.createDeal(
      cosellDeal('Adatum kiosk', { closeloop_cosell: 'false' }),
    );
    const pc = e2e.partnerCenter.createReferral({ name: 'Inbound with co-sell box' });
    const inbound = await waitFor(
      async () =>
        (
          await db.query<{ deal_id: string }>(
            'SELECT deal_id FROM referral WHERE external_id = $1',
            [pc.id],
          )
        ).rows[0],
      { what: 'the inbound referral' },
    );
    const { dealId: linked } = e2e.hubspot.createDeal(
      cosellDeal('Inbound with co-sell box', {
        closeloop_referral_platform: 'partner-center',
        closeloop_referral_id: pc.id,
      }),
    );
    expect(await dealIdForCrm(db, linked)).toBe(inbound.deal_id);
    const plainDeal = await dealIdForCrm(db, plain);
    await quiesce(e2e, db, queues);
    expect(createsFor(plain)).toEqual([]);
    expect(createsFor(linked)).toEqual([]);
    expect(await cosellOf(plainDeal)).toBeNull();
    expect(await cosellOf(inbound.deal_id)).toEqual({
      state: 'not_requested',
      reason: 'the deal already has a referral',
    });
    const referral = e2e.partnerCenter.referral(pc.id) as PartnerCenterReferral;
    expect(referral.direction).toBe('Incoming');
  });
});
