/**
 * `npm run bench -- --billing` (and part of the default `npm run bench`): billing benchmark of the
 * built hub against the provider simulator (issue: "Benchmark — billing figures").
 *
 * One hub process (ROLE=all) on the bench database (closeloop_bench, emptied first) and Redis
 * (BENCH_REDIS_URL, flushed first), with STRIPE_SECRET_KEY/STRIPE_API_BASE pointing at the
 * simulator (this process) and STRIPE_RATE_LIMIT_PER_SEC raised (10000); the simulator's own Stripe
 * rate limit is off. DocuSign REST is not configured: deals are prepared directly.
 *
 * Preparation (not measured): deals are created through the admin API (POST /api/deals, stage
 * CONTRACT_SENT, the CONTRACT §4 example plan whose deposit bills on contract.signed); once the
 * worker has finished with them, each contract row gets an envelope id (status SENT) in Postgres.
 *
 * (a) Latency: signed DocuSign `envelope-completed` deliveries (docusignDelivery, the deal id in
 *     the closeloop_deal_id custom field) at a steady BILLING_RATE per second; per deal, the time
 *     from just before the POST to the simulator's receipt of `POST /v1/invoices` whose
 *     Idempotency-Key is the deal's deposit billing key (the request log's 'request' listener, in
 *     this process, high-resolution clock). Also: to `POST /v1/invoices/:id/send` (the invoice
 *     issued), and the webhook's own HTTP round trip. The first BILLING_WARMUP deals warm the hub
 *     (connection pools, JIT, the tax rate cache) and are left out of the statistics.
 * (b) Throughput: another batch, every completion fired as fast as the door takes them
 *     (BILLING_CONNECTIONS concurrent senders); invoices per second from the first POST to the
 *     last `POST /v1/invoices/:id/send` received by the simulator.
 *
 * (c) Stripe calls per invoice: BILLING_CUSTOMER_DEALS deals (default 250) over BILLING_CUSTOMERS
 *     customers (default 5: deal i belongs to customer i mod 5, same company and e-mail), each with
 *     one deposit item (100 %) billed on contract.signed; every completion fired at once as in (b).
 *     Every request the simulator's Stripe API received (any method and path under /v1/:
 *     customers, tax rates, invoices, items, finalize, send, searches, retrieves) from just before
 *     the first completion until the hub is idle again, ÷ the invoices created for those deals. The
 *     hub is warm by then (after (a) and (b)): what it caches (the tax rate) is not fetched again.
 *
 * Afterwards every measured deal must have exactly one Stripe invoice in the simulator.
 * Env: BILLING_DEALS=500 BILLING_RATE=10 BILLING_WARMUP=20 BILLING_CONNECTIONS=32
 *      BILLING_CUSTOMER_DEALS=250 BILLING_CUSTOMERS=5
 *      BILLING_STRIPE_RATE_LIMIT=10000 BILLING_TIMEOUT_S=120; WORKER_CONCURRENCY, DB_POOL_SIZE
 *      and OUTBOX_POLL_MS are passed to the hub when set.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Redis } from 'ioredis';
import { Pool } from 'pg';

import { idempotencyKey } from '../../src/connectors/stripe/stripe.client';
import { now } from '../simulator/provider-sim/request-log';
import { docusignDelivery, send } from '../simulator/signed-delivery';
import { stats } from './bench-hub';
import { CpuGroups, cpuDiff, cpuSnapshot, peakRssMb } from './bench-loadgen';
import { CliError, DEMO_DIR, HubProcess, sleep, spawnHub, waitForHttp } from './cli-support';
import { TARGETS } from './bench-summary';
import { formatProfileSummary, summarizeCpuProfile } from './cpu-profile';
import { RunningSim, SAMPLE_PLAN, startSimulator } from './sim-support';

export interface BillingBenchOptions {
  databaseUrl: string;
  redisUrl: string;
  port: number;
  profile: boolean;
  stamp: string;
  revision: string | null;
  log: (line: string) => void;
}

/** What the bench's summary takes from this part (null: not measured). */
export interface BillingFigures {
  invoicesPerSec: number | null;
  stripeCallsPerInvoice: number | null;
  e2eP50Ms: number | null;
  e2eP99Ms: number | null;
  /** Peak RSS (VmHWM) of the ROLE=all hub, read just before it was stopped. */
  rssMb: number | null;
}

export interface BillingBenchResult {
  code: number;
  figures: BillingFigures;
  /** Everything written to .demo/bench-billing.json. */
  report?: Record<string, unknown>;
  checks: { what: string; ok: boolean; detail: string }[];
}

/** One deposit item (the whole amount) billed when the contract is signed. */
const DEPOSIT_ONLY_PLAN = {
  currency: 'jpy',
  taxRatePercent: 10,
  billingCount: 'one_time',
  items: [{ key: 'deposit', label: '着手金', percent: 100, trigger: 'contract.signed' }],
};

/** A Stripe API path with its object ids replaced by :id (e.g. POST /v1/invoices/:id/send). */
const stripeRoute = (method: string, p: string) =>
  `${method} ${p.replace(/\/(?:[a-z]+_[A-Za-z0-9]+)(?=\/|$)/g, '/:id')}`;

const intEnv = (name: string, def: number) => {
  const raw = process.env[name]?.trim();
  const v = raw ? Number(raw) : def;
  if (!Number.isFinite(v) || v <= 0) throw new CliError(`${name} must be a positive number`);
  return v;
};

/** A DocuSign Connect `envelope-completed` message (JSON, SIM/Connect 2.1 shape). */
function completedMessage(dealId: string, envelopeId: string, accountId: string) {
  const iso = new Date().toISOString();
  return {
    event: 'envelope-completed',
    apiVersion: 'v2.1',
    uri: `/restapi/v2.1/accounts/${accountId}/envelopes/${envelopeId}`,
    retryCount: 0,
    configurationId: 10_501_234,
    generatedDateTime: iso.replace(
      /\.(\d{3})Z$/,
      `.$1${String(randomBytes(2).readUInt16BE() % 10_000).padStart(4, '0')}Z`,
    ),
    data: {
      accountId,
      userId: 'b4c2e6f1-8a3d-4e57-9c10-2f6a7d8e9b01',
      envelopeId,
      envelopeSummary: {
        envelopeId,
        status: 'completed',
        emailSubject: 'Please sign: bench deal',
        completedDateTime: iso,
        customFields: {
          textCustomFields: [{ name: 'closeloop_deal_id', value: dealId, show: 'false' }],
        },
      },
    },
  };
}

export async function runBillingBench(o: BillingBenchOptions): Promise<BillingBenchResult> {
  const DEALS = intEnv('BILLING_DEALS', 500);
  const CUSTOMER_DEALS = intEnv('BILLING_CUSTOMER_DEALS', 250);
  const CUSTOMERS = intEnv('BILLING_CUSTOMERS', 5);
  const RATE = intEnv('BILLING_RATE', 10);
  const WARM = intEnv('BILLING_WARMUP', 20);
  const CONNS = intEnv('BILLING_CONNECTIONS', 32);
  const LIMIT = intEnv('BILLING_STRIPE_RATE_LIMIT', 10_000);
  const TIMEOUT_MS = intEnv('BILLING_TIMEOUT_S', 120) * 1000;
  const { log } = o;
  const hubUrl = `http://127.0.0.1:${o.port}`;
  const adminToken = `bench_admin_${randomBytes(16).toString('hex')}`;
  const hmacKey = randomBytes(32).toString('base64');
  const stripeWebhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  const accountId = randomUUID();
  const logFile = path.join(DEMO_DIR, 'bench-billing-hub.log');
  const profileDir = o.profile ? path.join(DEMO_DIR, 'profiles') : undefined;
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
  const profileFile = profileDir ? path.join(profileDir, `billing-hub-${o.stamp}.cpuprofile`) : '';

  log(
    `\ncloseloop billing benchmark — ${DEALS} deals for latency at ${RATE}/s (+${WARM} warm-up), ` +
      `${DEALS} deals for throughput (${CONNS} concurrent senders), ${CUSTOMER_DEALS} deals of ${CUSTOMERS} customers ` +
      `for Stripe calls per invoice, hub limiter ${LIMIT}/s, simulator limit off`,
  );
  const db = new Pool({ connectionString: o.databaseUrl, max: 4 });
  let sim: RunningSim | undefined;
  let hub: HubProcess | undefined;
  try {
    await db.query(
      'TRUNCATE webhook_event, outbox, dead_letter, job_attempt, api_token, audit_log, deal, billing_item, ' +
        'invoice, contract, timeline_entry, stage_trigger, idempotency_record, crm_note, referral, report, alert, ' +
        'stripe_customer ' +
        'RESTART IDENTITY CASCADE',
    );
    const redis = new Redis(o.redisUrl, { maxRetriesPerRequest: 1 });
    await redis.flushdb().finally(() => redis.disconnect());

    sim = await startSimulator({
      port: 0,
      hubUrl,
      publicBaseUrl: hubUrl,
      stripeWebhookSecret,
      docusignHmacKeys: [hmacKey],
      reportWebhookSecret:
        'whsec_' + Buffer.from('closeloop-bench-report-secret').toString('base64'),
      logCapacity: 500_000,
    });
    sim.sim.stripe.setRateLimit(null);
    fs.writeFileSync(logFile, '');
    hub = spawnHub({
      logFile,
      nodeArgs: profileDir
        ? [
            '--cpu-prof',
            `--cpu-prof-dir=${profileDir}`,
            `--cpu-prof-name=${path.basename(profileFile)}`,
          ]
        : [],
      env: {
        ...Object.fromEntries(
          ['DB_POOL_SIZE', 'WORKER_CONCURRENCY', 'OUTBOX_POLL_MS']
            .filter((n) => process.env[n]?.trim())
            .map((n) => [n, process.env[n] as string]),
        ),
        ROLE: 'all',
        PORT: String(o.port),
        PUBLIC_BASE_URL: hubUrl,
        DATABASE_URL: o.databaseUrl,
        REDIS_URL: o.redisUrl,
        LOG_LEVEL: 'warn',
        ADMIN_TOKEN: adminToken,
        DOCUSIGN_CONNECT_HMAC_KEYS: hmacKey,
        STRIPE_WEBHOOK_SECRET: stripeWebhookSecret,
        STRIPE_SECRET_KEY: sim.env.STRIPE_SECRET_KEY,
        STRIPE_API_BASE: sim.env.STRIPE_API_BASE,
        STRIPE_RATE_LIMIT_PER_SEC: String(LIMIT),
      },
    });
    await waitForHttp(hub, '/health/ready', { what: 'the billing hub', logFile });
    log(
      `  hub (ROLE=all) pid ${hub.proc.pid} :${o.port}; simulator ${sim.sim.url} (in this process)`,
    );

    // --- the request log: when the simulator received each deal's invoice create and send ----
    const dealOfKey = new Map<string, string>();
    const createAt = new Map<string, number>();
    const sendAt = new Map<string, number>();
    const stripe = sim.sim.stripe;
    sim.sim.requests.on(
      'request',
      (e: { method: string; path: string; idempotencyKey?: string; at: number }) => {
        if (e.method !== 'POST') return;
        if (e.path === '/v1/invoices') {
          const deal = e.idempotencyKey ? dealOfKey.get(e.idempotencyKey) : undefined;
          if (deal && !createAt.has(deal)) createAt.set(deal, e.at);
          return;
        }
        const m = /^\/v1\/invoices\/([A-Za-z0-9_]+)\/send$/.exec(e.path);
        if (m) {
          const deal = stripe.invoice(m[1])?.metadata.closeloop_deal_id;
          if (deal && !sendAt.has(deal)) sendAt.set(deal, e.at);
        }
      },
    );

    const prepare = async (
      count: number,
      tag: string,
      opts: {
        plan?: unknown;
        customer?: (i: number) => { company: string; email: string };
      } = {},
    ) => {
      const t0 = Date.now();
      const ids: string[] = new Array<string>(count);
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < count; i = next++) {
          const res = await fetch(`${hubUrl}/api/deals`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${adminToken}`,
              'content-type': 'application/json',
            },
            body: JSON.stringify({
              name: `Bench ${tag} ${i}`,
              customer: opts.customer?.(i) ?? {
                company: `Bench K.K. ${tag}-${i}`,
                email: `bench-${tag}-${i}@example.com`,
              },
              currency: 'jpy',
              amount: 400_000,
              stage: 'CONTRACT_SENT',
              billingPlan: opts.plan ?? SAMPLE_PLAN,
            }),
          });
          const body = (await res.json()) as { id?: string };
          if (res.status !== 201 || !body.id) {
            throw new CliError(`POST /api/deals: HTTP ${res.status} ${JSON.stringify(body)}`);
          }
          ids[i] = body.id;
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      // DocuSign is not configured here, so the hub queues no envelope job; wait for the outbox to
      // drain (and any envelope job to give up) before attaching envelope ids.
      const deadline = Date.now() + 180_000;
      for (;;) {
        const { rows } = await db.query<{ busy: number; outbox: number }>(
          `SELECT (SELECT count(*) FROM contract WHERE deal_id = ANY($1)
                    AND status IN ('PENDING', 'CREATING') AND last_error IS NULL)::int AS busy,
                  (SELECT count(*) FROM outbox)::int AS outbox`,
          [ids],
        );
        if (rows[0].busy === 0 && rows[0].outbox === 0) break;
        if (Date.now() > deadline) {
          log(`  (preparation: ${rows[0].busy} envelope jobs still pending after 180 s; going on)`);
          break;
        }
        await sleep(250);
      }
      await sleep(500);
      const envelopes = ids.map(() => randomUUID());
      await db.query(
        `INSERT INTO contract (id, deal_id, envelope_id, status, sent_at, updated_at)
         SELECT 'ctr_bench_' || md5(d), d, e, 'SENT', now(), now() FROM unnest($1::text[], $2::text[]) AS x(d, e)
         ON CONFLICT (deal_id) DO UPDATE
           SET envelope_id = EXCLUDED.envelope_id, status = 'SENT', sent_at = now(), last_error = NULL, updated_at = now()`,
        [ids, envelopes],
      );
      for (const id of ids) dealOfKey.set(idempotencyKey('invoice', `${id}|deposit`), id);
      const deals = ids.map((id, i) => ({
        id,
        delivery: docusignDelivery(completedMessage(id, envelopes[i], accountId), [hmacKey]),
      }));
      log(
        `  prepared ${count} ${tag} deals in CONTRACT_SENT with envelopes (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
      );
      return deals;
    };

    const waitForInvoices = async (ids: string[]) => {
      const deadline = Date.now() + TIMEOUT_MS;
      while (ids.some((id) => !sendAt.has(id)) && Date.now() < deadline) await sleep(50);
      return ids.filter((id) => !sendAt.has(id)).length;
    };
    const groups = (): CpuGroups => ({
      'bench+simulator': process.pid,
      hub: hub!.proc.pid!,
      postgres: 'comm:postgres',
      redis: 'comm:redis-server',
    });

    // --- (a) latency at a steady rate ---------------------------------------------------------
    const latDeals = await prepare(DEALS + WARM, 'latency');
    const postAt = new Map<string, number>();
    const ackMs = new Map<string, number>();
    const statuses: Record<string, number> = {};
    const sends: Promise<void>[] = [];
    const cpuA0 = cpuSnapshot();
    const latWall0 = Date.now();
    const tStart = now();
    for (const [i, d] of latDeals.entries()) {
      const due = tStart + (i * 1000) / RATE;
      const wait = due - now();
      if (wait > 1) await sleep(wait);
      const t = now();
      postAt.set(d.id, t);
      sends.push(
        send(hubUrl, d.delivery).then(
          (r) => {
            ackMs.set(d.id, now() - t);
            statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          },
          () => {
            statuses.error = (statuses.error ?? 0) + 1;
          },
        ),
      );
    }
    await Promise.all(sends);
    const missingA = await waitForInvoices(latDeals.map((d) => d.id));
    const latWall1 = Date.now();
    const cpuA = cpuDiff(cpuA0, cpuSnapshot(), groups());
    const measured = latDeals.slice(WARM).map((d) => d.id);
    const lat = (m: Map<string, number>) =>
      stats(measured.filter((id) => m.has(id)).map((id) => m.get(id)! - postAt.get(id)!));
    const latency = {
      deals: measured.length,
      warmupDeals: WARM,
      ratePerSec: RATE,
      webhookStatus: statuses,
      missingInvoices: missingA,
      toInvoiceCreateMs: lat(createAt),
      toInvoiceSendMs: lat(sendAt),
      webhookAckMs: stats(measured.filter((id) => ackMs.has(id)).map((id) => ackMs.get(id)!)),
      warmupToInvoiceCreateMs: stats(
        latDeals
          .slice(0, WARM)
          .filter((d) => createAt.has(d.id))
          .map((d) => createAt.get(d.id)! - postAt.get(d.id)!),
      ),
      cpu: cpuA,
    };
    log(
      `  (a) latency: ${latency.toInvoiceCreateMs.n} deals at ${RATE}/s → POST /v1/invoices ` +
        `p50 ${latency.toInvoiceCreateMs.p50} ms, p95 ${latency.toInvoiceCreateMs.p95} ms, ` +
        `p99 ${latency.toInvoiceCreateMs.p99} ms, max ${latency.toInvoiceCreateMs.max} ms` +
        (missingA ? `; ${missingA} deals without an invoice after ${TIMEOUT_MS / 1000} s` : ''),
    );

    // --- (b) throughput with the limiter lifted -----------------------------------------------
    const tpDeals = await prepare(DEALS, 'throughput');
    const tpStatuses: Record<string, number> = {};
    const cpuB0 = cpuSnapshot();
    const wall0 = Date.now();
    const tp0 = now();
    let nextDeal = 0;
    let lastAck = 0;
    const sender = async () => {
      for (let i = nextDeal++; i < tpDeals.length; i = nextDeal++) {
        const d = tpDeals[i];
        postAt.set(d.id, now());
        try {
          const r = await send(hubUrl, d.delivery);
          tpStatuses[r.status] = (tpStatuses[r.status] ?? 0) + 1;
        } catch {
          tpStatuses.error = (tpStatuses.error ?? 0) + 1;
        }
        lastAck = Math.max(lastAck, now());
      }
    };
    await Promise.all(Array.from({ length: CONNS }, sender));
    const tpIds = tpDeals.map((d) => d.id);
    const missingB = await waitForInvoices(tpIds);
    const wall1 = Date.now();
    const cpuB = cpuDiff(cpuB0, cpuSnapshot(), groups());
    const lastCreate = Math.max(
      ...tpIds.filter((id) => createAt.has(id)).map((id) => createAt.get(id)!),
    );
    const lastSend = Math.max(...tpIds.filter((id) => sendAt.has(id)).map((id) => sendAt.get(id)!));
    const issued = tpIds.length - missingB;
    const seconds = (lastSend - tp0) / 1000;
    const throughput = {
      deals: tpIds.length,
      connections: CONNS,
      webhookStatus: tpStatuses,
      missingInvoices: missingB,
      doorSeconds: +((lastAck - tp0) / 1000).toFixed(2),
      doorPerSec: Math.round(tpIds.length / ((lastAck - tp0) / 1000)),
      lastCreateSeconds: +((lastCreate - tp0) / 1000).toFixed(2),
      seconds: +seconds.toFixed(2),
      invoicesPerSec: Math.round(issued / seconds),
      toInvoiceSendMs: stats(
        tpIds.filter((id) => sendAt.has(id)).map((id) => sendAt.get(id)! - postAt.get(id)!),
      ),
      cpu: cpuB,
    };
    log(
      `  (b) throughput: ${issued}/${tpIds.length} invoices issued in ${throughput.seconds} s → ` +
        `${throughput.invoicesPerSec} invoices/s (door took all ${tpIds.length} completions in ${throughput.doorSeconds} s)`,
    );

    // --- (c) Stripe calls per invoice, deals of a few customers ---------------------------------
    const custDeals = await prepare(CUSTOMER_DEALS, 'customers', {
      plan: DEPOSIT_ONLY_PLAN,
      customer: (i) => ({
        company: `Bench Customer ${i % CUSTOMERS} K.K.`,
        email: `bench-customer-${i % CUSTOMERS}@example.com`,
      }),
    });
    const custIds = custDeals.map((d) => d.id);
    const custSet = new Set(custIds);
    const seq0 = sim.sim.requests.lastSeq;
    const custStatuses: Record<string, number> = {};
    let nextCust = 0;
    await Promise.all(
      Array.from({ length: CONNS }, async () => {
        for (let i = nextCust++; i < custDeals.length; i = nextCust++) {
          try {
            const r = await send(hubUrl, custDeals[i].delivery);
            custStatuses[r.status] = (custStatuses[r.status] ?? 0) + 1;
          } catch {
            custStatuses.error = (custStatuses.error ?? 0) + 1;
          }
        }
      }),
    );
    const missingC = await waitForInvoices(custIds);
    // Idle again: no event waiting, no outbox row, and no Stripe request for a second.
    const idleDeadline = Date.now() + 60_000;
    for (let quietSince = Date.now(), seen = sim.sim.requests.lastSeq; Date.now() < idleDeadline;) {
      await sleep(200);
      const { rows } = await db.query<{ n: number }>(
        `SELECT ((SELECT count(*) FROM outbox) +
                 (SELECT count(*) FROM webhook_event WHERE status = 'RECEIVED'))::int AS n`,
      );
      const latest = sim.sim.requests.lastSeq;
      if (latest !== seen || rows[0].n > 0) {
        seen = latest;
        quietSince = Date.now();
      } else if (Date.now() - quietSince >= 1000) break;
    }
    const custCalls = sim.sim.requests.list({ provider: 'stripe', afterSeq: seq0 });
    const byRoute: Record<string, number> = {};
    for (const e of custCalls) {
      const k = stripeRoute(e.method, e.path);
      byRoute[k] = (byRoute[k] ?? 0) + 1;
    }
    const custInvoices = stripe
      .invoices()
      .filter((inv) => custSet.has(inv.metadata.closeloop_deal_id ?? '')).length;
    const customersCalls = {
      deals: custIds.length,
      customers: CUSTOMERS,
      connections: CONNS,
      webhookStatus: custStatuses,
      missingInvoices: missingC,
      invoicesCreated: custInvoices,
      stripeRequests: custCalls.length,
      stripeRequestsByRoute: Object.fromEntries(
        Object.entries(byRoute).sort(([, a], [, b]) => b - a),
      ),
      callsPerInvoice: custInvoices ? +(custCalls.length / custInvoices).toFixed(2) : null,
    };
    log(
      `  (c) Stripe calls: ${custCalls.length} Stripe API requests for ${custInvoices} invoices of ${custIds.length} deals ` +
        `(${CUSTOMERS} customers) → ${customersCalls.callsPerInvoice ?? '—'} per invoice; ` +
        Object.entries(customersCalls.stripeRequestsByRoute)
          .map(([k, n]) => `${k} ×${n}`)
          .join(', '),
    );

    // --- exactly once -------------------------------------------------------------------------
    const perDeal = new Map<string, number>();
    for (const inv of stripe.invoices()) {
      const d = inv.metadata.closeloop_deal_id;
      if (d) perDeal.set(d, (perDeal.get(d) ?? 0) + 1);
    }
    const all = [...measured, ...tpIds, ...custIds];
    const exactlyOnce = {
      deals: all.length,
      withOneInvoice: all.filter((id) => perDeal.get(id) === 1).length,
      withMore: all.filter((id) => (perDeal.get(id) ?? 0) > 1).length,
      /** Per job name (none expected). */
      deadLetters: Object.fromEntries(
        (
          await db.query<{ job_name: string; n: number }>(
            'SELECT job_name, count(*)::int AS n FROM dead_letter GROUP BY job_name',
          )
        ).rows.map((r) => [r.job_name, r.n]),
      ) as Record<string, number>,
    };

    const rssMb = peakRssMb(hub.proc.pid);
    const exit = await hub.stop('SIGTERM');
    const exitWall = Date.now();
    hub = undefined;
    let profile: unknown;
    if (profileFile && fs.existsSync(profileFile)) {
      const summary = summarizeCpuProfile(profileFile, {
        top: 30,
        window: { fromMs: wall0, toMs: wall1, profileEndWallMs: exitWall },
      });
      log(
        `\nCPU profile of the hub during the throughput run (${path.relative(process.cwd(), profileFile)}, exit ${exit}):`,
      );
      log(formatProfileSummary(summary));
      // The latency part at its steady rate: what one deal's path costs when nothing queues.
      const latencySummary = summarizeCpuProfile(profileFile, {
        top: 30,
        window: { fromMs: latWall0, toMs: latWall1, profileEndWallMs: exitWall },
      });
      log(`\nCPU profile of the hub during the latency run (${RATE} deals/s):`);
      log(formatProfileSummary(latencySummary));
      profile = { file: profileFile, summary, latencySummary };
    }

    const c = (x: Record<string, number>) =>
      `hub ${x.hub}, pg ${x.postgres}, redis ${x.redis}, bench+sim ${x['bench+simulator']} cores; machine ${x.machineBusyPct} % busy`;
    const L = latency.toInvoiceCreateMs;
    const S = latency.toInvoiceSendMs;
    log('\nBilling results:');
    log(
      [
        `  latency, envelope-completed POST → simulator receives POST /v1/invoices (${L.n} deals at ${RATE}/s):`,
        `      p50 ${L.p50} ms   p95 ${L.p95} ms   p99 ${L.p99} ms   max ${L.max} ms   (target p50 < ${TARGETS.e2eP50Ms.value}, p99 < ${TARGETS.e2eP99Ms.value}: ${L.p50 < TARGETS.e2eP50Ms.value && L.p99 < TARGETS.e2eP99Ms.value ? 'MET' : 'NOT MET'})`,
        `    … → POST /v1/invoices/:id/send (invoice issued): p50 ${S.p50} ms, p95 ${S.p95} ms, p99 ${S.p99} ms, max ${S.max} ms`,
        `    webhook HTTP round trip: p50 ${latency.webhookAckMs.p50} ms, p99 ${latency.webhookAckMs.p99} ms; statuses ${JSON.stringify(statuses)}`,
        `    CPU: ${c(cpuA)}`,
        `  throughput, ${tpIds.length} completions fired at once (${CONNS} senders), limiter ${LIMIT}/s:`,
        `      ${throughput.invoicesPerSec} invoices/s end to end (first POST → last /send in ${throughput.seconds} s; target ≥ ${TARGETS.invoicesPerSec.value}: ${throughput.invoicesPerSec >= TARGETS.invoicesPerSec.value ? 'MET' : 'NOT MET'})`,
        `    door: ${throughput.doorPerSec} completions/s accepted; last invoice created at ${throughput.lastCreateSeconds} s; statuses ${JSON.stringify(tpStatuses)}`,
        `    per-deal POST → /send under that load: p50 ${throughput.toInvoiceSendMs.p50} ms, p99 ${throughput.toInvoiceSendMs.p99} ms`,
        `    CPU: ${c(cpuB)}`,
        `  Stripe calls per invoice, ${customersCalls.deals} deals of ${CUSTOMERS} customers (deposit on contract.signed, fired at once):`,
        `      ${customersCalls.callsPerInvoice ?? '—'} requests per invoice (${customersCalls.stripeRequests} Stripe API requests, ${customersCalls.invoicesCreated} invoices; target ≤ ${TARGETS.stripeCallsPerInvoice.value}: ${customersCalls.callsPerInvoice !== null && customersCalls.callsPerInvoice <= TARGETS.stripeCallsPerInvoice.value ? 'MET' : 'NOT MET'}; statuses ${JSON.stringify(custStatuses)})`,
        `  hub peak RSS: ${rssMb ?? '?'} MB`,
        `  exactly once: ${exactlyOnce.withOneInvoice}/${exactlyOnce.deals} deals with exactly one Stripe invoice, ${exactlyOnce.withMore} with more; dead letters ${JSON.stringify(exactlyOnce.deadLetters)}`,
      ].join('\n'),
    );
    const file = path.join(DEMO_DIR, 'bench-billing.json');
    const report = {
      startedAt: new Date(Date.now() - (exitWall - wall0)).toISOString(),
      revision: o.revision,
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
      config: {
        deals: DEALS,
        rate: RATE,
        warmup: WARM,
        connections: CONNS,
        customerDeals: CUSTOMER_DEALS,
        customers: CUSTOMERS,
        stripeRateLimit: LIMIT,
        profile: o.profile,
      },
      latency,
      throughput,
      customersCalls,
      exactlyOnce,
      rssMb,
      profile,
    };
    fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    log(`Saved ${path.relative(process.cwd(), file)}`);
    const invoicesOk = all.filter((id) => (perDeal.get(id) ?? 0) >= 1).length;
    const checks = [
      {
        what: 'every measured deal has an invoice (invoice count = deals)',
        ok: !missingA && !missingB && !missingC && invoicesOk === all.length,
        detail: `${invoicesOk}/${all.length} deals invoiced; missing (a) ${missingA}, (b) ${missingB}, (c) ${missingC}`,
      },
      {
        what: 'exactly one Stripe invoice per deal',
        ok: exactlyOnce.withMore === 0 && exactlyOnce.withOneInvoice === all.length,
        detail: `${exactlyOnce.withOneInvoice}/${all.length} with one, ${exactlyOnce.withMore} with more`,
      },
      {
        what: 'no BillingInvoiceIssue dead letter',
        ok: !exactlyOnce.deadLetters.BillingInvoiceIssue,
        detail: `dead letters ${JSON.stringify(exactlyOnce.deadLetters)}`,
      },
      {
        what: '(c) invoices created = deals',
        ok: custInvoices === custIds.length,
        detail: `${custInvoices} invoices for ${custIds.length} deals`,
      },
    ];
    const ok = checks.every((c) => c.ok);
    return {
      code: ok ? 0 : 1,
      figures: {
        invoicesPerSec: Number.isFinite(throughput.invoicesPerSec)
          ? throughput.invoicesPerSec
          : null,
        stripeCallsPerInvoice: customersCalls.callsPerInvoice,
        e2eP50Ms: L.n > 0 ? L.p50 : null,
        e2eP99Ms: L.n > 0 ? L.p99 : null,
        rssMb,
      },
      report,
      checks,
    };
  } finally {
    if (hub) await hub.stop('SIGTERM');
    await sim?.close();
    await db.end();
  }
}
