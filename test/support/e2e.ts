import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Queue } from 'bullmq';
import { Pool } from 'pg';

import { SAMPLE_PLAN, startSimulator } from '../../tools/cli/sim-support';
import { DocusignSim } from '../../tools/simulator/provider-sim/docusign.sim';
import { HubspotSim } from '../../tools/simulator/provider-sim/hubspot.sim';
import { PartnerCenterSim } from '../../tools/simulator/provider-sim/partner-center.sim';
import { ReportReceiver } from '../../tools/simulator/provider-sim/report-receiver';
import { ProviderSimulator } from '../../tools/simulator/provider-sim/simulator';
import { send, standardDelivery } from '../../tools/simulator/signed-delivery';
import { RunningHub, freePort, startHub, waitFor } from './hub';
import { TEST_REPORT_WEBHOOK_SECRET, TEST_SECRETS } from './test-env';

export interface E2E {
  sim: ProviderSimulator;
  hubspot: HubspotSim;
  docusign: DocusignSim;
  partnerCenter: PartnerCenterSim;
  reports: ReportReceiver;
  /** Environment that points a hub at the simulator (merge it into startHub's env). */
  env: Record<string, string>;
  hubUrl: string;
  port: number;
  close(): Promise<void>;
}

/**
 * The provider simulator (Stripe, HubSpot, DocuSign REST + OAuth over TLS) wired to a hub port,
 * exactly as the demo and the benchmark run it (tools/cli/sim-support.ts): the hub under test is
 * the production build speaking the providers' real wire formats.
 */
export async function startProviders(): Promise<E2E> {
  const port = await freePort();
  const hubUrl = `http://127.0.0.1:${port}`;
  const running = await startSimulator({
    port: 0,
    hubUrl,
    publicBaseUrl: 'https://hub.example.test',
    stripeWebhookSecret: TEST_SECRETS.STRIPE_WEBHOOK_SECRET,
    hubspotClientSecret: TEST_SECRETS.HUBSPOT_CLIENT_SECRET,
    docusignHmacKeys: TEST_SECRETS.DOCUSIGN_CONNECT_HMAC_KEYS.split(','),
    reportWebhookSecret: TEST_REPORT_WEBHOOK_SECRET,
    docusignCertDir: mkdtempSync(path.join(tmpdir(), 'closeloop-e2e-')),
  });
  return {
    sim: running.sim,
    hubspot: running.hubspot,
    docusign: running.docusign,
    partnerCenter: running.partnerCenter,
    reports: running.reports,
    env: { ...running.env, PORT: String(port), PROVIDER_TIMEOUT_MS: '3000' },
    hubUrl,
    port,
    close: () => running.close(),
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
export const CONTRACT_PLAN = SAMPLE_PLAN;

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

/**
 * Waits until nothing can change any more: no webhook in flight from the simulator, no event
 * waiting to be processed, no outbox row, no BullMQ job waiting/active/delayed — three checks in
 * a row.
 */
export async function quiesce(
  e2e: Pick<E2E, 'sim' | 'docusign'>,
  db: Pool,
  queues: Queue[],
): Promise<void> {
  let calm = 0;
  let state = '';
  await waitFor(
    async () => {
      await e2e.sim.stripe.webhooksIdle();
      await e2e.docusign.webhooksIdle();
      const open = await db.query<{ events: number; outbox: number }>(
        "SELECT (SELECT count(*) FROM webhook_event WHERE status IN ('RECEIVED','FAILED'))::int AS events, (SELECT count(*) FROM outbox)::int AS outbox",
      );
      const counts = await Promise.all(
        queues.map((q) =>
          q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children'),
        ),
      );
      const jobs = counts.reduce((s, c) => s + Object.values(c).reduce((a, b) => a + b, 0), 0);
      const idle = open.rows[0].events === 0 && open.rows[0].outbox === 0 && jobs === 0;
      state = `open events ${open.rows[0].events}, outbox rows ${open.rows[0].outbox}, jobs ${JSON.stringify(counts)}`;
      calm = idle ? calm + 1 : 0;
      return calm >= 3;
    },
    { what: 'the hub to go quiet', timeoutMs: 30_000, intervalMs: 100 },
  ).catch(async (err: Error) => {
    // What kept it busy: the active jobs and what the database sessions were doing.
    const active = await Promise.all(queues.map((q) => q.getJobs(['active'])));
    const jobs = active.flat().map((j) => `${j.name} ${j.id} ${JSON.stringify(j.data)}`);
    const sessions = await db
      .query(
        `SELECT pid, state, wait_event_type, wait_event, now() - xact_start AS xact_age,
                left(query, 160) AS query
           FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`,
      )
      .then((r) => r.rows.map((row) => JSON.stringify(row)))
      .catch((e: Error) => [e.message]);
    throw new Error(
      `${err.message} (last seen: ${state})\nactive jobs:\n${jobs.join('\n')}\nsessions:\n${sessions.join('\n')}`,
    );
  });
}
