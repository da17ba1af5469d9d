import { Pool } from 'pg';

import {
  CONTRACT_PLAN,
  E2E,
  admin,
  dealIdForCrm,
  startE2EHub,
  startProviders,
} from '../support/e2e';
import { RunningHub, flushTestRedis, testDb, truncateAll, waitFor } from '../support/hub';

/**
 * Plans and amounts of real size (CONTRACT §4, issue "Spine v2" item 5): a ¥3,000,000,000 deal is
 * ordinary data, a plan has up to 500 items, one item must fit one Stripe invoice, and a plan
 * refused on a deal at CONTRACT_SENT or later raises one plan.refused alert and shows the deal as
 * not billable. The built hub (ROLE=all) against real Postgres and Redis, with HubSpot, Stripe and
 * DocuSign played by the provider simulator.
 */

interface Answer {
  status: number;
  text: string;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

interface AlertRow {
  kind: string;
  cause: string;
  message: string;
  dealId: string | null;
}

/** A plan of `n` items of ¥1,000 (keys k0…), each waiting for its milestone. */
const manyItems = (n: number, trigger = 'milestone.accepted') => ({
  currency: 'jpy',
  taxRatePercent: 10,
  items: Array.from({ length: n }, (_, i) => ({
    key: `k${i}`,
    label: `Item ${i}`,
    amount: 1000,
    trigger,
  })),
});

/** ¥3,000,000,000 in 40 phases of 2.5 % (¥75,000,000 + 10 % tax each: every invoice fits Stripe). */
const PHASED_PLAN = {
  currency: 'jpy',
  taxRatePercent: 10,
  items: Array.from({ length: 40 }, (_, i) => ({
    key: `phase-${i + 1}`,
    label: `Phase ${i + 1}`,
    percent: 2.5,
    trigger: i === 0 ? 'contract.signed' : 'milestone.accepted',
  })),
};

const TOO_MANY = 'items: a plan has at most 500 items (this one has 501)';

describe('plans and amounts of real size', () => {
  let e2e: E2E;
  let hub: RunningHub;
  let db: Pool;

  async function api(method: string, urlPath: string, body?: unknown): Promise<Answer> {
    const res = await fetch(`${hub.url}${urlPath}`, {
      method,
      headers: { ...admin, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, body: text ? JSON.parse(text) : undefined };
  }

  const deal = async (id: string) => (await api('GET', `/api/deals/${id}`)).body;
  const count = async (sql: string, values: unknown[] = []) =>
    Number((await db.query(sql, values)).rows[0].n);
  const planAlerts = async (dealId: string): Promise<AlertRow[]> =>
    ((await api('GET', '/api/alerts?limit=200')).body.items as AlertRow[]).filter(
      (a) => a.kind === 'plan.refused' && a.dealId === dealId,
    );
  /** Waits until `n` of the deal's webhook events are processed (or ignored). */
  const processed = (dealId: string, n: number) =>
    waitFor(
      async () =>
        (await count(
          `SELECT count(*) AS n FROM webhook_event
            WHERE deal_id = $1 AND status IN ('PROCESSED', 'IGNORED')`,
          [dealId],
        )) >= n,
      { what: `${n} events of deal ${dealId} processed`, timeoutMs: 20_000 },
    );
  /** The HubSpot deal's stage property announced again (HubSpot resends; the hub re-reads the deal). */
  const restage = (crmDealId: string, stage: string) =>
    e2e.hubspot.emitEvent({
      objectId: Number(crmDealId),
      subscriptionType: 'deal.propertyChange',
      propertyName: 'dealstage',
      propertyValue: stage,
    });

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

  it('stores and returns a ¥3,000,000,000 deal exactly, and bills it in items that each fit one invoice', async () => {
    const created = await api('POST', '/api/deals', {
      name: 'Core banking renewal',
      customer: { company: '大口銀行株式会社', email: 'keiri@ooguchi.example.jp' },
      amount: 3_000_000_000,
      stage: 'WON',
      billingPlan: PHASED_PLAN,
    });
    expect(created.status).toBe(201);
    const id: string = created.body.id;
    // A JSON number, exactly: not a string, not rounded.
    expect(created.text).toContain('"amount":3000000000,');
    expect(created.body).toMatchObject({
      amount: 3_000_000_000,
      billable: { ok: true, reason: null },
      planError: null,
    });
    expect(created.body.items).toHaveLength(40);
    expect(created.body.items.every((i: { amount: number }) => i.amount === 75_000_000)).toBe(true);
    const { rows } = await db.query(
      'SELECT amount::text AS amount, pg_typeof(amount)::text AS type FROM deal WHERE id = $1',
      [id],
    );
    expect(rows).toEqual([{ amount: '3000000000', type: 'bigint' }]);

    const listed = await api('GET', `/api/deals?q=${id}`);
    expect(listed.body.items).toEqual([expect.objectContaining({ id, amount: 3_000_000_000 })]);

    const phase1 = await waitFor(
      async () => {
        const item = (await deal(id)).items.find((i: { key: string }) => i.key === 'phase-1');
        return item.billingStatus === 'INVOICE_POSTED' ? item : undefined;
      },
      { what: 'the phase-1 invoice to be POSTED', timeoutMs: 30_000 },
    );
    expect(phase1.invoices).toEqual([
      expect.objectContaining({ amount: 75_000_000, taxAmount: 7_500_000, total: 82_500_000 }),
    ]);
    const stripe = e2e.sim.stripe.invoicesByMetadata('closeloop_deal_id', id);
    expect(stripe).toEqual([expect.objectContaining({ subtotal: 75_000_000, total: 82_500_000 })]);

    const recon = await api('GET', `/api/reconciliation?dealId=${id}`);
    expect(recon.body.deals[0]).toMatchObject({
      contracted: 3_000_000_000,
      invoicedHub: 75_000_000,
      invoicedStripe: 75_000_000,
      mismatches: [],
    });
  });

  it('takes a deal amount of 999,999,999,999 and refuses 1,000,000,000,000', async () => {
    const largest = await api('POST', '/api/deals', { name: 'Largest', amount: 999_999_999_999 });
    expect(largest.status).toBe(201);
    expect(largest.text).toContain('"amount":999999999999,');
    const tooLarge = await api('POST', '/api/deals', { name: 'Too large', amount: 1e12 });
    expect(tooLarge.status).toBe(400);
    expect(tooLarge.body.error).toMatchObject({
      code: 'VALIDATION_FAILED',
      message: 'amount: must be at most 999999999999 (the largest amount the hub takes)',
    });
  });

  it('takes a plan of 500 items and refuses 501 with its reason, creating and billing nothing', async () => {
    const five = await api('POST', '/api/deals', {
      name: '500 items',
      stage: 'NEGOTIATING',
      billingPlan: manyItems(500),
    });
    expect(five.status).toBe(201);
    expect(five.body.items).toHaveLength(500);

    const deals = await count('SELECT count(*) AS n FROM deal');
    const invoices = await count('SELECT count(*) AS n FROM invoice');
    const refused = await api('POST', '/api/deals', {
      name: '501 items, won',
      stage: 'WON',
      billingPlan: manyItems(501, 'contract.signed'),
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toEqual({
      code: 'INVALID_BILLING_PLAN',
      message: `billing plan refused: ${TOO_MANY}`,
      details: [TOO_MANY],
    });
    expect(await count('SELECT count(*) AS n FROM deal')).toBe(deals);
    expect(await count('SELECT count(*) AS n FROM invoice')).toBe(invoices);
  });

  it('a plan refused on a WON deal raises one plan.refused alert, shows the deal not billable and bills nothing; the same refusal again raises none, another refusal one more', async () => {
    const { dealId: crmDealId } = e2e.hubspot.createDeal({
      properties: {
        dealname: 'Refused plan, won',
        amount: '3000000000',
        deal_currency_code: 'JPY',
        dealstage: 'closedwon',
        closeloop_billing_plan: JSON.stringify(manyItems(501, 'contract.signed')),
      },
      contact: { email: 'won@refused.example.jp', firstname: 'Jiro', lastname: 'Suzuki' },
      company: { name: 'Refused K.K.' },
    });
    const id = await dealIdForCrm(db, crmDealId);
    const won = await waitFor(
      async () => {
        const d = await deal(id);
        return d.stage === 'WON' && d.planError ? d : undefined;
      },
      { what: 'the deal WON with its plan refused', timeoutMs: 20_000 },
    );
    expect(won).toMatchObject({
      amount: 3_000_000_000,
      plan: null,
      planError: TOO_MANY,
      billable: { ok: false, reason: `plan refused (${TOO_MANY})` },
      items: [],
    });
    expect(won.timeline).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'refused', message: `billing plan refused: ${TOO_MANY}` }),
      ]),
    );
    const first = await planAlerts(id);
    expect(first).toEqual([
      expect.objectContaining({
        cause: expect.stringMatching(new RegExp(`^plan\\.refused\\|${id}\\|`)),
        message: `deal ${id} (WON) is not billable: plan refused (${TOO_MANY})`,
      }),
    ]);
    expect(await count('SELECT count(*) AS n FROM invoice WHERE deal_id = $1', [id])).toBe(0);

    // HubSpot announces the deal again with the same (refused) plan: no second alert.
    const seen = await count('SELECT count(*) AS n FROM webhook_event WHERE deal_id = $1', [id]);
    restage(crmDealId, 'closedwon');
    await processed(id, seen + 1);
    expect(await planAlerts(id)).toHaveLength(1);

    // Another refusal: the contract's example plan on a ¥3,000,000,000 deal (30 % per invoice).
    e2e.hubspot.updateDeal(crmDealId, { closeloop_billing_plan: JSON.stringify(CONTRACT_PLAN) });
    restage(crmDealId, 'closedwon');
    await processed(id, seen + 2);
    const second = await planAlerts(id);
    expect(second).toHaveLength(2);
    expect(second[0].cause).not.toBe(second[1].cause);
    expect(second[0].message).toContain('item "deposit" is too large for one Stripe invoice');
    const refusedAgain = await deal(id);
    expect(refusedAgain.billable.ok).toBe(false);
    expect(refusedAgain.billable.reason).toMatch(
      /^plan refused \(items\[0\]: item "deposit" is too large for one Stripe invoice: its invoice would be 990,000,000 incl\. tax/,
    );
    expect(await count('SELECT count(*) AS n FROM invoice WHERE deal_id = $1', [id])).toBe(0);

    // A plan whose items each fit: billable, and the contract.signed item is invoiced.
    e2e.hubspot.updateDeal(crmDealId, { closeloop_billing_plan: JSON.stringify(PHASED_PLAN) });
    restage(crmDealId, 'closedwon');
    await processed(id, seen + 3);
    const fixed = await deal(id);
    expect(fixed).toMatchObject({ planError: null, billable: { ok: true, reason: null } });
    await waitFor(
      async () =>
        (await count(`SELECT count(*) AS n FROM invoice WHERE deal_id = $1 AND state = 'POSTED'`, [
          id,
        ])) === 1,
      { what: 'the first phase invoiced', timeoutMs: 30_000 },
    );
    expect(await planAlerts(id)).toHaveLength(2);
  });

  it('a plan refused before the contract is sent alerts once the deal reaches CONTRACT_SENT, not before', async () => {
    const { dealId: crmDealId } = e2e.hubspot.createDeal({
      properties: {
        dealname: 'Refused plan, early',
        amount: '3000000000',
        deal_currency_code: 'JPY',
        dealstage: 'appointmentscheduled',
        closeloop_billing_plan: JSON.stringify(CONTRACT_PLAN),
      },
      contact: { email: 'early@refused.example.jp', firstname: 'Saburo', lastname: 'Ito' },
      company: { name: 'Early K.K.' },
    });
    const id = await dealIdForCrm(db, crmDealId);
    await processed(id, 1);
    const early = await deal(id);
    expect(early.stage).toBe('APPOINTMENT');
    expect(early.billable.ok).toBe(false);
    expect(await planAlerts(id)).toEqual([]);

    e2e.hubspot.setStage(crmDealId, 'contractsent');
    await waitFor(async () => (await planAlerts(id)).length === 1, {
      what: 'the plan.refused alert at CONTRACT_SENT',
      timeoutMs: 20_000,
    });
    expect((await planAlerts(id))[0].message).toMatch(
      new RegExp(`^deal ${id} \\(CONTRACT_SENT\\) is not billable: plan refused \\(items\\[0\\]`),
    );
    e2e.hubspot.setStage(crmDealId, 'closedwon');
    await waitFor(async () => (await deal(id)).stage === 'WON', { what: 'WON', timeoutMs: 20_000 });
    expect(await planAlerts(id)).toHaveLength(1);
  });
});
