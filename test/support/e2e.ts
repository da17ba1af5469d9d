import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { DocusignSim } from '../../src/simulator/provider-sim/docusign.sim';
import {
  DocusignOAuthServer,
  generateDocusignKeyPair,
  startDocusignOAuth,
} from '../../src/simulator/provider-sim/docusign-oauth';
import { HubspotSim } from '../../src/simulator/provider-sim/hubspot.sim';
import { ProviderSimulator } from '../../src/simulator/provider-sim/simulator';
import { send, standardDelivery } from '../../src/simulator/signed-delivery';
import { RunningHub, freePort, startHub, waitFor } from './hub';
import { TEST_SECRETS } from './test-env';

export const E2E = {
  stripeKey: 'sk_test_closeloop_e2e',
  hubspotToken: 'pat-e2e-token',
  docusign: {
    integrationKey: '2f6a3c1e-0000-4000-8000-00000000e2e0',
    userId: '5e6f7a8b-0000-4000-8000-00000000e2e1',
    accountId: '1a2b3c4d-0000-4000-8000-00000000e2e2',
    templateId: 'a1b2c3d4-0000-4000-8000-0000000000aa',
  },
};

export interface E2E {
  sim: ProviderSimulator;
  hubspot: HubspotSim;
  docusign: DocusignSim;
  oauth: DocusignOAuthServer;
  /** Environment that points a hub at the simulator (merge it into startHub's env). */
  env: Record<string, string>;
  hubUrl: string;
  port: number;
  close(): Promise<void>;
}

/**
 * The provider simulator (Stripe, HubSpot, DocuSign REST + OAuth over TLS) wired to a hub port:
 * the hub under test is the production build speaking the providers' real wire formats.
 */
export async function startProviders(): Promise<E2E> {
  const port = await freePort();
  const hubUrl = `http://127.0.0.1:${port}`;
  const hubspot = new HubspotSim({ accessToken: E2E.hubspotToken });
  const docusign = new DocusignSim({
    accountId: E2E.docusign.accountId,
    userId: E2E.docusign.userId,
  });
  docusign.addTemplate(E2E.docusign.templateId, ['signer']);
  const sim = await ProviderSimulator.start({ port: 0, modules: [hubspot, docusign] });
  const keys = generateDocusignKeyPair();
  const oauth = await startDocusignOAuth({
    integrationKey: E2E.docusign.integrationKey,
    userId: E2E.docusign.userId,
    accountId: E2E.docusign.accountId,
    publicKeyPem: keys.publicKeyPem,
    baseUri: sim.url,
    certDir: mkdtempSync(path.join(tmpdir(), 'closeloop-e2e-')),
    tokens: docusign,
  });
  sim.setTarget({
    hubUrl,
    publicBaseUrl: 'https://hub.example.test',
    stripeWebhookSecret: TEST_SECRETS.STRIPE_WEBHOOK_SECRET,
    hubspotClientSecret: TEST_SECRETS.HUBSPOT_CLIENT_SECRET,
    docusignHmacKeys: TEST_SECRETS.DOCUSIGN_CONNECT_HMAC_KEYS.split(','),
  });
  const env = {
    PORT: String(port),
    STRIPE_SECRET_KEY: E2E.stripeKey,
    STRIPE_API_BASE: sim.url,
    HUBSPOT_ACCESS_TOKEN: E2E.hubspotToken,
    HUBSPOT_API_BASE: sim.url,
    DOCUSIGN_INTEGRATION_KEY: E2E.docusign.integrationKey,
    DOCUSIGN_USER_ID: E2E.docusign.userId,
    DOCUSIGN_ACCOUNT_ID: E2E.docusign.accountId,
    DOCUSIGN_TEMPLATE_ID: E2E.docusign.templateId,
    DOCUSIGN_PRIVATE_KEY: keys.privateKeyPem,
    DOCUSIGN_API_BASE: `${sim.url}/restapi`,
    DOCUSIGN_OAUTH_BASE: oauth.host,
    NODE_EXTRA_CA_CERTS: oauth.caPath,
    PROVIDER_TIMEOUT_MS: '3000',
  };
  return {
    sim,
    hubspot,
    docusign,
    oauth,
    env,
    hubUrl,
    port,
    async close() {
      await sim.close();
      await oauth.close();
    },
  };
}

/** startHub on the port the simulator sends its webhooks to. */
export function startE2EHub(
  e2e: E2E,
  env: Record<string, string | undefined> = {},
): Promise<RunningHub> {
  return startHub({ ...e2e.env, ...env });
}

export const admin = { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` };

export async function getDeal(hubUrl: string, dealId: string): Promise<DealDetail> {
  const res = await fetch(`${hubUrl}/api/deals/${dealId}`, { headers: admin });
  if (!res.ok) throw new Error(`GET deal ${dealId}: ${res.status} ${await res.text()}`);
  return (await res.json()) as DealDetail;
}

export interface DealDetail {
  id: string;
  stage: string;
  crmDealId: string | null;
  items: {
    key: string;
    billingStatus: string;
    invoices: { billingKey: string; state: string; stripeInvoiceId: string | null }[];
  }[];
  timeline: { kind: string; message: string; cause: string }[];
  contract: { envelopeId: string | null; status: string } | null;
}

/** Waits until the hub has a deal for a HubSpot deal id, and returns its hub id. */
export async function dealIdForCrm(
  db: { query: (q: string, v: unknown[]) => Promise<{ rows: { id: string }[] }> },
  crmDealId: string,
): Promise<string> {
  return waitFor(
    async () =>
      (await db.query('SELECT id FROM deal WHERE crm_deal_id = $1', [crmDealId])).rows[0]?.id,
    { what: `hub deal for HubSpot deal ${crmDealId}` },
  );
}

/** The CONTRACT §4 example billing plan. */
export const CONTRACT_PLAN = {
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
      expectedInvoiceDate: '2026-12-15',
      acceptanceDays: 5,
      silentApproval: true,
    },
    { key: 'balance', label: '残金', amount: 120000, trigger: 'milestone.accepted' },
  ],
};

/** A signed milestone-webhook delivery (Standard Webhooks) to the hub. */
export function milestone(
  hubUrl: string,
  type: string,
  data: Record<string, unknown>,
  id = `msg_${randomUUID()}`,
) {
  return send(
    hubUrl,
    standardDelivery(
      '/webhooks/milestones',
      { type, data },
      { secret: TEST_SECRETS.MILESTONE_WEBHOOK_SECRET, id },
    ),
  );
}
