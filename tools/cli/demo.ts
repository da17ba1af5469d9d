/**
 * `npm run demo`: the README's first quick-start command (CONTRACT §1).
 *
 * Migrates the database, generates local secrets (kept in .demo/secrets.json so reruns reuse them),
 * starts the provider simulator (Stripe, HubSpot, DocuSign and Partner Center REST plus the report
 * receiver on port 12111 or the next free one, SIM_PORT overrides) and the DocuSign OAuth stand-in
 * over TLS (its CA in .demo/), starts the hub (ROLE=all) as a child process logging to .demo/hub.log
 * with every provider pointed at the simulator, and then drives one sample deal end to end through
 * the simulator, as the user's tools would: HubSpot deal → appointment → contract sent (envelope) →
 * signed → deposit invoice → milestones accepted → invoices → paid in Stripe → CLOSED and written
 * back to HubSpot. Each step is printed as it happens with the hub's view of the deal; a forged
 * delivery (401) and a duplicate (200, nothing new) are shown too. Then referrals (demo-referral.ts):
 * a Partner Center referral through its whole life with each status PATCHed back to Partner Center,
 * a PRONI アイミツ referral whose reports become manual tasks, and a partner-network referral whose
 * reports arrive signed at the simulator's report receiver. Then it prints the URLs and keeps
 * serving until Ctrl-C (or exits 0 with DEMO_EXIT_AFTER=1, for a smoke run).
 *
 * Re-runnable on the same database: every run makes new deals and referrals (fresh HubSpot, hub,
 * envelope, Stripe and referral ids). The simulator lives in this process; the hub is always the
 * production build (dist/src/main.js) and talks to it over HTTP.
 *
 * Environment: DATABASE_URL, REDIS_URL and PORT as for the hub (CONTRACT §2), SIM_PORT,
 * DEMO_EXIT_AFTER; LOG_LEVEL and BILLING_TIMEZONE are passed through. Provider credentials are
 * always the demo's own.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { Redis } from 'ioredis';
import { Pool } from 'pg';

import { Delivery, send, standardDelivery, stripeDelivery } from '../simulator/signed-delivery';
import {
  CliError,
  DEFAULT_DATABASE_URL,
  DEFAULT_REDIS_URL,
  DEMO_DIR,
  HubProcess,
  migrate,
  portInUse,
  redactUrl,
  sleep,
  spawnHub,
  tail,
  waitForHttp,
} from './cli-support';
import {
  AdminClient,
  DealView,
  EventView,
  clock,
  hubView,
  timelineText,
} from './demo-admin-client';
import { runReferralDemo } from './demo-referral';
import { RunningSim, SAMPLE_PLAN, firstFreePort, startSimulator } from './sim-support';

const SECRETS_FILE = path.join(DEMO_DIR, 'secrets.json');
const HUB_LOG = path.join(DEMO_DIR, 'hub.log');
const SIM_PORT = 12111;
const rel = (file: string) => path.relative(process.cwd(), file) || '.';

interface DemoSecrets {
  adminToken: string;
  docusignHmacKey: string;
  hubspotClientSecret: string;
  stripeWebhookSecret: string;
  milestoneWebhookSecret: string;
  referralWebhookSecret: string;
  referralReportWebhookSecret: string;
}

/** Loads .demo/secrets.json, filling in (and saving) whatever is missing. */
function loadSecrets(): { secrets: DemoSecrets; created: boolean } {
  let saved: Partial<DemoSecrets> = {};
  try {
    saved = JSON.parse(fs.readFileSync(SECRETS_FILE, 'utf8')) as Partial<DemoSecrets>;
  } catch {
    // first run (or unreadable file): generate everything
  }
  const standardSecret = () => `whsec_${randomBytes(24).toString('base64')}`;
  const secrets: DemoSecrets = {
    adminToken: saved.adminToken ?? `demo_admin_${randomBytes(24).toString('base64url')}`,
    docusignHmacKey: saved.docusignHmacKey ?? randomBytes(32).toString('base64'),
    hubspotClientSecret: saved.hubspotClientSecret ?? randomUUID(),
    stripeWebhookSecret: saved.stripeWebhookSecret ?? `whsec_${randomBytes(24).toString('hex')}`,
    milestoneWebhookSecret: saved.milestoneWebhookSecret ?? standardSecret(),
    referralWebhookSecret: saved.referralWebhookSecret ?? standardSecret(),
    referralReportWebhookSecret: saved.referralReportWebhookSecret ?? standardSecret(),
  };
  const created = JSON.stringify(saved) !== JSON.stringify(secrets);
  if (created) {
    fs.writeFileSync(SECRETS_FILE, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  }
  return { secrets, created };
}

async function checkRedis(url: string): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 3000,
  });
  let cause = '';
  redis.on('error', (err: Error) => (cause ||= err.message)); // the first error names the cause
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new CliError(
      `Redis is not reachable at ${redactUrl(url)} (${cause || (err as Error).message}). ` +
        'Start it (e.g. redis-server --daemonize yes) or set REDIS_URL.',
    );
  } finally {
    redis.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// The sample deal: a Japanese web agency's HubSpot deal (no referral) with the CONTRACT §4 plan.

const DEAL_NAME = 'Webサイト リニューアル — 株式会社サンプル';
const DEAL_AMOUNT = 400_000; // JPY has no minor unit: 400000 is ¥400,000
const CONTACT = { email: 'tanaka@sample.co.jp', firstname: '太郎', lastname: '田中' };
const COMPANY = { name: '株式会社サンプル', domain: 'sample.co.jp' };

const yen = (n: number) => `¥${n.toLocaleString('ja-JP')}`;

/** One line of the running story: `[10:00:01.234] what happened`. */
function say(line: string) {
  console.log(`[${clock()}] ${line}`);
}
/** The hub's side of it, on the next line. */
function hubSays(line: string) {
  console.log(`${' '.repeat(15)}└ hub: ${line}`);
}

/** Terminal columns of `s`: East Asian wide and fullwidth characters take two. */
function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    const wide =
      (c >= 0x1100 && c <= 0x115f) ||
      (c >= 0x2e80 && c <= 0xa4cf && c !== 0x303f) ||
      (c >= 0xac00 && c <= 0xd7a3) ||
      (c >= 0xf900 && c <= 0xfaff) ||
      (c >= 0xfe30 && c <= 0xfe4f) ||
      (c >= 0xff00 && c <= 0xff60) ||
      (c >= 0xffe0 && c <= 0xffe6) ||
      (c >= 0x20000 && c <= 0x3fffd);
    w += wide ? 2 : 1;
  }
  return w;
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) =>
    Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ''))),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i] - displayWidth(c))))
      .join('  ')
      .trimEnd();
  return ['  ' + line(headers), '  ' + line(widths.map((w) => '-'.repeat(w)))]
    .concat(rows.map((r) => '  ' + line(r)))
    .join('\n');
}

/** Hub deal ids of HubSpot's id range already known to this database (see skipHubspotDealIdsUpTo). */
async function highestSimHubspotDealId(databaseUrl: string): Promise<number> {
  const db = new Pool({ connectionString: databaseUrl, max: 1 });
  try {
    const { rows } = await db.query<{ max: string | null }>(
      `SELECT max(crm_deal_id::bigint)::text AS max FROM deal WHERE crm_deal_id ~ '^53[0-9]{9}$'`,
    );
    return Number(rows[0]?.max ?? 0);
  } finally {
    await db.end();
  }
}

/**
 * Drives one sample deal through the simulator exactly as the user's tools would (HubSpot UI,
 * the signer in DocuSign, the client accepting milestones, the customer paying in Stripe) and
 * prints each step with the hub's view of the deal.
 */
async function runSampleDeal(
  s: DemoSecrets,
  hubUrl: string,
  providers: RunningSim,
  admin: AdminClient,
) {
  const { sim, hubspot, docusign } = providers;
  const run = Date.now().toString(36);

  // 1. The deal is created in HubSpot (no referral) at appointmentscheduled.
  const { dealId: crmDealId } = hubspot.createDeal({
    properties: {
      dealname: DEAL_NAME,
      amount: String(DEAL_AMOUNT),
      deal_currency_code: 'JPY',
      pipeline: 'default',
      dealstage: 'appointmentscheduled',
      closeloop_billing_plan: JSON.stringify(SAMPLE_PLAN),
    },
    contact: CONTACT,
    company: COMPANY,
  });
  say(
    `HubSpot deal ${crmDealId} created: "${DEAL_NAME}", ${yen(DEAL_AMOUNT)}, appointmentscheduled, ` +
      `contact ${CONTACT.email}, company ${COMPANY.name}, closeloop_billing_plan = deposit 30 % / design 30 % / balance ${yen(120_000)}`,
  );
  const deadline = Date.now() + 30_000;
  let dealId: string | undefined;
  while (!dealId) {
    const list = await admin
      .get<{ items: { id: string }[] }>(`/api/deals?crmDealId=${crmDealId}`)
      .catch(() => ({ items: [] }));
    dealId = list.items[0]?.id;
    if (!dealId) {
      if (Date.now() > deadline) {
        throw new CliError(
          `the hub has no deal for HubSpot deal ${crmDealId} after 30 s; see ${rel(HUB_LOG)}`,
        );
      }
      await sleep(100);
    }
  }
  let deal = await admin.waitDeal(dealId, 'APPOINTMENT', (d) => d.stage === 'APPOINTMENT');
  say(`HubSpot deal ${crmDealId} → hub deal ${dealId}`);
  hubSays(hubView(deal));

  // 2. Contract sent: the hub creates the DocuSign envelope from the template.
  hubspot.setStage(crmDealId, 'contractsent');
  say(`HubSpot: deal ${crmDealId} moved to contractsent`);
  const envelope = await waitUntil(
    () =>
      docusign
        .envelopes()
        .find((e) =>
          e.customFields.some((f) => f.name === 'closeloop_deal_id' && f.value === dealId),
        ),
    'the DocuSign envelope',
  );
  deal = await admin.waitDeal(dealId, 'the contract SENT', (d) => d.contract?.status === 'SENT');
  say(
    `DocuSign: envelope ${envelope.envelopeId} sent to ${envelope.roles[0]?.email ?? '?'} ` +
      `("${envelope.emailSubject}", amount ${envelope.textTabs.amount_ex_tax ?? '?'})`,
  );
  hubSays(`${hubView(deal)} · contract ${deal.contract?.status}`);

  // 3. The customer signs: envelope-completed → WON → the deposit invoice.
  docusign.complete(envelope.envelopeId);
  say(`DocuSign: envelope ${envelope.envelopeId} completed (signed by ${CONTACT.email})`);
  deal = await admin.waitDeal(
    dealId,
    'the deposit invoice',
    (d) => d.items.find((i) => i.key === 'deposit')?.billingStatus === 'INVOICE_POSTED',
  );
  printInvoice(deal, 'deposit');
  hubSays(hubView(deal));

  // 4. Milestones accepted (signed Standard Webhooks deliveries, as the client's portal sends).
  const accepted = (itemKey: string, by: { dealId: string } | { crmDealId: string }, id: string) =>
    milestoneAccepted(s, itemKey, by, id, CONTACT.email);
  const design = accepted('design', { dealId }, `msg_demo_${run}_design`);
  const designRes = await send(hubUrl, design);
  say(
    `milestone.accepted for design sent (webhook-id ${design.headers['webhook-id']}) → HTTP ${designRes.status}`,
  );
  deal = await admin.waitDeal(
    dealId,
    'the design invoice',
    (d) => d.items.find((i) => i.key === 'design')?.billingStatus === 'INVOICE_POSTED',
  );
  printInvoice(deal, 'design');
  hubSays(hubView(deal));

  // The same delivery again: 2xx, nothing new.
  const dup = await send(hubUrl, design);
  const copies = (
    await admin.get<{ items: EventView[] }>('/api/events?provider=milestones&limit=200')
  ).items.filter((e) => e.providerEventId === design.headers['webhook-id']).length;
  const dupBody = dup.body as { received?: number; duplicates?: number };
  say(
    `the same milestone delivery again → HTTP ${dup.status} ${JSON.stringify(dup.body)}; ` +
      `still ${copies} stored event for webhook-id ${design.headers['webhook-id']}` +
      (dup.status === 200 && dupBody.received === 0 && copies === 1
        ? ' (duplicate, nothing new)'
        : ' (UNEXPECTED)'),
  );

  const balance = accepted('balance', { crmDealId }, `msg_demo_${run}_balance`);
  const balanceRes = await send(hubUrl, balance);
  say(
    `milestone.accepted for balance sent (by HubSpot deal id ${crmDealId}) → HTTP ${balanceRes.status}`,
  );
  deal = await admin.waitDeal(
    dealId,
    'the balance invoice and DELIVERED',
    (d) =>
      d.items.find((i) => i.key === 'balance')?.billingStatus === 'INVOICE_POSTED' &&
      d.stage === 'DELIVERED',
  );
  printInvoice(deal, 'balance');
  hubSays(hubView(deal));

  // A forged Stripe delivery for the deposit invoice: refused, nothing stored.
  const depositInvoice = deal.items.find((i) => i.key === 'deposit')?.invoices.at(-1);
  const forged = await send(
    hubUrl,
    stripeDelivery(
      {
        id: `evt_1Forged${run}`,
        object: 'event',
        type: 'invoice.paid',
        created: Math.floor(Date.now() / 1000),
        livemode: false,
        data: {
          object: {
            id: depositInvoice?.stripeInvoiceId ?? 'in_unknown',
            object: 'invoice',
            status: 'paid',
            amount_paid: depositInvoice?.total ?? 0,
            metadata: { closeloop_deal_id: dealId, closeloop_item_key: 'deposit' },
          },
        },
      },
      `whsec_${randomBytes(24).toString('hex')}`,
    ),
  );
  const forgedCode = (forged.body as { error?: { code?: string } })?.error?.code ?? '';
  say(
    `forged Stripe invoice.paid for ${depositInvoice?.stripeNumber ?? 'the deposit'} (wrong secret) → HTTP ${forged.status}` +
      `${forgedCode ? ` ${forgedCode}` : ''}${forged.status === 401 ? ', not stored' : ' (UNEXPECTED)'}`,
  );

  // 5. The customer pays each invoice in Stripe.
  for (const item of deal.items) {
    for (const inv of item.invoices.filter((i) => i.stripeInvoiceId && i.state === 'POSTED')) {
      sim.stripe.payInvoice(inv.stripeInvoiceId as string);
      say(`Stripe: invoice ${inv.stripeNumber} (${item.key}) paid, ${yen(inv.total)}`);
      deal = await admin.waitDeal(
        dealId,
        `${item.key} PAID`,
        (d) => d.items.find((i) => i.key === item.key)?.billingStatus === 'PAID',
      );
      hubSays(hubView(deal));
    }
  }
  deal = await admin.waitDeal(dealId, 'CLOSED', (d) => d.stage === 'CLOSED');
  const paid = deal.billing.paidAmount;
  const crm = await waitUntil(() => {
    const p = hubspot.deal(crmDealId)?.properties;
    return p && p.closeloop_paid_amount === String(paid) && p.dealstage === 'closedwon'
      ? p
      : undefined;
  }, 'the HubSpot write-back');
  say(
    `HubSpot deal ${crmDealId} written back: dealstage ${crm.dealstage}, closeloop_invoiced_amount ` +
      `${crm.closeloop_invoiced_amount}, closeloop_paid_amount ${crm.closeloop_paid_amount}, ` +
      `closeloop_sync_status ${crm.closeloop_sync_status}; ${hubspot.notesFor(crmDealId).length} notes on the deal`,
  );
  hubSays(
    `${hubView(deal)} · invoiced ${yen(deal.billing.invoicedAmount)} excl. tax, paid ${yen(paid)}`,
  );
  return { dealId, crmDealId, deal, forged, dup, copies };
}

/** A signed `milestone.accepted` delivery (CONTRACT §3.4), as the client's portal sends it. */
function milestoneAccepted(
  s: DemoSecrets,
  itemKey: string,
  by: { dealId: string } | { crmDealId: string },
  id: string,
  acceptedBy: string,
): Delivery {
  return standardDelivery(
    '/webhooks/milestones',
    {
      type: 'milestone.accepted',
      timestamp: new Date().toISOString(),
      data: { ...by, itemKey, acceptedAt: new Date().toISOString(), acceptedBy },
    },
    { secret: s.milestoneWebhookSecret, id },
  );
}

function printInvoice(deal: DealView, key: string) {
  const item = deal.items.find((i) => i.key === key);
  const inv = item?.invoices.at(-1);
  if (!item || !inv) return;
  say(
    `Stripe: ${item.label} invoice ${inv.stripeNumber} ${inv.stripeInvoiceId} posted, ` +
      `${yen(inv.amount)} + tax = ${yen(inv.total)}\n${' '.repeat(15)}  ${inv.hostedInvoiceUrl}`,
  );
}

/** Polls a synchronous check (simulator state) until it returns something. */
async function waitUntil<T>(check: () => T | undefined, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) {
      throw new CliError(
        `timed out after ${timeoutMs / 1000} s waiting for ${what}; see ${rel(HUB_LOG)}`,
      );
    }
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const port = Number(process.env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new CliError(`PORT must be a port number, got "${process.env.PORT}"`);
  }
  const databaseUrl = process.env.DATABASE_URL?.trim() || DEFAULT_DATABASE_URL;
  const redisUrl = process.env.REDIS_URL?.trim() || DEFAULT_REDIS_URL;
  const publicBaseUrl = `http://localhost:${port}`;
  const exitAfter = process.env.DEMO_EXIT_AFTER?.trim() === '1';

  console.log('closeloop demo\n');
  if (await portInUse(port)) {
    throw new CliError(
      `port ${port} is already in use (another hub or demo running?). ` +
        `Stop that process, or choose another port: PORT=${port + 1} npm run demo`,
    );
  }
  fs.mkdirSync(DEMO_DIR, { recursive: true });

  step(`migrating ${redactUrl(databaseUrl)}`);
  const migrated = await migrate(databaseUrl);
  done(migrated.split('\n').pop() ?? 'done');

  step(`checking Redis at ${redactUrl(redisUrl)}`);
  await checkRedis(redisUrl);
  done('ok');

  const { secrets, created } = loadSecrets();
  step('local secrets');
  done(`${created ? 'generated and saved to' : 'reused from'} ${rel(SECRETS_FILE)}`);

  const simPort = await firstFreePort(Number(process.env.SIM_PORT ?? SIM_PORT));
  step(
    `provider simulator (Stripe, HubSpot, DocuSign, Partner Center, reports) on port ${simPort}`,
  );
  const providers = await startSimulator({
    port: simPort,
    hubUrl: `http://127.0.0.1:${port}`,
    publicBaseUrl,
    stripeWebhookSecret: secrets.stripeWebhookSecret,
    hubspotClientSecret: secrets.hubspotClientSecret,
    docusignHmacKeys: [secrets.docusignHmacKey],
    reportWebhookSecret: secrets.referralReportWebhookSecret,
    docusignCertDir: DEMO_DIR,
    skipHubspotDealIdsUpTo: await highestSimHubspotDealId(databaseUrl),
  });
  running.sim = providers;
  done(
    `${providers.sim.url}; DocuSign OAuth at https://${providers.oauth?.host} ` +
      `(CA ${rel(providers.oauth?.caPath ?? '')}); Partner Center certificate at ` +
      providers.partnerCenter.certificateUrl,
  );

  fs.writeFileSync(HUB_LOG, ''); // one run per log file
  const hub = spawnHub({
    logFile: HUB_LOG,
    env: {
      ...passThrough(['LOG_LEVEL', 'BILLING_TIMEZONE']),
      ...providers.env,
      ROLE: 'all',
      PORT: String(port),
      PUBLIC_BASE_URL: publicBaseUrl,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      ADMIN_TOKEN: secrets.adminToken,
      DOCUSIGN_CONNECT_HMAC_KEYS: secrets.docusignHmacKey,
      HUBSPOT_CLIENT_SECRET: secrets.hubspotClientSecret,
      STRIPE_WEBHOOK_SECRET: secrets.stripeWebhookSecret,
      MILESTONE_WEBHOOK_SECRET: secrets.milestoneWebhookSecret,
      REFERRAL_WEBHOOK_SECRET: secrets.referralWebhookSecret,
      // Timers (silent approvals, overdue reports, referral clocks) every 2 s, so the demo shows them.
      LIFECYCLE_TIMER_MS: '2000',
      // PARTNER_CENTER_* and REFERRAL_REPORT_WEBHOOK_* come from the simulator (providers.env).
    },
  });
  running.hub = hub;

  step(`starting the hub on port ${port} (ROLE=all, logs in ${rel(HUB_LOG)})`);
  await waitForHttp(hub, '/health/ready', { what: 'the hub', logFile: HUB_LOG, timeoutMs: 60_000 });
  done(`ready (pid ${hub.proc.pid})`);
  // From now on an unexpected exit of the hub ends the demo.
  void hub.exited.then((code) => {
    if (running.stopping) return;
    console.error(`\nthe hub exited unexpectedly (${code}); last lines of ${rel(HUB_LOG)}:`);
    console.error(tail(HUB_LOG));
    void providers.close().then(() => process.exit(1));
  });

  console.log('\nA sample deal, driven through the simulator as your tools would:\n');
  const admin = new AdminClient(hub.url, secrets.adminToken, HUB_LOG);
  const r = await runSampleDeal(secrets, hub.url, providers, admin);

  console.log(`\nTimeline of ${r.dealId} (GET /api/deals/${r.dealId}):`);
  console.log(timelineText(r.deal.timeline));

  const rows = r.deal.events.map((e) => [e.provider, e.type, e.id, e.status]);
  rows.push([
    'stripe',
    'invoice.paid (wrong signature)',
    '—',
    r.forged.status === 401
      ? `REJECTED (HTTP ${r.forged.status})`
      : `UNEXPECTED (HTTP ${r.forged.status})`,
  ]);
  rows.push([
    'milestones',
    'milestone.accepted (resent)',
    '— (duplicate)',
    `HTTP ${r.dup.status}, ${r.copies} row`,
  ]);
  console.log(`\nEvents the hub stored for this deal (and the two refused ones):`);
  console.log(table(['provider', 'type', 'stored id', 'status'], rows));

  const referrals = await runReferralDemo({
    hubUrl: hub.url,
    admin,
    sim: providers,
    referralWebhookSecret: secrets.referralWebhookSecret,
    timeZone: process.env.BILLING_TIMEZONE?.trim() || 'Asia/Tokyo',
    say,
    hubSays,
    hubView,
    table,
    yen,
    waitUntil,
    printInvoice,
    sendMilestone: (itemKey, by, id, acceptedBy) =>
      send(hub.url, milestoneAccepted(secrets, itemKey, by, id, acceptedBy)),
  });

  // Something stuck, as there always is: an acceptance naming a CRM deal id with a typo. The
  // hub cannot place it and parks it as a dead letter (nothing billed) for an admin to fix.
  console.log('\nSomething stuck, to fix from the admin API (or the dashboard):\n');
  const typo = `${r.deal.crmDealId ?? 'HS'}0`;
  const stuck = await send(
    hub.url,
    milestoneAccepted(
      secrets,
      'design',
      { crmDealId: typo },
      `msg_demo_typo_${randomUUID()}`,
      'client',
    ),
  );
  say(`milestone.accepted naming HubSpot deal ${typo} (a typo) → HTTP ${stuck.status}`);
  let deadLetter: { id: string; error: string } | undefined;
  for (const until = Date.now() + 30_000; !deadLetter; await sleep(200)) {
    if (Date.now() > until) throw new CliError(`no dead letter after 30 s; see ${rel(HUB_LOG)}`);
    deadLetter = (
      await admin.get<{ items: { id: string; error: string }[] }>(
        '/api/dead-letters?jobName=WebhookEventProcess&limit=200',
      )
    ).items.find((d) => d.error.includes(typo));
  }
  hubSays(`dead letter ${deadLetter.id}: ${deadLetter.error}`);
  const preview = await admin.get<{ summary: string[] }>(
    `/api/dead-letters/${deadLetter.id}/replay-preview`,
  );
  hubSays(`replay preview (nothing sent): ${preview.summary.join(' · ')}`);

  const base = `http://localhost:${port}`;
  const auth = `-H "Authorization: Bearer ${secrets.adminToken}"`;
  console.log(`
The hub is running (ROLE=all, pid ${hub.proc.pid}); its JSON logs go to ${rel(HUB_LOG)}.
  Dashboard        ${base}/dashboard  (log in with the admin token below)
  Hub              ${base}
  API docs         ${base}/docs
  This deal        ${base}/api/deals/${r.dealId}
  Referral deal    ${base}/api/deals/${referrals.partnerCenterDealId}  (Partner Center)
  Referrals        ${base}/api/referrals
  Manual reports   ${base}/api/reports?channel=manual
  Reconciliation   ${base}/api/reconciliation
  Metrics          ${base}/metrics
  Simulator        ${providers.sim.url}  (Stripe invoices: ${providers.sim.url}/_sim/stripe/invoices)
                   Partner Center PATCHes ${providers.sim.url}/_sim/partner-center/patches
                   reports received ${providers.sim.url}/_sim/reports/received
  Admin token      ${secrets.adminToken}
                   (kept in ${rel(SECRETS_FILE)} with the demo's webhook secrets)

Try:
  curl -s ${auth} ${base}/api/deals/${r.dealId}
  curl -s ${auth} '${base}/api/deals?limit=10'
  curl -s ${auth} ${base}/api/deals/${referrals.partnerCenterDealId}
  curl -s ${auth} '${base}/api/reports?channel=manual'
  curl -s ${auth} ${base}/api/reconciliation
  curl -s ${providers.sim.url}/_sim/stripe/invoices
  curl -s ${base}/metrics | grep closeloop_webhooks_received_total

${exitAfter ? 'DEMO_EXIT_AFTER=1: stopping the hub and the simulator.' : 'Press Ctrl-C to stop the hub and the simulator.'}`);
  if (exitAfter) {
    const code = await stopAll('SIGTERM');
    console.log(`hub stopped (exit ${code}), simulator stopped`);
    return code === 0 ? 0 : 1;
  }
  return new Promise<number>(() => {}); // serve until a signal
}

function passThrough(names: string[]): Record<string, string> {
  return Object.fromEntries(
    names.filter((n) => process.env[n]?.trim()).map((n) => [n, process.env[n] as string]),
  );
}

/** What the demo started, to be stopped on a signal or a failure. */
const running: {
  hub?: HubProcess;
  sim?: RunningSim;
  stopping: boolean;
} = { stopping: false };

/** Stops the hub (forwarding `signal`), then the simulator; resolves with the hub's exit code. */
async function stopAll(signal: NodeJS.Signals): Promise<number | string | undefined> {
  running.stopping = true;
  const code = running.hub ? await running.hub.stop(signal) : undefined;
  await running.sim?.close();
  return code;
}

/** Ctrl-C / SIGTERM: forward to the hub, wait for it, exit. A second signal kills it. */
function onSignal(signal: NodeJS.Signals) {
  if (running.stopping) {
    console.log(`\n${signal} again: killing the hub`);
    running.hub?.proc.kill('SIGKILL');
    process.exit(1);
  }
  console.log(`\n${signal}: stopping the hub and the simulator…`);
  void stopAll(signal).then((code) => {
    if (code !== undefined) console.log(`hub stopped (exit ${code}), simulator stopped; bye`);
    process.exit(code === undefined || code === 0 ? 0 : 1);
  });
}

function step(what: string) {
  process.stdout.write(`• ${what} … `);
}
function done(result: string) {
  process.stdout.write(`${result}\n`);
}

process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    if (err instanceof CliError) console.error(`\n\ndemo: ${err.message}`);
    else console.error('\n\ndemo failed:', err);
    if (running.hub) console.error(`stopping the hub (its log: ${rel(HUB_LOG)})`);
    await stopAll('SIGTERM');
    process.exit(1);
  },
);
