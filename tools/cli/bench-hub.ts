/**
 * What the parts of `npm run bench` share (./bench.ts): the bench database and Redis, the hub's
 * ports and secrets, the signed Stripe deliveries of the ingest runs, starting and stopping hub
 * processes (with the peak memory of each, read just before it stops), and small statistics.
 * Never a code path of the hub.
 */
import { createHmac, randomBytes } from 'node:crypto';
import path from 'node:path';

import { Redis } from 'ioredis';
import { Pool } from 'pg';
import Stripe from 'stripe';

import { buildRequest, peakRssMb } from './bench-loadgen';
import {
  DEFAULT_DATABASE_URL,
  DEMO_DIR,
  HubProcess,
  spawnHub,
  waitForHttp,
  withDatabase,
} from './cli-support';

/** A positive number from the environment, or `def`; exits with a message otherwise. */
export const num = (name: string, def: number): number => {
  const raw = process.env[name]?.trim();
  const v = raw ? Number(raw) : def;
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`bench: ${name} must be a positive number, got "${raw}"`);
    process.exit(2);
  }
  return v;
};

/** A comma-separated list of positive numbers from the environment, or `def`. */
export const numList = (name: string, def: number[]): number[] => {
  const raw = process.env[name]?.trim();
  if (!raw) return def;
  const v = raw.split(',').map((x) => Number(x.trim()));
  if (v.some((x) => !Number.isFinite(x) || x <= 0)) {
    console.error(`bench: ${name} must be like ${def.join(',')}, got "${raw}"`);
    process.exit(2);
  }
  return v;
};

export const PAYLOAD_BYTES = num('PAYLOAD_BYTES', 1024);
export const API_PORT = num('BENCH_PORT', 3180);
export const WORKER_PORT = API_PORT + 1;
export const DRAIN_MAX_S = num('DRAIN_MAX_S', 600);
export const QUIET_MAX_S = num('QUIET_MAX_S', 120);
export const BENCH_DB =
  process.env.BENCH_DATABASE_URL?.trim() ||
  withDatabase(process.env.DATABASE_URL?.trim() || DEFAULT_DATABASE_URL, 'closeloop_bench');
export const BENCH_REDIS = process.env.BENCH_REDIS_URL?.trim() || 'redis://127.0.0.1:6379/4';
export const SECRET = `whsec_bench${randomBytes(16).toString('hex')}`;
/** Standard Webhooks secret of the milestone door (fairness part). */
export const MILESTONE_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
export const ADMIN_TOKEN = `bench_admin_${randomBytes(16).toString('hex')}`;
export const RUN = Date.now().toString(36);
export const STAMP = new Date().toISOString().replace(/[:.]/g, '-');

export function log(line: string): void {
  console.log(line);
}

// --- signed Stripe deliveries -------------------------------------------------------------------

/** A ~PAYLOAD_BYTES Stripe `invoice.paid` event for event id `id`. */
export function stripeEvent(id: string, i: number): Buffer {
  const deal = `cl_deal_bench_${i % 1000}`;
  const event = {
    id,
    object: 'event',
    api_version: '2025-09-30.clover',
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type: 'invoice.paid',
    data: {
      object: {
        id: `in_bench${RUN}${i}`,
        object: 'invoice',
        number: `BENCH-${i}`,
        status: 'paid',
        currency: 'jpy',
        customer: 'cus_Bench00000001',
        amount_due: 330000,
        amount_paid: 330000,
        metadata: {
          closeloop_deal_id: deal,
          closeloop_item_key: 'deposit',
          closeloop_billing_key: `${deal}:deposit`,
        },
        description: '',
      },
    },
  };
  const size = Buffer.byteLength(JSON.stringify(event));
  event.data.object.description = 'x'.repeat(Math.max(0, PAYLOAD_BYTES - size));
  return Buffer.from(JSON.stringify(event));
}

/** Stripe-Signature for `body` at `t` (unix seconds): hex HMAC-SHA256 of `${t}.${body}`. */
export function stripeHeaders(body: Buffer, t: number): Record<string, string> {
  const v1 = createHmac('sha256', SECRET).update(`${t}.`).update(body).digest('hex');
  return { 'content-type': 'application/json', 'stripe-signature': `t=${t},v1=${v1}` };
}

/** The direct HMAC must equal what Stripe's own helper (used by stripeDelivery) produces. */
export function checkSigning(): void {
  const body = stripeEvent('evt_check', 0);
  const t = Math.floor(Date.now() / 1000);
  const sdk = Stripe.webhooks.generateTestHeaderString({
    payload: body.toString(),
    secret: SECRET,
    timestamp: t,
  });
  if (sdk !== stripeHeaders(body, t)['stripe-signature']) {
    throw new Error(`signing self-check failed: ${sdk}`);
  }
}

/**
 * Requests `evt_<prefix>_<i>`: the first `count` prebuilt into one Buffer, then built on the fly
 * (unless `limit`: then undefined after `limit` requests, for a fixed-count run).
 */
export function requests(url: string, prefix: string, count: number, limit?: number) {
  const t = Math.floor(Date.now() / 1000);
  const parts: Buffer[] = [];
  const offsets = new Float64Array(count + 1);
  for (let i = 0, off = 0; i < count; i++) {
    const body = stripeEvent(`evt_${prefix}_${i}`, i);
    parts.push(buildRequest(url, stripeHeaders(body, t), body));
    offsets[i + 1] = off += parts[i].length;
  }
  const all = Buffer.concat(parts);
  parts.length = 0;
  let next = 0;
  return {
    sent: () => next,
    next(): Buffer {
      const i = next++;
      if (i < count) return all.subarray(offsets[i], offsets[i + 1]);
      const body = stripeEvent(`evt_${prefix}_${i}`, i);
      return buildRequest(url, stripeHeaders(body, Math.floor(Date.now() / 1000)), body);
    },
    /** As next(), but undefined once `limit` requests were handed out. */
    nextUpTo(): Buffer | undefined {
      return limit !== undefined && next >= limit ? undefined : this.next();
    },
  };
}

// --- hub processes ------------------------------------------------------------------------------

/**
 * Empties the hub's tables (events, outbox, and every deal with what hangs on it, as the billing
 * part does: no part finds another's deals, timers or invoices) and the bench Redis database.
 */
export async function resetHubStores(db: Pool): Promise<void> {
  await db.query(
    'TRUNCATE webhook_event, outbox, dead_letter, job_attempt, api_token, audit_log, deal, billing_item, ' +
      'invoice, contract, timeline_entry, stage_trigger, idempotency_record, crm_note, referral, report, alert, ' +
      'stripe_customer ' +
      'RESTART IDENTITY CASCADE',
  );
  const redis = new Redis(BENCH_REDIS, { maxRetriesPerRequest: 1 });
  try {
    await redis.flushdb();
  } finally {
    redis.disconnect();
  }
}

/** Processes to stop on SIGINT/SIGTERM or at the end. */
export const running: { stop: () => Promise<unknown> }[] = [];

/** Peak resident memory of every hub process this bench stopped, in stop order. */
export const peakRss: { process: string; mb: number | null }[] = [];

export interface BenchHub extends HubProcess {
  /** e.g. "door api", "drain worker" (names the RSS record and the log file). */
  name: string;
  logFile: string;
}

/**
 * Starts the built hub in role `role` on `port` against the bench database and Redis, with
 * LOG_LEVEL=warn, the Stripe webhook secret of the ingest runs and `extraEnv`. DB_POOL_SIZE,
 * WORKER_CONCURRENCY, OUTBOX_POLL_MS and EVENT_BATCH_SIZE are passed on when set.
 */
export function startHub(
  name: string,
  role: 'api' | 'worker' | 'all',
  port: number,
  opts: { extraEnv?: Record<string, string>; nodeArgs?: string[]; logName?: string } = {},
): BenchHub {
  const logFile = path.join(DEMO_DIR, opts.logName ?? `bench-${role}.log`);
  const hub = spawnHub({
    env: {
      ...Object.fromEntries(
        ['DB_POOL_SIZE', 'WORKER_CONCURRENCY', 'OUTBOX_POLL_MS', 'EVENT_BATCH_SIZE']
          .filter((n) => process.env[n]?.trim())
          .map((n) => [n, process.env[n] as string]),
      ),
      ROLE: role,
      PORT: String(port),
      DATABASE_URL: BENCH_DB,
      REDIS_URL: BENCH_REDIS,
      LOG_LEVEL: 'warn',
      PUBLIC_BASE_URL: `http://127.0.0.1:${API_PORT}`,
      STRIPE_WEBHOOK_SECRET: SECRET,
      ...opts.extraEnv,
    },
    logFile,
    nodeArgs: opts.nodeArgs,
  });
  const bench: BenchHub = { ...hub, name, logFile };
  running.push(bench);
  return bench;
}

/** Waits for a hub process: /health/ready for a worker, /health/live for an api. */
export async function waitForHub(hub: BenchHub, ready = false): Promise<void> {
  await waitForHttp(hub, ready ? '/health/ready' : '/health/live', {
    what: `the ${hub.name}`,
    logFile: hub.logFile,
  });
}

/** Reads the process's peak RSS (VmHWM), then stops it (SIGTERM); returns the exit code. */
export async function stopHub(hub: BenchHub | undefined): Promise<number | string | undefined> {
  if (!hub) return undefined;
  if (hub.proc.exitCode === null && hub.proc.signalCode === null) {
    peakRss.push({ process: hub.name, mb: peakRssMb(hub.proc.pid) });
  }
  return hub.stop('SIGTERM');
}

// --- statistics ---------------------------------------------------------------------------------

export interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles, one decimal. */
export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  const r = (v: number) => +v.toFixed(1);
  return {
    n: s.length,
    p50: r(q(0.5)),
    p95: r(q(0.95)),
    p99: r(q(0.99)),
    max: r(s[s.length - 1] ?? NaN),
    mean: r(s.reduce((a, b) => a + b, 0) / (s.length || 1)),
  };
}

export function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Event counts by status of the webhook_event rows matching `where` (params $1…). */
export async function statusCounts(
  db: Pool,
  where: string,
  params: unknown[],
): Promise<Record<string, number>> {
  const { rows } = await db.query<{ status: string; n: number }>(
    `SELECT status::text AS status, count(*)::int AS n FROM webhook_event WHERE ${where} GROUP BY status`,
    params,
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}
