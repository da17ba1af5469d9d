/**
 * `npm run demo`: the README's first quick-start command (CONTRACT §1).
 *
 * Migrates the database, generates local secrets (kept in .demo/secrets.json so reruns reuse them),
 * serves a stand-in Partner Center notification certificate, starts the hub (ROLE=all) as a child
 * process logging to .demo/hub.log, sends one correctly signed sample delivery per provider for a
 * Japanese agency deal (plus one badly signed delivery and one duplicate), waits until the worker
 * has processed them, prints what was stored, and keeps serving until Ctrl-C.
 *
 * Environment: DATABASE_URL, REDIS_URL and PORT as for the hub (CONTRACT §2); LOG_LEVEL and
 * BILLING_TIMEZONE are passed through. Provider credentials are always the demo's own.
 */
import { randomBytes, randomInt, randomUUID, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import path from 'node:path';

import { Redis } from 'ioredis';

import { createPartnerCenterTestCert } from '../simulator/partner-center-cert';
import {
  Delivery,
  docusignDelivery,
  hubspotDelivery,
  partnerCenterDelivery,
  send,
  standardDelivery,
  stripeDelivery,
} from '../simulator/signed-delivery';
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

const SECRETS_FILE = path.join(DEMO_DIR, 'secrets.json');
const HUB_LOG = path.join(DEMO_DIR, 'hub.log');
const CERT_PATH = '/cert/pcnotifications-dispatch.microsoft.com.cer';
const FINAL_STATUSES = ['PROCESSED', 'IGNORED', 'DEAD'];
const rel = (file: string) => path.relative(process.cwd(), file) || '.';

interface DemoSecrets {
  adminToken: string;
  docusignHmacKey: string;
  hubspotClientSecret: string;
  stripeWebhookSecret: string;
  milestoneWebhookSecret: string;
  referralWebhookSecret: string;
  partnerCenter: { privateKeyPem: string; certPem: string };
}

/** Loads .demo/secrets.json, filling in (and saving) whatever is missing or expiring. */
function loadSecrets(): { secrets: DemoSecrets; created: boolean } {
  let saved: Partial<DemoSecrets> = {};
  try {
    saved = JSON.parse(fs.readFileSync(SECRETS_FILE, 'utf8')) as Partial<DemoSecrets>;
  } catch {
    // first run (or unreadable file): generate everything
  }
  const standardSecret = () => `whsec_${randomBytes(24).toString('base64')}`;
  const certValid = (pem?: string) => {
    try {
      return new Date(new X509Certificate(pem ?? '').validTo).getTime() > Date.now() + 7 * 864e5;
    } catch {
      return false;
    }
  };
  const pc = saved.partnerCenter;
  const secrets: DemoSecrets = {
    adminToken: saved.adminToken ?? `demo_admin_${randomBytes(24).toString('base64url')}`,
    docusignHmacKey: saved.docusignHmacKey ?? randomBytes(32).toString('base64'),
    hubspotClientSecret: saved.hubspotClientSecret ?? randomUUID(),
    stripeWebhookSecret: saved.stripeWebhookSecret ?? `whsec_${randomBytes(24).toString('hex')}`,
    milestoneWebhookSecret: saved.milestoneWebhookSecret ?? standardSecret(),
    referralWebhookSecret: saved.referralWebhookSecret ?? standardSecret(),
    partnerCenter:
      pc?.privateKeyPem && certValid(pc.certPem)
        ? pc
        : (({ privateKeyPem, certPem }) => ({ privateKeyPem, certPem }))(
            createPartnerCenterTestCert({ days: 365 }),
          ),
  };
  const created = JSON.stringify(saved) !== JSON.stringify(secrets);
  if (created) {
    fs.writeFileSync(SECRETS_FILE, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  }
  return { secrets, created };
}

/**
 * A tiny local server inside the demo: serves the Partner Center test certificate (DER, as
 * Microsoft's `.cer` URL does) and stands in for the Partner Center API and token endpoint, so
 * the hub never sends the demo's dummy credentials to Microsoft.
 */
async function startLocalProviders(
  certDer: Buffer,
): Promise<{ server: http.Server; base: string }> {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === CERT_PATH) {
      res.writeHead(200, {
        'content-type': 'application/pkix-cert',
        'content-length': certDer.length,
      });
      res.end(certDer);
      return;
    }
    const body = JSON.stringify({
      error: {
        code: 'NOT_SIMULATED',
        message: `the demo does not simulate ${req.method} ${req.url}`,
      },
    });
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return { server, base: `http://127.0.0.1:${port}` };
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
// The sample deal: a Japanese web agency wins "Web制作 — 株式会社サンプル" through a referral.

interface Sample {
  /** What each event of the delivery says, in the table (a HubSpot batch carries several). */
  labels: string[];
  delivery: Delivery;
}

function sampleDeliveries(s: DemoSecrets, publicBaseUrl: string, certUrl: string) {
  const run = Date.now().toString(36); // fresh provider event ids on every run
  const now = new Date();
  const iso = now.toISOString();
  const seconds = Math.floor(now.getTime() / 1000);
  const dealId = `cl_deal_demo_${run}`;
  const crmDealId = 20_000_000_000 + randomInt(1_000_000_000);
  const dealName = 'Web制作 — 株式会社サンプル';
  const contractExTax = 1_000_000; // JPY has no minor unit: 1000000 is ¥1,000,000
  const deposit = 300_000; // 着手金 30 %
  const depositTax = 30_000; // 10 % consumption tax
  const envelopeId = randomUUID();
  const accountId = '7d1c5a0e-3b2f-4c8a-9e61-5a4f0c2b9d13';
  const invoiceId = `in_1Demo${run}${randomBytes(4).toString('hex')}`;
  const customer = { name: '株式会社サンプル', email: 'tanaka@sample.co.jp' };
  const portalId = 44_556_677;
  const occurredAt = now.getTime();
  const dotNetDate = iso.replace(/\.(\d{3})Z$/, '.$10000Z'); // 7 fractional digits, as DocuSign sends

  const referral: Sample = {
    labels: [`PRONI アイミツ referral, est. ¥${contractExTax.toLocaleString('ja-JP')}`],
    delivery: standardDelivery(
      '/webhooks/referrals/generic',
      {
        type: 'referral.created',
        timestamp: iso,
        data: {
          referralId: `AIM-${run.toUpperCase()}`,
          platform: 'proni-aimitsu',
          customer,
          title: dealName,
          estimatedValue: contractExTax,
          currency: 'jpy',
          respondBy: new Date(now.getTime() + 72 * 3600_000).toISOString(),
        },
      },
      { secret: s.referralWebhookSecret, id: `msg_ref_${run}`, timestampSeconds: seconds },
    ),
  };
  const partnerCenter: Sample = {
    labels: ['co-sell referral'],
    delivery: partnerCenterDelivery(
      {
        EventName: 'referral-created',
        ResourceUri: `https://api.partner.microsoft.com/v1.0/engagements/referrals/${randomUUID()}`,
        ResourceName: 'referral',
        AuditUri: null,
        ResourceChangeUtcDate: iso.replace(/\.(\d{3})Z$/, '.$10000+00:00'),
      },
      s.partnerCenter.privateKeyPem,
      certUrl,
    ),
  };
  const hubspotEvent = (eventId: number, propertyName: string, propertyValue: string) => ({
    eventId,
    subscriptionId: propertyName === 'dealstage' ? 2_104_301 : 2_104_302,
    portalId,
    appId: 3_318_842,
    occurredAt,
    subscriptionType: 'deal.propertyChange',
    attemptNumber: 0,
    objectId: crmDealId,
    propertyName,
    propertyValue,
    changeSource: 'CRM_UI',
    sourceId: 'userId:61234567',
  });
  const hubspot: Sample = {
    labels: ['dealstage → contractsent', 'amount changed'],
    delivery: hubspotDelivery(
      [
        hubspotEvent(randomInt(1e9, 4e9), 'dealstage', 'contractsent'),
        hubspotEvent(randomInt(1e9, 4e9), 'amount', String(contractExTax)),
      ],
      { clientSecret: s.hubspotClientSecret, publicBaseUrl, timestamp: occurredAt },
    ),
  };
  const docusign: Sample = {
    labels: ['業務委託契約書 signed'],
    delivery: docusignDelivery(
      {
        event: 'envelope-completed',
        apiVersion: 'v2.1',
        uri: `/restapi/v2.1/accounts/${accountId}/envelopes/${envelopeId}`,
        retryCount: 0,
        configurationId: 10_501_234,
        generatedDateTime: dotNetDate,
        data: {
          accountId,
          userId: 'b4c2e6f1-8a3d-4e57-9c10-2f6a7d8e9b01',
          envelopeId,
          envelopeSummary: {
            envelopeId,
            status: 'completed',
            emailSubject: `【ご署名のお願い】業務委託契約書 — ${dealName}`,
            sentDateTime: new Date(now.getTime() - 3600_000).toISOString(),
            completedDateTime: iso,
            customFields: {
              textCustomFields: [
                { name: 'closeloop_deal_id', value: dealId, show: 'false' },
                { name: 'hubspot_deal_id', value: String(crmDealId), show: 'false' },
              ],
            },
          },
        },
      },
      [s.docusignHmacKey],
    ),
  };
  const invoice = (type: string, eventId: string) => ({
    id: eventId,
    object: 'event',
    api_version: '2025-09-30.clover',
    created: seconds,
    type,
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    data: {
      object: {
        id: invoiceId,
        object: 'invoice',
        number: `DEMO-${run.toUpperCase()}-0001`,
        status: 'open',
        currency: 'jpy',
        customer: 'cus_DemoSample0001',
        customer_name: customer.name,
        collection_method: 'send_invoice',
        subtotal_excluding_tax: deposit,
        total_taxes: [{ amount: depositTax, tax_behavior: 'exclusive' }],
        total: deposit + depositTax,
        amount_due: deposit + depositTax,
        amount_paid: 0,
        amount_remaining: deposit + depositTax,
        due_date: seconds + 30 * 86_400,
        description: `${dealName} 着手金 (30%)`,
        hosted_invoice_url: `https://invoice.stripe.com/i/acct_demo/${invoiceId}`,
        invoice_pdf: `https://pay.stripe.com/invoice/acct_demo/${invoiceId}/pdf`,
        metadata: {
          closeloop_deal_id: dealId,
          closeloop_item_key: 'deposit',
          closeloop_billing_key: `${dealId}:deposit`,
        },
      },
    },
  });
  const stripe: Sample = {
    labels: [`着手金 ¥${(deposit + depositTax).toLocaleString('ja-JP')} (税込)`],
    delivery: stripeDelivery(
      invoice('invoice.finalized', `evt_1Demo${run}Fin`),
      s.stripeWebhookSecret,
      seconds,
    ),
  };
  const milestone: Sample = {
    labels: ['デザイン検収 accepted'],
    delivery: standardDelivery(
      '/webhooks/milestones',
      {
        type: 'milestone.accepted',
        timestamp: iso,
        data: {
          dealId,
          crmDealId: String(crmDealId),
          itemKey: 'design',
          acceptedAt: iso,
          acceptedBy: customer.email,
          progressPercent: 100,
        },
      },
      { secret: s.milestoneWebhookSecret, id: `msg_ms_${run}`, timestampSeconds: seconds },
    ),
  };
  // Signed with a secret the hub does not know: must answer 401 and store nothing.
  const forged: Sample = {
    labels: ['forged: signed with the wrong secret'],
    delivery: stripeDelivery(
      invoice('invoice.paid', `evt_1Demo${run}Forged`),
      `whsec_${randomBytes(24).toString('hex')}`,
      seconds,
    ),
  };
  return {
    dealId,
    crmDealId,
    dealName,
    good: [referral, partnerCenter, hubspot, docusign, stripe, milestone],
    forged,
    duplicate: milestone,
  };
}

// ---------------------------------------------------------------------------------------------

interface EventView {
  id: string;
  provider: string;
  type: string;
  status: string;
  providerEventId: string;
  normalized?: { subject?: Record<string, string | undefined> } | null;
  lastError?: string | null;
}

interface Row {
  provider: string;
  type: string;
  http: string;
  id: string;
  status: string;
  subject: string;
}

const PROVIDER_OF: Record<string, string> = {
  '/webhooks/docusign': 'docusign',
  '/webhooks/hubspot': 'hubspot',
  '/webhooks/stripe': 'stripe',
  '/webhooks/milestones': 'milestones',
  '/webhooks/referrals/generic': 'generic',
  '/webhooks/referrals/partner-center': 'partner-center',
};

function subjectText(subject: Record<string, string | undefined> | undefined): string {
  if (!subject) return '';
  const labels: [string, string][] = [
    ['dealId', 'deal'],
    ['crmDealId', 'CRM deal'],
    ['referralId', 'referral'],
    ['envelopeId', 'envelope'],
    ['stripeInvoiceId', 'invoice'],
  ];
  return labels
    .filter(([key]) => subject[key])
    .map(([key, label]) => {
      const v = subject[key] as string;
      return `${label} ${v.length > 24 ? `${v.slice(0, 8)}…` : v}`;
    })
    .join(', ');
}

class AdminClient {
  constructor(
    private readonly base: string,
    private readonly token: string,
  ) {}

  async get<T>(pathname: string): Promise<T> {
    const res = await fetch(`${this.base}${pathname}`, {
      headers: { authorization: `Bearer ${this.token}` },
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`GET ${pathname}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  /** Polls the event until the worker has finished with it (or `timeoutMs` passes). */
  async settled(id: string, timeoutMs: number): Promise<EventView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = await this.get<EventView>(`/api/events/${id}`);
      if (FINAL_STATUSES.includes(event.status) || Date.now() > deadline) return event;
      await sleep(100);
    }
  }
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

function table(rows: Row[]): string {
  const cols: [keyof Row, string][] = [
    ['provider', 'provider'],
    ['type', 'type'],
    ['http', 'HTTP'],
    ['id', 'stored id'],
    ['status', 'status'],
    ['subject', 'subject / deal'],
  ];
  const widths = cols.map(([key, title]) =>
    Math.max(displayWidth(title), ...rows.map((r) => displayWidth(r[key]))),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i] - displayWidth(c))))
      .join('  ')
      .trimEnd();
  return [
    line(cols.map(([, title]) => title)),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(cols.map(([key]) => r[key]))),
  ].join('\n');
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

  const local = await startLocalProviders(new X509Certificate(secrets.partnerCenter.certPem).raw);
  const certUrl = `${local.base}${CERT_PATH}`;
  step('Partner Center test certificate');
  done(`served at ${certUrl}`);

  fs.writeFileSync(HUB_LOG, ''); // one run per log file
  const hub = spawnHub({
    logFile: HUB_LOG,
    env: {
      ...passThrough(['LOG_LEVEL', 'BILLING_TIMEZONE']),
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
      PARTNER_CENTER_CERT_URL_PREFIXES: `${local.base}/cert/`,
      PARTNER_CENTER_TENANT_ID: 'demo-tenant',
      PARTNER_CENTER_CLIENT_ID: 'demo-client',
      PARTNER_CENTER_CLIENT_SECRET: 'demo-client-secret',
      PARTNER_CENTER_REFRESH_TOKEN: 'demo-refresh-token',
      PARTNER_CENTER_API_BASE: `${local.base}/partner-center`,
      PARTNER_CENTER_TOKEN_URL: `${local.base}/partner-center/token`,
    },
  });
  running.hub = hub;
  running.server = local.server;

  step(`starting the hub on port ${port} (ROLE=all, logs in ${rel(HUB_LOG)})`);
  await waitForHttp(hub, '/health/ready', { what: 'the hub', logFile: HUB_LOG, timeoutMs: 60_000 });
  done(`ready (pid ${hub.proc.pid})`);
  // From now on an unexpected exit of the hub ends the demo.
  void hub.exited.then((code) => {
    if (running.stopping) return;
    console.error(`\nthe hub exited unexpectedly (${code}); last lines of ${rel(HUB_LOG)}:`);
    console.error(tail(HUB_LOG));
    local.server.close();
    process.exit(1);
  });

  const admin = new AdminClient(hub.url, secrets.adminToken);
  const samples = sampleDeliveries(secrets, publicBaseUrl, certUrl);
  step('sending signed sample deliveries');
  const rows: Row[] = [];
  const notes: string[] = [];
  const sent: { sample: Sample; status: number; ids: string[] }[] = [];
  for (const sample of samples.good) {
    const res = await send(hub.url, sample.delivery);
    const ids = (res.body as { eventIds?: string[] })?.eventIds ?? [];
    sent.push({ sample, status: res.status, ids });
  }
  const forged = await send(hub.url, samples.forged.delivery);
  const dup = await send(hub.url, samples.duplicate.delivery);
  done(`${sent.length + 2} sent`);

  step('waiting for the worker');
  let unsettled = 0;
  for (const { sample, status, ids } of sent) {
    const provider = PROVIDER_OF[sample.delivery.path];
    if (ids.length === 0) {
      rows.push({
        provider,
        type: '?',
        http: String(status),
        id: '—',
        status: 'NOT STORED',
        subject: sample.labels.join(', '),
      });
      notes.push(`${provider}: HTTP ${status} — see ${rel(HUB_LOG)}`);
    }
    for (const [i, id] of ids.entries()) {
      const event = await admin.settled(id, 30_000);
      if (!FINAL_STATUSES.includes(event.status)) unsettled++;
      if (event.lastError) notes.push(`${id}: ${event.lastError}`);
      const subject = subjectText(event.normalized?.subject ?? undefined);
      const label = sample.labels[i] ?? '';
      rows.push({
        provider: event.provider,
        type: event.type,
        http: String(status),
        id,
        status: event.status,
        subject:
          event.status === 'IGNORED'
            ? `${label} (not used by the hub)`
            : `${label}${subject ? ` [${subject}]` : ''}`,
      });
    }
  }
  done(unsettled ? `${unsettled} still in progress after 30 s` : 'all processed');

  const forgedErr = (forged.body as { error?: { code?: string } })?.error?.code ?? '';
  rows.push({
    provider: 'stripe',
    type: 'invoice.paid (wrong signature)',
    http: String(forged.status),
    id: '—',
    status: forged.status === 401 ? 'REJECTED' : 'UNEXPECTED',
    subject: `forged: not stored${forgedErr ? ` (${forgedErr})` : ''}`,
  });
  const dupWebhookId = samples.duplicate.delivery.headers['webhook-id'];
  const milestoneRows = await admin.get<{ items: EventView[] }>(
    '/api/events?provider=milestones&limit=200',
  );
  const copies = milestoneRows.items.filter((e) => e.providerEventId === dupWebhookId).length;
  const dupBody = dup.body as { received?: number; duplicates?: number };
  rows.push({
    provider: 'milestones',
    type: 'milestone.accepted (resent)',
    http: String(dup.status),
    id: '— (duplicate)',
    status:
      dup.status === 200 && dupBody.received === 0 && copies === 1 ? 'DUPLICATE' : 'UNEXPECTED',
    subject: `same webhook-id ${dupWebhookId}: still ${copies} row${copies === 1 ? '' : 's'}`,
  });

  console.log(
    `\nSample deal: ${samples.dealName}  (hub deal ${samples.dealId}, HubSpot deal ${samples.crmDealId})\n` +
      '  contract ¥1,000,000 excl. tax (+10 % 消費税) · 着手金 30 % invoiced · design milestone accepted\n',
  );
  console.log(table(rows));
  if (notes.length) console.log(`\nNotes:\n${notes.map((n) => `  ${n}`).join('\n')}`);

  const base = `http://localhost:${port}`;
  const auth = `-H "Authorization: Bearer ${secrets.adminToken}"`;
  console.log(`
The hub is running (ROLE=all, pid ${hub.proc.pid}); its JSON logs go to ${rel(HUB_LOG)}.
  Hub           ${base}
  API docs      ${base}/docs
  Metrics       ${base}/metrics
  Readiness     ${base}/health/ready
  Admin token   ${secrets.adminToken}
                (kept in ${rel(SECRETS_FILE)} with the demo's webhook secrets)

Try:
  curl -s ${auth} '${base}/api/events?limit=10'
  curl -s ${auth} ${base}/api/events/${sent.find((s) => s.ids.length)?.ids[0] ?? '<id>'}
  curl -s ${auth} ${base}/api/dead-letters
  curl -s ${base}/metrics | grep closeloop_webhooks_received_total
  curl -s ${base}/health/ready

Press Ctrl-C to stop.`);
  return new Promise<number>(() => {}); // serve until a signal
}

function passThrough(names: string[]): Record<string, string> {
  return Object.fromEntries(
    names.filter((n) => process.env[n]?.trim()).map((n) => [n, process.env[n] as string]),
  );
}

/** What the demo started, to be stopped on a signal or a failure. */
const running: { hub?: HubProcess; server?: http.Server; stopping: boolean } = { stopping: false };

/** Stops the hub (forwarding `signal`) and the local server; resolves with the hub's exit code. */
async function stopAll(signal: NodeJS.Signals): Promise<number | string | undefined> {
  running.stopping = true;
  const code = running.hub ? await running.hub.stop(signal) : undefined;
  running.server?.close();
  return code;
}

/** Ctrl-C / SIGTERM: forward to the hub, wait for it, exit. A second signal kills it. */
function onSignal(signal: NodeJS.Signals) {
  if (running.stopping) {
    console.log(`\n${signal} again: killing the hub`);
    running.hub?.proc.kill('SIGKILL');
    process.exit(1);
  }
  console.log(`\n${signal}: stopping the hub…`);
  void stopAll(signal).then((code) => {
    if (code !== undefined) console.log(`hub stopped (exit ${code}); bye`);
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
    if (running.hub) {
      console.error(`stopping the hub (its log: ${rel(HUB_LOG)})`);
      await stopAll('SIGTERM');
    }
    process.exit(1);
  },
);
