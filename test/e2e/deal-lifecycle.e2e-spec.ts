import { Pool } from 'pg';

import {
  E2E,
  admin,
  dealIdForCrm,
  getDeal,
  startE2EHub,
  startProviders,
  CONTRACT_PLAN,
  milestone,
} from '../support/e2e';
import { RunningHub, flushTestRedis, testDb, truncateAll, waitFor } from '../support/hub';

describe('a deal from HubSpot to paid Stripe invoices (CONTRACT §4 happy path)', () => {
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

  it('signs, bills each item exactly once, writes back to HubSpot and closes when paid', async () => {
    const { dealId: crmDealId } = e2e.hubspot.createDeal({
      properties: {
        dealname: 'Website renewal',
        amount: '400000',
        deal_currency_code: 'JPY',
        pipeline: 'default',
        dealstage: 'appointmentscheduled',
        closeloop_billing_plan: JSON.stringify(CONTRACT_PLAN),
      },
      contact: { email: 'tanaka@example.co.jp', firstname: 'Taro', lastname: 'Tanaka' },
      company: { name: 'Example K.K.' },
    });
    const dealId = await dealIdForCrm(db, crmDealId);
    await waitFor(async () => (await getDeal(hub.url, dealId)).stage === 'APPOINTMENT', {
      what: 'APPOINTMENT',
    });

    e2e.hubspot.setStage(crmDealId, 'contractsent');
    const envelope = await waitFor(() => e2e.docusign.envelopes()[0], { what: 'envelope' });
    expect(envelope.customFields).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'closeloop_deal_id', value: dealId }),
      ]),
    );
    expect(envelope.textTabs).toMatchObject({
      deal_name: 'Website renewal',
      customer_name: 'Example K.K.',
      amount_ex_tax: '¥400,000',
      item_1_label: '着手金',
      item_1_amount: '¥120,000',
    });
    expect(envelope.roles[0]).toMatchObject({ email: 'tanaka@example.co.jp', roleName: 'signer' });

    e2e.docusign.complete(envelope.envelopeId);
    await waitFor(
      async () =>
        (await getDeal(hub.url, dealId)).items.find((i) => i.key === 'deposit')?.billingStatus ===
        'INVOICE_POSTED',
      { what: 'deposit invoice posted', timeoutMs: 20_000 },
    );
    expect((await getDeal(hub.url, dealId)).stage).toBe('WON');

    await milestone(hub.url, 'milestone.accepted', {
      dealId,
      itemKey: 'design',
      acceptedBy: 'client@example.com',
    });
    await milestone(hub.url, 'milestone.accepted', { crmDealId, itemKey: 'balance' });
    const delivered = await waitFor(
      async () => {
        const d = await getDeal(hub.url, dealId);
        return d.items.every((i) => i.billingStatus === 'INVOICE_POSTED') && d.stage === 'DELIVERED'
          ? d
          : undefined;
      },
      { what: 'all invoices posted and the deal delivered', timeoutMs: 20_000 },
    );
    expect(delivered!.items.map((i) => i.key)).toEqual(['deposit', 'design', 'balance']);

    const invoices = e2e.sim.stripe.invoicesByMetadata('closeloop_deal_id', dealId);
    expect(invoices).toHaveLength(3);
    const byItem = Object.fromEntries(invoices.map((i) => [i.metadata.closeloop_item_key, i]));
    expect(byItem.deposit).toMatchObject({
      currency: 'jpy',
      subtotal: 120000,
      total: 132000,
      status: 'open',
      collection_method: 'send_invoice',
    });
    expect(byItem.balance).toMatchObject({ subtotal: 120000, total: 132000 });
    expect(byItem.deposit.metadata).toEqual({
      closeloop_deal_id: dealId,
      closeloop_item_key: 'deposit',
      closeloop_billing_key: `${dealId}|deposit`,
    });
    expect(e2e.sim.stripe.customers()).toHaveLength(1);

    for (const inv of invoices) e2e.sim.stripe.payInvoice(inv.id);
    await waitFor(async () => (await getDeal(hub.url, dealId)).stage === 'CLOSED', {
      what: 'CLOSED after payment',
      timeoutMs: 20_000,
    });
    const closed = await getDeal(hub.url, dealId);
    expect(closed.items.map((i) => i.billingStatus)).toEqual(['PAID', 'PAID', 'PAID']);

    await waitFor(
      () => e2e.hubspot.deal(crmDealId)?.properties.closeloop_paid_amount === '396000',
      { what: 'HubSpot paid amount written back', timeoutMs: 20_000 },
    );
    const crm = e2e.hubspot.deal(crmDealId)!.properties;
    expect(crm).toMatchObject({
      dealstage: 'closedwon',
      closeloop_invoiced_amount: '360000',
      closeloop_sync_status: 'in_sync',
    });
    const notes = (await waitFor(
      () => {
        const bodies = e2e.hubspot.notesFor(crmDealId).map((n) => String(n.body));
        return bodies.filter((b) => b.includes('paid')).length >= 3 ? bodies : undefined;
      },
      { what: 'three payment notes' },
    ))!;
    expect(notes.filter((b) => b.includes('WON'))).toHaveLength(1);
    expect(notes.filter((b) => b.includes('paid'))).toHaveLength(3);

    // The timeline explains every step.
    const kinds = closed.timeline.map((t) => t.kind);
    expect(kinds).toEqual(expect.arrayContaining(['transition', 'contract', 'billing', 'plan']));
    expect(closed.timeline.filter((t) => t.kind === 'transition').map((t) => t.message)).toEqual([
      'REFERRED → APPOINTMENT',
      'APPOINTMENT → CONTRACT_SENT',
      'CONTRACT_SENT → WON',
      'WON → DELIVERED (delivery.completed)',
      'DELIVERED → CLOSED (delivery.completed, invoices.settled)',
    ]);
    // And every job run for it: its events, its three invoices, the envelope and CRM write-back.
    const attempts = (
      closed as unknown as { jobAttempts: { jobName: string; jobId: string; outcome: string }[] }
    ).jobAttempts;
    const issued = attempts.filter(
      (a) => a.jobName === 'BillingInvoiceIssue' && a.outcome === 'SUCCEEDED',
    );
    expect(issued.map((a) => a.jobId).sort()).toEqual(
      ['balance', 'deposit', 'design'].map((k) => `bill|${dealId}|${k}`).sort(),
    );
    expect(attempts.map((a) => a.jobName)).toEqual(
      expect.arrayContaining(['WebhookEventBatch', 'ContractEnvelopeCreate', 'CrmDealSync']),
    );
    void admin;
  });
});
