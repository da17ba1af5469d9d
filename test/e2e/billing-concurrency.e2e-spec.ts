import { randomUUID } from 'node:crypto';

import { Queue } from 'bullmq';
import { Pool } from 'pg';

import { QueueName } from '../../src/queue/queue-name.enum';
import {
  DocusignConnectMessage,
  SimEnvelope,
  docusignDateTime,
} from '../../tools/simulator/provider-sim/docusign.sim';
import { docusignDelivery, send } from '../../tools/simulator/signed-delivery';
import {
  DealDetail,
  E2E,
  admin,
  getDeal,
  startE2EHub,
  startProviders,
  CONTRACT_PLAN,
  milestone,
  quiesce,
} from '../support/e2e';
import { RunningHub, flushTestRedis, freePort, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_REDIS_URL, TEST_SECRETS } from '../support/test-env';

/**
 * Exactly one Stripe invoice per billing key under concurrent duplicate deliveries, several
 * worker processes, and reordered or late provider events (CONTRACT §3, §4; ADR 0004). Every
 * assertion counts what the Stripe simulator holds per closeloop_billing_key and what the hub's
 * admin API shows, after the whole system went quiet (no open event, no outbox row, no queued
 * or running job, no webhook in flight).
 */

const DOCUSIGN_KEYS = TEST_SECRETS.DOCUSIGN_CONNECT_HMAC_KEYS.split(',');
const N = 20;

function expect2xx(results: { status: number; body: unknown }[]): void {
  const bad = results.filter((r) => r.status < 200 || r.status >= 300);
  expect(bad).toEqual([]);
}

describe('exactly one invoice per billing key under concurrency and reordering (CONTRACT §4)', () => {
  let e2e: E2E;
  let hub: RunningHub;
  let db: Pool;
  let queues: Queue[];

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await flushTestRedis();
    queues = Object.values(QueueName).map(
      (name) => new Queue(name, { connection: { url: TEST_REDIS_URL } }),
    );
    e2e = await startProviders();
    hub = await startE2EHub(e2e);
  });

  afterAll(async () => {
    await hub?.stop();
    await e2e?.close();
    await Promise.all((queues ?? []).map((q) => q.close()));
    await db?.end();
  });

  // ---- helpers --------------------------------------------------------------------------------

  async function createDeal(stage: 'CONTRACT_SENT' | 'WON', name: string): Promise<string> {
    const res = await fetch(`${hub.url}/api/deals`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({
        name,
        customer: {
          company: 'Example K.K.',
          contactName: 'Taro Tanaka',
          email: 'tanaka@example.jp',
        },
        currency: 'jpy',
        amount: 400000,
        stage,
        billingPlan: CONTRACT_PLAN,
      }),
    });
    const body = (await res.json()) as { id: string };
    expect(res.status).toBe(201);
    return body.id;
  }

  /** A CONTRACT_SENT deal whose DocuSign envelope exists and is recorded by the hub. */
  async function dealWithEnvelope(name: string): Promise<{ dealId: string; envelopeId: string }> {
    const dealId = await createDeal('CONTRACT_SENT', name);
    const envelope = (await waitFor(
      () =>
        e2e.docusign
          .envelopes()
          .find((e: SimEnvelope) =>
            e.customFields.some((f) => f.name === 'closeloop_deal_id' && f.value === dealId),
          ),
      { what: `envelope of ${dealId}`, timeoutMs: 20_000 },
    ))!;
    await waitFor(
      async () => (await getDeal(hub.url, dealId)).contract?.envelopeId === envelope.envelopeId,
      { what: 'envelope id recorded by the hub', timeoutMs: 20_000 },
    );
    // Let envelope-sent reach the hub before anything else happens to the envelope.
    await e2e.docusign.webhooksIdle();
    return { dealId, envelopeId: envelope.envelopeId };
  }

  /**
   * Signs the envelope in the simulator with its own Connect delivery held back, and returns the
   * envelope-completed message DocuSign would send (callers post copies of it themselves; the
   * held-back original is released by `releaseDocusign`).
   */
  function signHeldBack(envelopeId: string): DocusignConnectMessage {
    e2e.docusign.pauseWebhooks();
    e2e.docusign.complete(envelopeId);
    return e2e.docusign.connectMessage(envelopeId, 'envelope-completed');
  }

  async function releaseDocusign(): Promise<void> {
    e2e.docusign.resumeWebhooks();
    await e2e.docusign.webhooksIdle();
  }

  const postDocusign = (message: unknown) =>
    send(hub.url, docusignDelivery(message, DOCUSIGN_KEYS));

  const quiet = () => quiesce(e2e, db, queues);

  /** Stripe invoices of a deal per item key, and the billing keys they carry. */
  function stripeByItem(dealId: string): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const inv of e2e.sim.stripe.invoicesByMetadata('closeloop_deal_id', dealId)) {
      (out[inv.metadata.closeloop_item_key] ??= []).push(inv.metadata.closeloop_billing_key);
    }
    return out;
  }

  async function hubInvoiceKeys(dealId: string): Promise<string[]> {
    const { rows } = await db.query<{ billing_key: string }>(
      'SELECT billing_key FROM invoice WHERE deal_id = $1 ORDER BY billing_key',
      [dealId],
    );
    return rows.map((r) => r.billing_key);
  }

  /** The Stripe customers the deal's invoices are made out to (one per customer e-mail). */
  function stripeCustomersOf(dealId: string) {
    const ids = new Set(
      e2e.sim.stripe.invoicesByMetadata('closeloop_deal_id', dealId).map((i) => i.customer),
    );
    return e2e.sim.stripe.customers().filter((c) => ids.has(c.id));
  }

  const item = (d: DealDetail, key: string) => d.items.find((i) => i.key === key)!;

  async function waitItems(
    dealId: string,
    want: Record<string, string>,
    what: string,
  ): Promise<DealDetail> {
    const found = await waitFor(
      async () => {
        const d = await getDeal(hub.url, dealId);
        return Object.entries(want).every(([k, s]) => item(d, k)?.billingStatus === s)
          ? d
          : undefined;
      },
      { what, timeoutMs: 30_000 },
    );
    return found!;
  }

  /** What the outside world sees of a deal's billing: stage, per item status and invoice counts. */
  async function outcome(dealId: string) {
    const d = await getDeal(hub.url, dealId);
    const stripe = stripeByItem(dealId);
    return {
      stage: d.stage,
      items: d.items.map((i) => ({
        key: i.key,
        billingStatus: i.billingStatus,
        hubInvoices: i.invoices.length,
        stripeInvoices: stripe[i.key]?.length ?? 0,
      })),
    };
  }

  // ---- the concurrency guarantees, with one hub and with two worker processes -----------------

  describe.each([
    ['one hub (ROLE=all)', 1],
    ['two worker processes (ROLE=all + a second ROLE=worker)', 2],
  ])('with %s', (_label, processes) => {
    let worker: RunningHub | undefined;

    beforeAll(async () => {
      if (processes === 2) {
        worker = await startE2EHub(e2e, {
          ROLE: 'worker',
          PORT: String(await freePort()),
          LOG_LEVEL: 'info',
        });
      }
    });

    afterAll(async () => {
      await worker?.stop();
    });

    it(`${N} concurrent identical envelope-completed deliveries: WON once, one deposit invoice, one customer`, async () => {
      const { dealId, envelopeId } = await dealWithEnvelope(`identical ${processes}`);
      const message = signHeldBack(envelopeId);

      const results = await Promise.all(Array.from({ length: N }, () => postDocusign(message)));
      expect2xx(results);
      await releaseDocusign();

      await waitItems(dealId, { deposit: 'INVOICE_POSTED' }, 'deposit invoice posted');
      await quiet();

      expect(stripeByItem(dealId)).toEqual({ deposit: [`${dealId}|deposit`] });
      expect(await hubInvoiceKeys(dealId)).toEqual([`${dealId}|deposit`]);
      expect(stripeCustomersOf(dealId)).toHaveLength(1);
      // Every deal of this customer (one e-mail address) invoices the same Stripe customer.
      expect(
        e2e.sim.stripe
          .customers()
          .filter((c) => c.metadata.closeloop_customer_key === 'email:tanaka@example.jp'),
      ).toEqual(stripeCustomersOf(dealId));
      const after = await getDeal(hub.url, dealId);
      expect(after.stage).toBe('WON');
      expect(item(after, 'deposit').invoices).toHaveLength(1);
      expect(item(after, 'design').billingStatus).toBe('NOT_READY');
      expect(after.timeline.filter((t) => t.message === 'CONTRACT_SENT → WON')).toHaveLength(1);
      // One identity: one stored event (plus the simulator's own delivery, another identity).
      const { rows } = await db.query(
        "SELECT provider_event_id FROM webhook_event WHERE provider = 'docusign' AND type = 'envelope-completed' AND provider_event_id LIKE $1",
        [`${envelopeId}|%`],
      );
      expect(rows.map((r) => r.provider_event_id)).toContain(
        `${envelopeId}|envelope-completed|${message.generatedDateTime}`,
      );
      expect(rows).toHaveLength(2);
    });

    it(`${N} concurrent envelope-completed deliveries with different generatedDateTime: still one transition and one invoice`, async () => {
      const { dealId, envelopeId } = await dealWithEnvelope(`retried ${processes}`);
      const message = signHeldBack(envelopeId);
      const base = Date.now();
      const messages = Array.from({ length: N }, (_, i) => ({
        ...message,
        retryCount: i,
        generatedDateTime: docusignDateTime(new Date(base + i * 3), i + 1),
      }));

      const results = await Promise.all(messages.map(postDocusign));
      expect2xx(results);
      await releaseDocusign();

      await waitItems(dealId, { deposit: 'INVOICE_POSTED' }, 'deposit invoice posted');
      await quiet();

      // 20 (+1 from the simulator) distinct identities were stored and processed …
      const { rows } = await db.query(
        "SELECT status FROM webhook_event WHERE provider = 'docusign' AND type = 'envelope-completed' AND provider_event_id LIKE $1",
        [`${envelopeId}|%`],
      );
      expect(rows).toHaveLength(N + 1);
      expect(rows.every((r) => r.status === 'PROCESSED')).toBe(true);
      // … and made one transition, one invoice, one customer.
      expect(stripeByItem(dealId)).toEqual({ deposit: [`${dealId}|deposit`] });
      expect(await hubInvoiceKeys(dealId)).toEqual([`${dealId}|deposit`]);
      expect(stripeCustomersOf(dealId)).toHaveLength(1);
      const after = await getDeal(hub.url, dealId);
      expect(after.stage).toBe('WON');
      expect(after.timeline.filter((t) => t.message === 'CONTRACT_SENT → WON')).toHaveLength(1);
      expect(
        after.timeline.filter((t) => t.kind === 'transition' && t.message.includes('WON')),
      ).toHaveLength(1);
    });

    it(`${N} concurrent milestone acceptances (one webhook-id, and ${N} webhook-ids): one invoice per item`, async () => {
      const dealId = await createDeal('WON', `milestones ${processes}`);
      await waitItems(dealId, { deposit: 'INVOICE_POSTED' }, 'deposit invoice posted');

      const sameId = `msg_${randomUUID()}`;
      const [same, distinct] = await Promise.all([
        Promise.all(
          Array.from({ length: N }, () =>
            milestone(
              hub.url,
              'milestone.accepted',
              { dealId, itemKey: 'design', acceptedBy: 'client@example.com' },
              sameId,
            ),
          ),
        ),
        Promise.all(
          Array.from({ length: N }, (_, i) =>
            milestone(hub.url, 'milestone.accepted', {
              dealId,
              itemKey: 'balance',
              acceptedBy: `approver-${i}@example.com`,
            }),
          ),
        ),
      ]);
      expect2xx(same);
      expect2xx(distinct);

      await waitItems(
        dealId,
        { deposit: 'INVOICE_POSTED', design: 'INVOICE_POSTED', balance: 'INVOICE_POSTED' },
        'design and balance invoices posted',
      );
      await quiet();

      expect(stripeByItem(dealId)).toEqual({
        deposit: [`${dealId}|deposit`],
        design: [`${dealId}|design`],
        balance: [`${dealId}|balance`],
      });
      expect(await hubInvoiceKeys(dealId)).toEqual(
        [`${dealId}|balance`, `${dealId}|deposit`, `${dealId}|design`].sort(),
      );
      const { rows } = await db.query<{ provider_event_id: string; status: string }>(
        "SELECT provider_event_id, status FROM webhook_event WHERE provider = 'milestones' AND deal_id = $1",
        [dealId],
      );
      expect(rows.filter((r) => r.provider_event_id === sameId)).toHaveLength(1);
      expect(rows).toHaveLength(1 + N);
      const after = await getDeal(hub.url, dealId);
      // Every milestone item accepted: delivered, still one invoice per item.
      expect(after.stage).toBe('DELIVERED');
      for (const key of ['deposit', 'design', 'balance']) {
        expect(item(after, key).invoices).toHaveLength(1);
      }
      expect(
        after.timeline.filter(
          (t) => t.kind === 'item' && /^Design \(design\) accepted/.test(t.message),
        ),
      ).toHaveLength(1);
      expect(
        after.timeline.filter(
          (t) => t.kind === 'item' && /^残金 \(balance\) accepted/.test(t.message),
        ),
      ).toHaveLength(1);
      expect(stripeCustomersOf(dealId)).toHaveLength(1);
    });

    if (processes === 2) {
      it('the second worker process took part (it ran jobs)', () => {
        const jobsDone = worker!
          .output()
          .split('\n')
          .filter((l) => l.includes('"job finished"'));
        expect(jobsDone.length).toBeGreaterThan(0);
      });
    }
  });

  // ---- reordering and late events -------------------------------------------------------------

  it('a milestone accepted before the signature is billed once, after it — same result as in order', async () => {
    // Reordered: both milestones accepted while the contract is still out for signature.
    const early = await dealWithEnvelope('reordered');
    for (const itemKey of ['design', 'balance']) {
      const r = await milestone(hub.url, 'milestone.accepted', { dealId: early.dealId, itemKey });
      expect(r.status).toBe(200);
    }
    await quiet();
    const before = await getDeal(hub.url, early.dealId);
    expect(before.stage).toBe('CONTRACT_SENT');
    for (const key of ['deposit', 'design', 'balance']) {
      expect(item(before, key).billingStatus).toBe('NOT_READY');
      expect(item(before, key).invoices).toEqual([]);
    }
    expect(
      (before.items as unknown as { key: string; acceptedAt: string | null }[])
        .filter((i) => i.acceptedAt !== null)
        .map((i) => i.key),
    ).toEqual(['design', 'balance']);
    expect(await hubInvoiceKeys(early.dealId)).toEqual([]);
    expect(stripeByItem(early.dealId)).toEqual({});

    e2e.docusign.complete(early.envelopeId);
    await waitItems(
      early.dealId,
      { deposit: 'INVOICE_POSTED', design: 'INVOICE_POSTED', balance: 'INVOICE_POSTED' },
      'every item billed after the signature',
    );

    // In order: signature first, then the milestones.
    const inOrder = await dealWithEnvelope('in order');
    e2e.docusign.complete(inOrder.envelopeId);
    await waitItems(inOrder.dealId, { deposit: 'INVOICE_POSTED' }, 'deposit posted (in order)');
    for (const itemKey of ['design', 'balance']) {
      const r = await milestone(hub.url, 'milestone.accepted', { dealId: inOrder.dealId, itemKey });
      expect(r.status).toBe(200);
    }
    await waitItems(
      inOrder.dealId,
      { deposit: 'INVOICE_POSTED', design: 'INVOICE_POSTED', balance: 'INVOICE_POSTED' },
      'every item billed (in order)',
    );
    await quiet();

    const reordered = await outcome(early.dealId);
    expect(reordered).toEqual({
      stage: 'DELIVERED',
      items: ['deposit', 'design', 'balance'].map((key) => ({
        key,
        billingStatus: 'INVOICE_POSTED',
        hubInvoices: 1,
        stripeInvoices: 1,
      })),
    });
    expect(reordered).toEqual(await outcome(inOrder.dealId));
    expect(await hubInvoiceKeys(early.dealId)).toHaveLength(3);
  });

  it('a late envelope-declined after envelope-completed changes nothing; the refusal is on the timeline', async () => {
    const { dealId, envelopeId } = await dealWithEnvelope('late decline');
    e2e.docusign.complete(envelopeId);
    await waitItems(dealId, { deposit: 'INVOICE_POSTED' }, 'deposit posted');
    await quiet();
    const won = await getDeal(hub.url, dealId);
    expect(won.stage).toBe('WON');
    const { rows: completedRows } = await db.query<{ at: Date }>(
      "SELECT at FROM stage_trigger WHERE deal_id = $1 AND type = 'envelope.completed'",
      [dealId],
    );
    const completedAt = completedRows[0].at;

    const declined = (generated: Date, tick: number): DocusignConnectMessage => {
      const m = e2e.docusign.connectMessage(envelopeId, 'envelope-declined');
      const summary = m.data.envelopeSummary ?? {};
      return {
        ...m,
        generatedDateTime: docusignDateTime(generated, tick),
        data: {
          ...m.data,
          envelopeSummary: {
            ...summary,
            status: 'declined',
            declinedDateTime: docusignDateTime(generated),
            declinedReason: 'The signer changed their mind',
          },
        },
      };
    };

    // 1. Declined after the signature (a later fact): refused, with the reason on the timeline.
    expect((await postDocusign(declined(new Date(), 1))).status).toBe(200);
    // 2. Declined "before" the signature but delivered late: the fold puts it in its place in
    //    history (CONTRACT_SENT → LOST → WON by the signature): the result is the same.
    expect((await postDocusign(declined(new Date(completedAt.getTime() - 1), 2))).status).toBe(200);
    await quiet();

    const after = await getDeal(hub.url, dealId);
    expect(after.stage).toBe('WON');
    expect(after.contract?.status).toBe('COMPLETED');
    expect(after.timeline).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          kind: 'refused',
          message: expect.stringContaining(
            'envelope.declined refused: the deal is WON: an envelope declined after signing does not undo it',
          ),
        }),
      ]),
    );
    const transitions = (d: DealDetail) =>
      d.timeline.filter((t) => t.kind === 'transition').map((t) => t.message);
    expect(transitions(after)).toEqual(transitions(won));
    expect(transitions(after).some((m) => m.includes('LOST'))).toBe(false);
    expect(stripeByItem(dealId)).toEqual({ deposit: [`${dealId}|deposit`] });
    expect(item(after, 'deposit').billingStatus).toBe('INVOICE_POSTED');
  });
});
