import { Queue } from 'bullmq';
import { Pool } from 'pg';

import {
  CONTRACT_PLAN,
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
import { TEST_REDIS_URL } from '../support/test-env';

describe('replay previews: what a replay would bill or report, before anything is sent', () => {
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
    hub = await startE2EHub(e2e);
  });

  afterAll(async () => {
    await hub?.stop();
    await e2e?.close();
    await Promise.all(queues.map((q) => q.close()));
    await db?.end();
  });

  const get = async (path: string) => {
    const res = await fetch(`${hub.url}${path}`, { headers: admin });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  /** What a preview must leave untouched (the CRM write-back may add its own events meanwhile). */
  const snapshot = async () =>
    (
      await db.query(
        `SELECT (SELECT count(*) FROM invoice)::int AS invoices,
                (SELECT count(*) FROM billing_item WHERE accepted_at IS NOT NULL)::int AS accepted,
                (SELECT count(*) FROM timeline_entry WHERE kind IN ('billing', 'item', 'transition'))::int AS timeline,
                (SELECT count(*) FROM outbox WHERE job_name = 'BillingInvoiceIssue')::int AS billing_jobs,
                (SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM webhook_event
                  WHERE provider IN ('milestones', 'docusign')) AS events,
                (SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM dead_letter) AS dead_letters`,
      )
    ).rows[0] as Record<string, unknown>;

  it('a dead-lettered milestone: the preview names the invoice it would bill, changes nothing; the replay bills it', async () => {
    const { dealId: crmDealId } = e2e.hubspot.createDeal({
      properties: {
        dealname: 'Preview deal',
        amount: '400000',
        deal_currency_code: 'JPY',
        dealstage: 'contractsent',
        closeloop_billing_plan: JSON.stringify(CONTRACT_PLAN),
      },
      contact: { email: 'preview@example.co.jp' },
    });
    const dealId = await dealIdForCrm(db, crmDealId);
    // The acceptance names a deal the hub cannot place yet (a typo in the CRM id): dead letter.
    await milestone(hub.url, 'milestone.accepted', {
      crmDealId: 'no-such-deal',
      itemKey: 'design',
    });
    const dead = await waitFor(
      async () =>
        (
          await db.query<{ id: string; event_id: string }>(
            "SELECT id, event_id FROM dead_letter WHERE job_name = 'WebhookEventProcess'",
          )
        ).rows[0],
      { what: 'the dead letter' },
    );
    // As it stands, a replay would fail again, and the preview says why.
    const failing = await get(`/api/dead-letters/${dead.id}/replay-preview`);
    expect(failing.body).toMatchObject({
      effects: { outcome: 'FAILED', error: expect.stringContaining('no-such-deal') as unknown },
      summary: [expect.stringMatching(/^would fail again: no deal with CRM id no-such-deal/)],
    });
    // Fixed at the source: the event's payload now names the right deal (as an operator would
    // after correcting the sender), then the deal is signed.
    await db.query(
      `UPDATE webhook_event SET payload = jsonb_set(payload, '{data,crmDealId}', to_jsonb($1::text))
       WHERE id = $2`,
      [crmDealId, dead.event_id],
    );
    const envelope = await waitFor(() => e2e.docusign.envelopes()[0], { what: 'envelope' });
    e2e.docusign.complete(envelope.envelopeId);
    await waitFor(async () => (await getDeal(hub.url, dealId)).stage === 'WON', { what: 'WON' });
    await quiesce(e2e, db, queues);

    const before = await snapshot();
    const preview = await get(`/api/dead-letters/${dead.id}/replay-preview`);
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({
      basis: 'event',
      eventId: dead.event_id,
      deadLetterId: dead.id,
      effects: {
        outcome: 'SUCCEEDED',
        dealId,
        invoices: [{ billingKey: `${dealId}|design`, amount: 120000, taxAmount: 12000 }],
        jobs: expect.arrayContaining([
          expect.objectContaining({ name: 'BillingInvoiceIssue' }),
        ]) as unknown,
      },
    });
    expect((preview.body.summary as string[]).join('\n')).toMatch(/invoice due for Design/);
    // Nothing was written, queued or sent.
    expect(await snapshot()).toEqual(before);
    expect(e2e.sim.stripe.invoicesByMetadata('closeloop_deal_id', dealId)).toHaveLength(1);

    const replay = await fetch(`${hub.url}/api/dead-letters/${dead.id}/replay`, {
      method: 'POST',
      headers: admin,
    });
    expect(replay.status).toBe(202);
    await waitFor(
      async () =>
        (await getDeal(hub.url, dealId)).items.find((i) => i.key === 'design')?.billingStatus ===
        'INVOICE_POSTED',
      { what: 'the design invoice', timeoutMs: 20_000 },
    );
    expect(e2e.sim.stripe.invoicesByMetadata('closeloop_deal_id', dealId)).toHaveLength(2);
  });

  it('a processed event: the preview shows a replay would change nothing', async () => {
    const { rows } = await db.query<{ id: string }>(
      "SELECT id FROM webhook_event WHERE provider = 'docusign' AND type = 'envelope-completed' LIMIT 1",
    );
    const before = await snapshot();
    const preview = await get(`/api/events/${rows[0].id}/replay-preview`);
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({
      basis: 'event',
      effects: { outcome: 'SUCCEEDED', invoices: [], reports: [], jobs: [] },
    });
    expect(await snapshot()).toEqual(before);
  });

  it('a billing dead letter is previewed from its invoice row; unknown ids are 404', async () => {
    await db.query(
      `INSERT INTO dead_letter (id, queue, job_name, job_id, data, reason, error, attempts)
       SELECT 'dl_preview_bill', 'billing', 'BillingInvoiceIssue', 'bill|x',
              jsonb_build_object('billingKey', billing_key, 'dealId', deal_id, 'correlationId', 'c'),
              'PERMANENT', 'stripe 400', 1
       FROM invoice ORDER BY created_at LIMIT 1`,
    );
    const preview = await get('/api/dead-letters/dl_preview_bill/replay-preview');
    expect(preview.body).toMatchObject({ basis: 'job', jobName: 'BillingInvoiceIssue' });
    expect((preview.body.summary as string[])[0]).toMatch(/^nothing: invoice .* is already POSTED/);
    expect((await get('/api/dead-letters/dl_nope/replay-preview')).status).toBe(404);
    expect((await get('/api/events/evt_nope/replay-preview')).status).toBe(404);
  });
});
