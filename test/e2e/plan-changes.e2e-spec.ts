import { randomUUID } from 'node:crypto';

import { Pool } from 'pg';

import { hubspotDelivery, send } from '../../tools/simulator/signed-delivery';
import { E2E, admin, getDeal, milestone, startE2EHub, startProviders } from '../support/e2e';
import { RunningHub, flushTestRedis, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';

/** Progress-based items, additional orders (追加発注) and one envelope per deal under duplicates. */
describe('plan changes and progress billing', () => {
  let e2e: E2E;
  let hub: RunningHub;
  let db: Pool;

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await flushTestRedis();
    e2e = await startProviders();
    hub = await startE2EHub(e2e);
  });
  afterAll(async () => {
    await hub?.stop();
    await e2e?.close();
    await db?.end();
  });

  const ms = (type: string, data: Record<string, unknown>) => milestone(hub.url, type, data);

  async function createDeal(stage: string, items: unknown[]): Promise<string> {
    const res = await fetch(`${hub.url}/api/deals`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: `Plan ${randomUUID().slice(0, 8)}`,
        customer: { company: 'Plan K.K.', contactName: 'Hanako Sato', email: 'sato@example.jp' },
        currency: 'jpy',
        stage,
        billingPlan: { currency: 'jpy', taxRatePercent: 10, items },
      }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  }

  const invoicesOf = (dealId: string) =>
    e2e.sim.stripe
      .invoicesByMetadata('closeloop_deal_id', dealId)
      .map((i) => ({ key: i.metadata.closeloop_billing_key, subtotal: i.subtotal }))
      .sort((a, b) => a.key.localeCompare(b.key));

  /** Waits until the hub has no billing work left for the deal. */
  const settled = (dealId: string, invoices: number) =>
    waitFor(
      async () => {
        const { rows } = await db.query<{ open: number; total: number }>(
          `SELECT count(*) FILTER (WHERE state NOT IN ('POSTED', 'PAID', 'VOID'))::int AS open,
                  count(*)::int AS total FROM invoice WHERE deal_id = $1`,
          [dealId],
        );
        return rows[0].total === invoices && rows[0].open === 0;
      },
      { what: `${invoices} posted invoices for ${dealId}`, timeoutMs: 20_000 },
    );

  it('bills a progress item by its deltas, once per step, ignoring late lower percentages', async () => {
    const dealId = await createDeal('WON', [
      { key: 'build', label: 'Build', amount: 100000, trigger: 'milestone.progress' },
    ]);
    expect(
      (await ms('milestone.progress', { dealId, itemKey: 'build', progressPercent: 30 })).status,
    ).toBe(200);
    await settled(dealId, 1);
    // A duplicate step and a late, lower one bill nothing.
    await ms('milestone.progress', { dealId, itemKey: 'build', progressPercent: 30 });
    await ms('milestone.progress', { dealId, itemKey: 'build', progressPercent: 20 });
    await ms('milestone.progress', { dealId, itemKey: 'build', progressPercent: 100 });
    await settled(dealId, 2);
    await new Promise((r) => setTimeout(r, 500));
    expect(invoicesOf(dealId)).toEqual([
      { key: `${dealId}|build|p100`, subtotal: 70000 },
      { key: `${dealId}|build|p30`, subtotal: 30000 },
    ]);
    const deal = await getDeal(hub.url, dealId);
    expect(deal.timeline.map((t) => t.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/progress 30% is not beyond 30%/)]),
    );
  });

  it('an additional order adds items with new keys and bills them on their own triggers', async () => {
    const dealId = await createDeal('WON', [
      { key: 'deposit', label: '着手金', amount: 100000, trigger: 'contract.signed' },
    ]);
    await settled(dealId, 1);
    const res = await ms('order.additional', {
      dealId,
      description: '追加ページ制作',
      items: [
        { key: 'extra', label: '追加ページ', amount: 50000, trigger: 'contract.signed' },
        { key: 'extra-review', label: 'Review', amount: 20000, trigger: 'milestone.accepted' },
      ],
    });
    expect(res.status).toBe(200);
    await settled(dealId, 2);
    expect(invoicesOf(dealId).map((i) => i.key)).toEqual([`${dealId}|deposit`, `${dealId}|extra`]);
    const detail = await getDeal(hub.url, dealId);
    expect(detail.items.map((i) => [i.key, i.billingStatus])).toEqual([
      ['deposit', 'INVOICE_POSTED'],
      ['extra', 'INVOICE_POSTED'],
      ['extra-review', 'NOT_READY'],
    ]);

    // Reusing a key is refused: the event is dead-lettered with the reason, the plan unchanged.
    const reused = await ms('order.additional', {
      dealId,
      description: 'again',
      items: [{ key: 'extra', label: 'dup', amount: 1, trigger: 'contract.signed' }],
    });
    const eventId = (reused.body as { eventIds: string[] }).eventIds[0];
    const dead = await waitFor(
      async () =>
        (
          await db.query<{ status: string; last_error: string }>(
            'SELECT status, last_error FROM webhook_event WHERE id = $1',
            [eventId],
          )
        ).rows.find((r) => r.status === 'DEAD'),
      { what: 'the refused additional order to be dead-lettered' },
    );
    expect(dead!.last_error).toMatch(/additional order refused: .*"extra" already exists/);
    expect((await getDeal(hub.url, dealId)).items).toHaveLength(3);
  });

  it('duplicate HubSpot stage changes to contractsent create one envelope', async () => {
    const { dealId: crmDealId } = e2e.hubspot.createDeal({
      properties: {
        dealname: 'Envelope once',
        amount: '200000',
        deal_currency_code: 'JPY',
        pipeline: 'default',
        dealstage: 'qualifiedtobuy',
      },
      contact: { email: 'once@example.jp', firstname: 'Ichiro', lastname: 'Once' },
      company: { name: 'Once K.K.' },
    });
    const dealId = await waitFor(
      async () =>
        (await db.query<{ id: string }>('SELECT id FROM deal WHERE crm_deal_id = $1', [crmDealId]))
          .rows[0]?.id,
      { what: 'the hub deal' },
    );
    e2e.hubspot.pauseWebhooks();
    e2e.hubspot.updateDeal(crmDealId, { dealstage: 'contractsent' });
    // 10 concurrent deliveries of the stage change, each a distinct HubSpot event.
    const now = Date.now();
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        send(
          hub.url,
          hubspotDelivery(
            [
              {
                eventId: 900000 + i,
                subscriptionId: 25,
                portalId: e2e.hubspot.portalId,
                appId: e2e.hubspot.appId,
                occurredAt: now + i,
                subscriptionType: 'deal.propertyChange',
                attemptNumber: 0,
                objectId: Number(crmDealId),
                propertyName: 'dealstage',
                propertyValue: 'contractsent',
                changeSource: 'CRM_UI',
              },
            ],
            {
              clientSecret: TEST_SECRETS.HUBSPOT_CLIENT_SECRET,
              publicBaseUrl: 'https://hub.example.test',
            },
          ),
        ),
      ),
    );
    e2e.hubspot.resumeWebhooks();
    await waitFor(async () => (await getDeal(hub.url, dealId)).contract?.status === 'SENT', {
      what: 'the envelope to be sent',
    });
    await new Promise((r) => setTimeout(r, 1_000));
    const mine = e2e.docusign
      .envelopes()
      .filter((e) =>
        e.customFields.some((f) => f.name === 'closeloop_deal_id' && f.value === dealId),
      );
    expect(mine).toHaveLength(1);
    const deal = await getDeal(hub.url, dealId);
    expect(deal.stage).toBe('CONTRACT_SENT');
    expect(deal.contract?.envelopeId).toBe(mine[0].envelopeId);
  });
});
