/**
 * The provider simulator as the demo and the billing benchmark run it (a demo/bench aid, never a
 * code path of the hub): Stripe, HubSpot and DocuSign REST in this process on one port, the
 * DocuSign JWT-grant OAuth stand-in over TLS (its CA written to `certDir`), Partner Center with its
 * own CA (the root written to a file the hub trusts through PARTNER_CENTER_CA_FILE), signed
 * webhooks sent to the hub, and the environment that points a hub child process at all of it. The end-to-end
 * tests start it the same way (test/support/e2e.ts).
 */
import { DocusignSim } from '../simulator/provider-sim/docusign.sim';
import {
  DocusignOAuthServer,
  generateDocusignKeyPair,
  startDocusignOAuth,
} from '../simulator/provider-sim/docusign-oauth';
import { HubspotSim } from '../simulator/provider-sim/hubspot.sim';
import { PartnerCenterSim } from '../simulator/provider-sim/partner-center.sim';
import { DEFAULT_REPORT_PATH, ReportReceiver } from '../simulator/provider-sim/report-receiver';
import { ProviderSimulator } from '../simulator/provider-sim/simulator';
import { StripeSimOptions } from '../simulator/provider-sim/stripe.sim';
import { CliError, portInUse } from './cli-support';
import { PLAN_EXAMPLE } from '../../src/admin/deals.openapi';

export const SIM_IDS = {
  stripeKey: 'sk_test_closeloop_local_sim',
  hubspotToken: 'pat-closeloop-local-sim',
  docusign: {
    integrationKey: '2f6a3c1e-0000-4000-8000-00000000d3e0',
    userId: '5e6f7a8b-0000-4000-8000-00000000d3e1',
    accountId: '1a2b3c4d-0000-4000-8000-00000000d3e2',
    templateId: 'a1b2c3d4-0000-4000-8000-0000000000d3',
  },
};

/** The CONTRACT §4 example billing plan (the admin API documents the same one). */
export const SAMPLE_PLAN = PLAN_EXAMPLE;
export interface RunningSim {
  sim: ProviderSimulator;
  hubspot: HubspotSim;
  docusign: DocusignSim;
  /** Partner Center referrals API + signed referral webhooks. */
  partnerCenter: PartnerCenterSim;
  /** Receiver of the hub's generic signed reports (REFERRAL_REPORT_WEBHOOK_URL). */
  reports: ReportReceiver;
  oauth?: DocusignOAuthServer;
  /** Environment pointing a hub at the simulator (merge into the hub's env). */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** The first free port among `first`, `first + 1`, … (`tries` of them). */
export async function firstFreePort(first: number, tries = 20): Promise<number> {
  for (let p = first; p < first + tries; p++) {
    if (!(await portInUse(p, '127.0.0.1'))) return p;
  }
  throw new CliError(`no free port in ${first}–${first + tries - 1}`);
}

export async function startSimulator(opts: {
  port: number;
  /** Where the simulator sends webhooks (the hub's door) and the URL HubSpot signs over. */
  hubUrl: string;
  publicBaseUrl: string;
  stripeWebhookSecret: string;
  hubspotClientSecret?: string;
  docusignHmacKeys: string[];
  /** `whsec_…` the hub signs generic reports with (REFERRAL_REPORT_WEBHOOK_SECRET). */
  reportWebhookSecret: string;
  /**
   * With a directory: the DocuSign OAuth stand-in (TLS, CA written here) and the DocuSign env; the
   * Partner Center simulator's CA file goes here too (else into a temporary directory).
   */
  docusignCertDir?: string;
  stripe?: StripeSimOptions;
  logCapacity?: number;
  /**
   * HubSpot deal ids start at 53000000001 in every new simulator; a hub database that outlived an
   * earlier simulator already knows those ids. Deal ids up to this one are used up (created and
   * deleted before webhooks are switched on, so the hub never hears of them).
   */
  skipHubspotDealIdsUpTo?: number;
}): Promise<RunningSim> {
  const hubspot = new HubspotSim({ accessToken: SIM_IDS.hubspotToken });
  const docusign = new DocusignSim({
    accountId: SIM_IDS.docusign.accountId,
    userId: SIM_IDS.docusign.userId,
  });
  docusign.addTemplate(SIM_IDS.docusign.templateId, ['signer']);
  const partnerCenter = new PartnerCenterSim({
    webhookRetryDelayMs: 200,
    certDir: opts.docusignCertDir,
  });
  const reports = new ReportReceiver({ secret: opts.reportWebhookSecret });
  const sim = await ProviderSimulator.start({
    port: opts.port,
    modules: [hubspot, docusign, partnerCenter, reports],
    stripe: opts.stripe,
    logCapacity: opts.logCapacity,
  });
  let oauth: DocusignOAuthServer | undefined;
  const env: Record<string, string> = {
    STRIPE_SECRET_KEY: SIM_IDS.stripeKey,
    STRIPE_API_BASE: sim.url,
    HUBSPOT_ACCESS_TOKEN: SIM_IDS.hubspotToken,
    HUBSPOT_API_BASE: sim.url,
    ...partnerCenter.hubEnv(),
    REFERRAL_REPORT_WEBHOOK_URL: `${sim.url}${DEFAULT_REPORT_PATH}`,
    REFERRAL_REPORT_WEBHOOK_SECRET: opts.reportWebhookSecret,
  };
  try {
    if (opts.docusignCertDir) {
      const keys = generateDocusignKeyPair();
      oauth = await startDocusignOAuth({
        integrationKey: SIM_IDS.docusign.integrationKey,
        userId: SIM_IDS.docusign.userId,
        accountId: SIM_IDS.docusign.accountId,
        publicKeyPem: keys.publicKeyPem,
        baseUri: sim.url,
        certDir: opts.docusignCertDir,
        tokens: docusign,
        userName: 'closeloop demo',
        email: 'demo@closeloop.example',
        accountName: 'closeloop demo agency',
      });
      Object.assign(env, {
        DOCUSIGN_INTEGRATION_KEY: SIM_IDS.docusign.integrationKey,
        DOCUSIGN_USER_ID: SIM_IDS.docusign.userId,
        DOCUSIGN_ACCOUNT_ID: SIM_IDS.docusign.accountId,
        DOCUSIGN_TEMPLATE_ID: SIM_IDS.docusign.templateId,
        DOCUSIGN_PRIVATE_KEY: keys.privateKeyPem,
        DOCUSIGN_API_BASE: `${sim.url}/restapi`,
        DOCUSIGN_OAUTH_BASE: oauth.host,
        NODE_EXTRA_CA_CERTS: oauth.caPath,
      });
    }
  } catch (err) {
    await sim.close();
    throw err;
  }
  for (let used = 0; used < (opts.skipHubspotDealIdsUpTo ?? 0);) {
    const { dealId } = hubspot.createDeal({ properties: { dealname: 'unused id' } });
    hubspot.deleteDeal(dealId);
    used = Number(dealId);
  }
  sim.setTarget({
    hubUrl: opts.hubUrl,
    publicBaseUrl: opts.publicBaseUrl,
    stripeWebhookSecret: opts.stripeWebhookSecret,
    hubspotClientSecret: opts.hubspotClientSecret,
    docusignHmacKeys: opts.docusignHmacKeys,
  });
  return {
    sim,
    hubspot,
    docusign,
    partnerCenter,
    reports,
    oauth,
    env,
    async close() {
      await Promise.allSettled([sim.close(), oauth?.close()]);
    },
  };
}
