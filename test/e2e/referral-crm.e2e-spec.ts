import { Queue } from 'bullmq';
import { Pool } from 'pg';

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

describe('REFERRAL_CREATE_CRM_DEALS: an accepted referral gets its HubSpot deal, once', () => {
  let e2e: E2E;
  let hub: RunningHub;
  let db: Pool;
  const queues = ['webhooks', 'billing', 'connectors'].map(
    (name) => new Queue(name, { connection: { url: TEST_REDIS_URL } }),
  );

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await flushTestRedis();
    e2e = await startProviders();
    hub = await startE2EHub(e2e, {
      REFERRAL_CREATE_CRM_DEALS: 'true',
      JOB_BACKOFF_BASE_MS: '50',
      JOB_BACKOFF_MAX_MS: '200',
    });
  });

  afterAll(async () => {
    await hub?.stop();
    await e2e?.close();
    await Promise.all(queues.map((q) => q.close()));
    await db?.end();
  });

  const referralOf = (externalId: string) =>
    waitFor(
      async () =>
        (
          await db.query<{ id: string; deal_id: string }>(
            'SELECT id, deal_id FROM referral WHERE external_id = $1',
            [externalId],
          )
        ).rows[0],
      { what: `referral ${externalId}` },
    );

  const accept = (referralId: string) =>
    fetch(`${hub.url}/api/referrals/${referralId}/accept`, { method: 'POST', headers: admin });

  const hubspotDealsFor = (referralId: string) =>
    e2e.hubspot.deals().filter((d) => d.properties.closeloop_referral_id === referralId);

  it('creates the HubSpot deal with the referral properties, even when its answer was lost', async () => {
    const pc = e2e.partnerCenter.createReferral({ name: 'Fabrikam data platform' });
    const referral = await referralOf(pc.id);
    // Nothing in HubSpot while the referral is unanswered.
    await quiesce(e2e, db, queues);
    expect(hubspotDealsFor(pc.id)).toHaveLength(0);

    // HubSpot creates the deal but the hub never hears the answer: the retry finds it by search.
    e2e.sim.faults.add({
      provider: 'hubspot',
      method: 'POST',
      path: '/crm/v3/objects/deals',
      responses: [{ drop: 'after' }],
    });
    expect((await accept(referral.id)).status).toBe(200);
    const crmDealId = await waitFor(
      async () =>
        (
          await db.query<{ crm_deal_id: string | null }>(
            'SELECT crm_deal_id FROM deal WHERE id = $1',
            [referral.deal_id],
          )
        ).rows[0]?.crm_deal_id ?? undefined,
      { what: 'the hub deal linked to its new HubSpot deal', timeoutMs: 20_000 },
    );
    await quiesce(e2e, db, queues);
    const deals = hubspotDealsFor(pc.id);
    expect(deals.map((d) => d.id)).toEqual([crmDealId]);
    expect(deals[0].properties).toMatchObject({
      dealname: 'Fabrikam data platform',
      dealstage: 'appointmentscheduled',
      amount: '300000',
      deal_currency_code: 'JPY',
      closeloop_referral_platform: 'partner-center',
      closeloop_referral_id: pc.id,
    });
    // HubSpot's creation webhook changed nothing: one hub deal, still APPOINTMENT.
    expect(await dealIdForCrm(db, crmDealId!)).toBe(referral.deal_id);
    expect((await getDeal(hub.url, referral.deal_id)).stage).toBe('APPOINTMENT');

    // The CRM now drives the deal as for any HubSpot deal.
    e2e.hubspot.setStage(crmDealId!, 'qualifiedtobuy');
    await waitFor(async () => (await getDeal(hub.url, referral.deal_id)).stage === 'NEGOTIATING', {
      what: 'NEGOTIATING from HubSpot',
    });
  });

  it('a second HubSpot deal naming a referral that already has one is not linked to it', async () => {
    const pc = e2e.partnerCenter.createReferral({ name: 'Northwind portal' });
    const referral = await referralOf(pc.id);
    await accept(referral.id);
    await waitFor(() => hubspotDealsFor(pc.id).length === 1, { what: 'the HubSpot deal' });
    await quiesce(e2e, db, queues);
    const { dealId: stray } = e2e.hubspot.createDeal({
      properties: {
        dealname: 'Northwind portal (copy)',
        closeloop_referral_platform: 'partner-center',
        closeloop_referral_id: pc.id,
      },
    });
    const strayDeal = await dealIdForCrm(db, stray);
    expect(strayDeal).not.toBe(referral.deal_id);
    const detail = await getDeal(hub.url, strayDeal);
    expect(detail.timeline.map((t) => t.message)).toEqual(
      expect.arrayContaining([expect.stringContaining(`belongs to deal ${referral.deal_id}`)]),
    );
    const owner = await db.query('SELECT id FROM deal WHERE referral_id = $1', [pc.id]);
    expect(owner.rows).toEqual([{ id: referral.deal_id }]);
  });
});
