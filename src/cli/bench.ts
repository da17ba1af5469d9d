/**
 * `npm run bench`: ingest benchmark of the built hub (issue 2, "Benchmark").
 *
 * Starts the hub as two processes, ROLE=api and ROLE=worker, on a dedicated database
 * (closeloop_bench, migrated here, emptied first) and a dedicated Redis database (db 4, flushed
 * first), with LOG_LEVEL=warn. Then, per concurrency (10 and 50): waits for an idle machine, warms
 * up for WARMUP s, precomputes every signed request of the measured run, measures for DURATION s,
 * and reads back how many rows the measured run stored, which must equal its 2xx count.
 *
 * Deliveries: Stripe `invoice.paid` events (~1 KiB like the floor's Stripe-like event), each with a
 * distinct event id, POSTed to /webhooks/stripe with a real `Stripe-Signature: t=…,v1=…` (the
 * scheme stripeDelivery() produces, computed directly with HMAC-SHA256 and checked once against
 * the Stripe SDK's helper). Stripe is the provider whose scheme is closest to the floor's (one
 * HMAC-SHA256 over the body), so the comparison measures the hub, not the signature scheme.
 * The `t=` of precomputed requests is taken when they are built, just before the clock starts;
 * Stripe allows 300 s, hence DURATION ≤ 240.
 *
 * With `--floor`, the reference floor server (../shared/bench/floor) is run in the same sitting
 * with its own load test, and a comparison table is printed. With `--profile`, the api and the
 * worker run under `node --cpu-prof` and the self time of each during the highest-concurrency
 * measured run is summarised (the profiler costs throughput: do not compare profiled numbers).
 *
 * Env: DURATION=15 WARMUP=5 CONNECTIONS=10,50 ROUNDS=1 PAYLOAD_BYTES=1024 QUIET_MAX_S=120
 *      DRAIN_MAX_S=600 BENCH_DATABASE_URL (default: DATABASE_URL's server, database
 *      closeloop_bench) BENCH_REDIS_URL=redis://127.0.0.1:6379/4 BENCH_PORT=3180 (worker: +1)
 *      FLOOR_DIR=../shared/bench/floor FLOOR_PORT=3901 WORKER=0 (diagnostic: no worker process,
 *      the api alone); DB_POOL_SIZE, WORKER_CONCURRENCY and
 *      OUTBOX_POLL_MS are passed to the hub when set.
 * Results are also written to .demo/bench-<timestamp>.json.
 *
 * Then the billing benchmark (./bench-billing.ts, results in .demo/bench-billing.json) runs on
 * port BENCH_PORT+2: `--billing` runs only that one, `--no-billing` skips it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Redis } from 'ioredis';
import { Pool } from 'pg';
import Stripe from 'stripe';

import {
  CpuGroups,
  LoadResult,
  buildRequest,
  cpuDiff,
  cpuSnapshot,
  rawLoad,
  waitForQuiet,
} from './bench-loadgen';
import {
  CliError,
  DEFAULT_DATABASE_URL,
  DEMO_DIR,
  HubProcess,
  ROOT,
  baseEnv,
  migrate,
  portInUse,
  redactUrl,
  sleep,
  spawnHub,
  tail,
  waitForHttp,
  withDatabase,
} from './cli-support';
import { runBillingBench } from './bench-billing';
import { formatProfileSummary, summarizeCpuProfile } from './cpu-profile';

const num = (name: string, def: number) => {
  const raw = process.env[name]?.trim();
  const v = raw ? Number(raw) : def;
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`bench: ${name} must be a positive number, got "${raw}"`);
    process.exit(2);
  }
  return v;
};

const ARGS = new Set(process.argv.slice(2));
const DURATION = num('DURATION', 15);
const WARMUP = num('WARMUP', 5);
const ROUNDS = num('ROUNDS', 1);
const QUIET_MAX_S = num('QUIET_MAX_S', 120);
const DRAIN_MAX_S = num('DRAIN_MAX_S', 600);
const PAYLOAD_BYTES = num('PAYLOAD_BYTES', 1024);
const CONNECTIONS = (process.env.CONNECTIONS ?? '10,50').split(',').map(Number);
const API_PORT = num('BENCH_PORT', 3180);
const WORKER_PORT = API_PORT + 1;
const FLOOR_PORT = num('FLOOR_PORT', 3901);
const FLOOR_DIR = path.resolve(ROOT, process.env.FLOOR_DIR ?? '../shared/bench/floor');
const BENCH_DB =
  process.env.BENCH_DATABASE_URL?.trim() ||
  withDatabase(process.env.DATABASE_URL?.trim() || DEFAULT_DATABASE_URL, 'closeloop_bench');
const FLOOR_DB = withDatabase(BENCH_DB, 'floor');
const BENCH_REDIS = process.env.BENCH_REDIS_URL?.trim() || 'redis://127.0.0.1:6379/4';
const FLOOR_REDIS_DB = 3; // the floor's own default (config.mjs)
/** WORKER=0: no worker process (the api alone; the outbox just grows). A diagnostic, not the benchmark. */
const WITH_WORKER = process.env.WORKER?.trim() !== '0';
const SECRET = `whsec_bench${randomBytes(16).toString('hex')}`;
const RUN = Date.now().toString(36);
const STAMP = new Date().toISOString().replace(/[:.]/g, '-');

/** One measured scenario, as printed and saved. */
interface Scenario extends LoadResult {
  target: 'hub' | 'floor';
  connections: number;
  round: number;
  sent?: number;
  warmupReqPerSec: number;
  quietBefore: { busyPct: number; waitedS: number };
  cpu: Record<string, number>;
  rows: number | null;
  rowsOk: boolean | null;
  /** Hub only: seconds after the measured run until the worker had processed every event. */
  drainSeconds?: number | null;
  processed?: number | null;
  /** Hub only: events the worker finished per second during the measured run. */
  workerPerSec?: number;
}

// --- requests ------------------------------------------------------------------------------------

/** A ~PAYLOAD_BYTES Stripe `invoice.paid` event for event id `id`. */
function stripeEvent(id: string, i: number): Buffer {
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
function stripeHeaders(body: Buffer, t: number): Record<string, string> {
  const v1 = createHmac('sha256', SECRET).update(`${t}.`).update(body).digest('hex');
  return { 'content-type': 'application/json', 'stripe-signature': `t=${t},v1=${v1}` };
}

/** The direct HMAC must equal what Stripe's own helper (used by stripeDelivery) produces. */
function checkSigning(): void {
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

/** Requests `evt_<prefix>_<i>`: the first `count` prebuilt into one Buffer, then built on the fly. */
function requests(url: string, prefix: string, count: number) {
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
  };
}

/** On-CPU and run-queue-wait nanoseconds of a process's main thread (Linux schedstat), or null. */
function schedstat(pid: number): [number, number] | null {
  try {
    const [cpu, wait] = fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ');
    return [Number(cpu), Number(wait)];
  } catch {
    return null;
  }
}

// --- the hub -------------------------------------------------------------------------------------

async function resetHubStores(db: Pool): Promise<void> {
  await db.query(
    'TRUNCATE webhook_event, outbox, dead_letter, job_attempt, audit_log RESTART IDENTITY CASCADE',
  );
  const redis = new Redis(BENCH_REDIS, { maxRetriesPerRequest: 1 });
  try {
    await redis.flushdb();
  } finally {
    redis.disconnect();
  }
}

function startHubProcesses(profileDir?: string): { api: HubProcess; worker?: HubProcess } {
  const env = (role: string, port: number) => ({
    ...Object.fromEntries(
      ['DB_POOL_SIZE', 'WORKER_CONCURRENCY', 'OUTBOX_POLL_MS']
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
  });
  const prof = (role: string) =>
    profileDir
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${profileDir}`,
          `--cpu-prof-name=${role}-${STAMP}.cpuprofile`,
        ]
      : [];
  const worker = WITH_WORKER
    ? spawnHub({
        env: env('worker', WORKER_PORT),
        logFile: path.join(DEMO_DIR, 'bench-worker.log'),
        nodeArgs: prof('worker'),
      })
    : undefined;
  const api = spawnHub({
    env: env('api', API_PORT),
    logFile: path.join(DEMO_DIR, 'bench-api.log'),
    nodeArgs: prof('api'),
  });
  return { api, worker };
}

/** Events of `like` not yet finished by the worker, plus the outbox backlog. */
async function backlog(db: Pool, like: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT (SELECT count(*) FROM webhook_event
              WHERE provider = 'stripe' AND provider_event_id LIKE $1 AND status IN ('RECEIVED', 'FAILED'))::int
          + (SELECT count(*) FROM outbox)::int AS n`,
    [like],
  );
  return rows[0].n;
}

async function waitForDrain(db: Pool, like: string, maxS = DRAIN_MAX_S): Promise<number | null> {
  if (!WITH_WORKER) return null;
  const t0 = Date.now();
  let lastPrint = t0;
  for (;;) {
    const left = await backlog(db, like);
    if (left === 0) return +((Date.now() - t0) / 1000).toFixed(1);
    if (Date.now() - t0 > maxS * 1000) return null;
    if (Date.now() - lastPrint > 10_000) {
      lastPrint = Date.now();
      log(`    worker backlog: ${left} events`);
    }
    await sleep(250);
  }
}

async function hubScenario(
  db: Pool,
  hub: { api: HubProcess; worker?: HubProcess },
  connections: number,
  round: number,
): Promise<Scenario & { windowMs: [number, number] }> {
  const url = `http://127.0.0.1:${API_PORT}/webhooks/stripe`;
  const prefix = `b${RUN}r${round}c${connections}`;
  await waitForDrain(db, 'evt_b%'); // the previous scenario's events: don't measure the worker's catch-up
  await db.query('CHECKPOINT');
  const quietBefore = await waitForQuiet({ maxWaitS: QUIET_MAX_S });
  const warmGen = requests(url, `${prefix}w`, 0);
  const warm = await rawLoad({ url, connections, seconds: WARMUP, next: warmGen.next });
  const gen = requests(
    url,
    `${prefix}m`,
    Math.round(warm.reqPerSec * DURATION * 1.3) + connections,
  );
  const groups: CpuGroups = {
    loadgen: process.pid,
    api: hub.api.proc.pid!,
    worker: hub.worker?.proc.pid ?? [],
    postgres: 'comm:postgres',
    redis: 'comm:redis-server',
  };
  const cpu0 = cpuSnapshot();
  const sched0 = schedstat(hub.api.proc.pid!);
  const fromMs = Date.now();
  const r = await rawLoad({ url, connections, seconds: DURATION, next: gen.next });
  const toMs = Date.now();
  const cpu = cpuDiff(cpu0, cpuSnapshot(), groups);
  const sched1 = schedstat(hub.api.proc.pid!);
  if (sched0 && sched1) {
    // The api's event loop thread: cores on CPU, and cores' worth of time it was runnable but
    // waiting for a CPU (both near 1.0 together = the thread is starved by other processes).
    const secs = (toMs - fromMs) / 1000;
    cpu.apiMainThreadOnCpu = +((sched1[0] - sched0[0]) / 1e9 / secs).toFixed(2);
    cpu.apiMainThreadRunqueueWait = +((sched1[1] - sched0[1]) / 1e9 / secs).toFixed(2);
  }
  const like = `evt_${prefix}m\\_%`;
  const count = async (statuses?: string[]) => {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM webhook_event WHERE provider = 'stripe' AND provider_event_id LIKE $1
       ${statuses ? 'AND status = ANY($2)' : ''}`,
      statuses ? [like, statuses] : [like],
    );
    return rows[0].n;
  };
  const rows = await count();
  // The worker's pace while the api was under load (events of any scenario it finished then).
  const { rows: done } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM webhook_event
      WHERE processed_at >= to_timestamp($1 / 1000.0) AND processed_at < to_timestamp($2 / 1000.0)`,
    [fromMs, toMs],
  );
  const workerPerSec = Math.round(done[0].n / ((toMs - fromMs) / 1000));
  const drainSeconds = await waitForDrain(db, like);
  const processed = await count(['PROCESSED', 'IGNORED']);
  return {
    target: 'hub',
    connections,
    round,
    ...r,
    sent: gen.sent(),
    warmupReqPerSec: warm.reqPerSec,
    quietBefore,
    cpu,
    rows,
    rowsOk: rows === r.ok2xx,
    drainSeconds,
    processed,
    workerPerSec,
    windowMs: [fromMs, toMs],
  };
}

async function runHub(
  round: number,
  profile: boolean,
): Promise<{ scenarios: Scenario[]; profile?: unknown }> {
  const db = new Pool({ connectionString: BENCH_DB, max: 2 });
  const profileDir = profile ? path.join(DEMO_DIR, 'profiles') : undefined;
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
  let hub: { api: HubProcess; worker?: HubProcess } | undefined;
  try {
    await resetHubStores(db);
    hub = startHubProcesses(profileDir);
    running.push(hub.api, ...(hub.worker ? [hub.worker] : []));
    if (hub.worker) {
      await waitForHttp(hub.worker, '/health/ready', {
        what: 'the worker',
        logFile: path.join(DEMO_DIR, 'bench-worker.log'),
      });
    }
    await waitForHttp(hub.api, '/health/live', {
      what: 'the api',
      logFile: path.join(DEMO_DIR, 'bench-api.log'),
    });
    log(
      `  hub: api pid ${hub.api.proc.pid} :${API_PORT}, ` +
        (hub.worker ? `worker pid ${hub.worker.proc.pid}` : 'NO worker (WORKER=0)'),
    );
    const scenarios: (Scenario & { windowMs: [number, number] })[] = [];
    for (const c of CONNECTIONS) {
      log(`  hub c=${c}: warm-up ${WARMUP} s, measure ${DURATION} s …`);
      const s = await hubScenario(db, hub, c, round);
      scenarios.push(s);
      log(
        `    ${summaryLine(s)}` +
          (WITH_WORKER
            ? `; worker processed ${s.workerPerSec} events/s meanwhile, ` +
              `caught up ${s.drainSeconds ?? '>' + DRAIN_MAX_S} s after the run`
            : ''),
      );
    }
    const exits: Record<string, { code: number | string; wallMs: number }> = {};
    for (const [role, proc] of [
      ['api', hub.api],
      ['worker', hub.worker],
    ] as const) {
      if (proc) exits[role] = { code: await proc.stop('SIGTERM'), wallMs: Date.now() };
    }
    let profileOut: unknown;
    if (profileDir) {
      // Only the samples of the last (highest-concurrency) measured run.
      const last = scenarios[scenarios.length - 1];
      const out: Record<string, unknown> = { connections: last.connections };
      for (const [role, exit] of Object.entries(exits)) {
        const file = path.join(profileDir, `${role}-${STAMP}.cpuprofile`);
        if (!fs.existsSync(file)) {
          log(`  no profile from the ${role} (exit ${exit.code})`);
          continue;
        }
        const summary = summarizeCpuProfile(file, {
          top: 30,
          window: {
            fromMs: last.windowMs[0],
            toMs: last.windowMs[1],
            profileEndWallMs: exit.wallMs,
          },
        });
        log(
          `\nCPU profile of the ${role} process during the c=${last.connections} measured run ` +
            `(${path.relative(process.cwd(), file)}):`,
        );
        log(formatProfileSummary(summary));
        out[role] = { file, summary };
      }
      profileOut = out;
    }
    return { scenarios: scenarios.map(({ windowMs: _w, ...s }) => s), profile: profileOut };
  } finally {
    if (hub) await Promise.all([hub.api.stop('SIGTERM'), hub.worker?.stop('SIGTERM')]);
    await db.end();
  }
}

// --- the floor -----------------------------------------------------------------------------------

function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: Record<string, string>; quiet?: boolean },
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...baseEnv(), ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
      if (!opts.quiet) process.stderr.write(d);
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out }));
  });
}

/** The floor's dependencies: `npm ci`, or, when its lock file is out of sync, `npm install --no-save`. */
async function ensureFloorDeps(): Promise<void> {
  if (fs.existsSync(path.join(FLOOR_DIR, 'node_modules', 'bullmq'))) return;
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  log(`  installing the floor's dependencies in ${FLOOR_DIR} (npm ci) …`);
  const ci = await run(npm, ['ci', '--no-audit', '--no-fund'], { cwd: FLOOR_DIR, quiet: true });
  if (ci.code === 0) return;
  // Leaves package.json and package-lock.json untouched; only node_modules/ is written.
  log('  npm ci failed (lock file out of sync?); trying npm install --no-save …');
  const inst = await run(npm, ['install', '--no-save', '--no-audit', '--no-fund'], {
    cwd: FLOOR_DIR,
    quiet: true,
  });
  if (inst.code !== 0)
    throw new CliError(`could not install the floor's dependencies:\n${inst.out}`);
}

async function runFloor(round: number): Promise<Scenario[]> {
  await ensureFloorDeps();
  const redisUrl = new URL(BENCH_REDIS);
  const env = {
    DATABASE_URL: FLOOR_DB,
    REDIS_HOST: redisUrl.hostname,
    REDIS_PORT: redisUrl.port || '6379',
    REDIS_DB: String(FLOOR_REDIS_DB),
  };
  const setup = await run(process.execPath, ['setup-db.mjs'], { cwd: FLOOR_DIR, env, quiet: true });
  if (setup.code !== 0) throw new CliError(`floor setup-db.mjs failed:\n${setup.out}`);
  const db = new Pool({ connectionString: FLOOR_DB, max: 1 });
  const redis = new Redis({
    host: env.REDIS_HOST,
    port: Number(env.REDIS_PORT),
    db: FLOOR_REDIS_DB,
  });
  await db.query('TRUNCATE inbox RESTART IDENTITY');
  await redis.flushdb();
  redis.disconnect();
  await db.query('CHECKPOINT');

  const logFile = path.join(DEMO_DIR, 'bench-floor.log');
  const out = fs.openSync(logFile, 'a');
  const server = spawn(process.execPath, ['floor-server.mjs'], {
    cwd: FLOOR_DIR,
    env: { ...baseEnv(), ...env, PORT: String(FLOOR_PORT) },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  const exited = new Promise((resolve) => server.once('exit', resolve));
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGTERM');
    await exited;
  };
  running.push({ stop });
  try {
    for (let i = 0; i < 100 && !(await portInUse(FLOOR_PORT, '127.0.0.1')); i++) await sleep(100);
    if (server.exitCode !== null) throw new CliError(`floor-server.mjs exited:\n${tail(logFile)}`);
    log(`  floor: floor-server.mjs pid ${server.pid} :${FLOOR_PORT}; its own loadtest.mjs`);
    const url = `http://127.0.0.1:${FLOOR_PORT}/webhooks/test`;
    const lt = await run(process.execPath, ['loadtest.mjs', url, ...CONNECTIONS.map(String)], {
      cwd: FLOOR_DIR,
      env: {
        ...env,
        DURATION: String(DURATION),
        WARMUP: String(WARMUP),
        QUIET_MAX_S: String(QUIET_MAX_S),
        PAYLOAD_BYTES: String(PAYLOAD_BYTES),
      },
    });
    if (lt.code !== 0) throw new CliError(`floor loadtest.mjs failed:\n${lt.out}`);
    const results = lt.out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map(
        (l) =>
          JSON.parse(l) as LoadResult & {
            connections: number;
            sent: number;
            warmupReqPerSec: number;
            quietBefore: Scenario['quietBefore'];
            cpu: Record<string, number>;
          },
      );
    const scenarios: Scenario[] = [];
    for (const r of results) {
      // loadtest.mjs names the measured run evt_x<time>c<connections>m_<n>; the inbox was emptied above.
      const { rows } = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM inbox WHERE event_id LIKE $1',
        [`evt\\_x%c${r.connections}m\\_%`],
      );
      const s: Scenario = {
        ...r,
        target: 'floor',
        round,
        rows: rows[0].n,
        rowsOk: rows[0].n === r.ok2xx,
      };
      scenarios.push(s);
      log(`  floor c=${r.connections}: ${summaryLine(s)}`);
    }
    return scenarios;
  } finally {
    await stop();
    await db.end();
  }
}

// --- output --------------------------------------------------------------------------------------

function log(line: string) {
  console.log(line);
}

function summaryLine(s: Scenario): string {
  return (
    `${s.reqPerSec} req/s, p50 ${s.p50ms} ms, p99 ${s.p99ms} ms, non-2xx ${s.non2xx}, ` +
    `rows ${s.rows}/${s.ok2xx} ${s.rowsOk ? 'OK' : 'MISMATCH'}`
  );
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function renderTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [
    line(cells[0]),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...cells.slice(1).map(line),
  ].join('\n');
}

// --- main ----------------------------------------------------------------------------------------

/** The commit being measured (with "+dirty" for local changes), or null outside a git checkout. */
function gitRevision(): string | null {
  const git = (...args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
  const head = git('rev-parse', '--short', 'HEAD');
  if (head.status !== 0) return null;
  const dirty = git('status', '--porcelain', '--untracked-files=no', '--', 'src', 'prisma');
  return `${head.stdout.trim()}${dirty.stdout.trim() ? '+dirty' : ''}`;
}

const running: { stop: () => Promise<unknown> }[] = [];

async function main(): Promise<number> {
  for (const a of ARGS) {
    if (!['--floor', '--profile', '--billing', '--no-billing'].includes(a))
      throw new CliError(`unknown option ${a} (use --floor, --profile, --billing, --no-billing)`);
  }
  if (ARGS.has('--billing') && ARGS.has('--no-billing'))
    throw new CliError('--billing runs only the billing benchmark; --no-billing skips it');
  const ingestCode = ARGS.has('--billing') ? 0 : await ingestMain();
  if (ARGS.has('--no-billing')) return ingestCode;
  const billingPort = API_PORT + 2;
  if (await portInUse(billingPort))
    throw new CliError(`port ${billingPort} is already in use (set BENCH_PORT)`);
  fs.mkdirSync(DEMO_DIR, { recursive: true });
  if (ARGS.has('--billing'))
    log(`  migrating ${redactUrl(BENCH_DB)} … ${(await migrate(BENCH_DB)).split('\n').pop()}`);
  const billing = await runBillingBench({
    databaseUrl: BENCH_DB,
    redisUrl: BENCH_REDIS,
    port: billingPort,
    profile: ARGS.has('--profile'),
    stamp: STAMP,
    revision: gitRevision(),
    log,
  });
  return ingestCode || billing.code;
}

/** The ingest benchmark (what `npm run bench` measured before the billing figures). */
async function ingestMain(): Promise<number> {
  const withFloor = ARGS.has('--floor');
  const profile = ARGS.has('--profile');
  if (DURATION > 240)
    throw new CliError('DURATION must be ≤ 240 s (Stripe signatures are valid for 300 s)');
  if (CONNECTIONS.some((c) => !Number.isInteger(c) || c < 1))
    throw new CliError('CONNECTIONS must be like 10,50');
  if (withFloor && !fs.existsSync(path.join(FLOOR_DIR, 'floor-server.mjs'))) {
    throw new CliError(`--floor: no floor benchmark at ${FLOOR_DIR} (set FLOOR_DIR)`);
  }
  for (const port of [API_PORT, WORKER_PORT, ...(withFloor ? [FLOOR_PORT] : [])]) {
    if (await portInUse(port))
      throw new CliError(`port ${port} is already in use (set BENCH_PORT / FLOOR_PORT)`);
  }
  checkSigning();
  fs.mkdirSync(DEMO_DIR, { recursive: true });

  const revision = gitRevision();
  log(
    `closeloop ingest benchmark${revision ? ` (${revision})` : ''} — ${os.cpus().length} CPUs, Node ${process.version}, ` +
      `${DURATION} s measured after ${WARMUP} s warm-up, c=${CONNECTIONS.join(',')}, ` +
      `${ROUNDS} round${ROUNDS > 1 ? 's' : ''}${profile ? ', hub under --cpu-prof' : ''}`,
  );
  log(
    `  deliveries: signed Stripe invoice.paid events, ~${PAYLOAD_BYTES} B, distinct ids, POST /webhooks/stripe`,
  );
  log(`  database ${redactUrl(BENCH_DB)}, Redis ${redactUrl(BENCH_REDIS)} (emptied first)`);
  log(`  migrating … ${(await migrate(BENCH_DB)).split('\n').pop()}`);

  const all: Scenario[] = [];
  let profileOut: unknown;
  for (let round = 1; round <= ROUNDS; round++) {
    if (ROUNDS > 1) log(`round ${round}/${ROUNDS}`);
    // Alternate which goes first, so neither always runs on a fresher machine.
    const order = withFloor && round % 2 === 0 ? ['floor', 'hub'] : ['hub', 'floor'];
    for (const target of order) {
      if (target === 'hub') {
        const r = await runHub(round, profile);
        all.push(...r.scenarios);
        profileOut ??= r.profile;
      } else if (withFloor) {
        all.push(...(await runFloor(round)));
      }
    }
  }

  const multi = ROUNDS > 1;
  const label = (target: Scenario['target']) =>
    target === 'floor'
      ? 'floor (node:http)'
      : WITH_WORKER
        ? 'hub (api + worker)'
        : 'hub (api only)';
  const ordered = [...all].sort(
    (a, b) =>
      a.target.localeCompare(b.target) * -1 || a.connections - b.connections || a.round - b.round,
  );
  log('\nResults:');
  log(
    renderTable(
      [
        'target',
        multi ? 'conc/round' : 'conc',
        'req/s',
        'p50 ms',
        'p99 ms',
        'non-2xx',
        'errors',
        '2xx',
        'stored',
        'rows=2xx',
        'CPU cores (measured run)',
      ],
      ordered.map((s) => [
        label(s.target),
        `c=${s.connections}${multi ? ` #${s.round}` : ''}`,
        s.reqPerSec,
        s.p50ms.toFixed(2),
        s.p99ms.toFixed(2),
        s.non2xx,
        s.errors + s.timeouts,
        s.ok2xx,
        s.rows ?? '—',
        s.rowsOk === null ? '—' : s.rowsOk ? 'OK' : 'MISMATCH',
        cpuText(s),
      ]),
    ),
  );

  let comparison: unknown;
  if (withFloor) {
    // Ratios are taken within a round (hub and floor measured minutes apart), then the median.
    const perRound = CONNECTIONS.flatMap((c) =>
      Array.from({ length: ROUNDS }, (_, i) => i + 1).flatMap((round) => {
        const h = all.find((s) => s.target === 'hub' && s.connections === c && s.round === round);
        const f = all.find((s) => s.target === 'floor' && s.connections === c && s.round === round);
        return h && f
          ? [
              {
                connections: c,
                round,
                hub: h.reqPerSec,
                floor: f.reqPerSec,
                ratio: +(h.reqPerSec / f.reqPerSec).toFixed(2),
                hubP99: h.p99ms,
                floorP99: f.p99ms,
              },
            ]
          : [];
      }),
    );
    const summary = CONNECTIONS.map((c) => {
      const rs = perRound.filter((r) => r.connections === c);
      return rs.length
        ? {
            connections: c,
            hub: Math.round(median(rs.map((r) => r.hub))),
            floor: Math.round(median(rs.map((r) => r.floor))),
            ratio: +median(rs.map((r) => r.ratio)).toFixed(2),
            hubP99: +median(rs.map((r) => r.hubP99)).toFixed(2),
            floorP99: +median(rs.map((r) => r.floorP99)).toFixed(2),
          }
        : undefined;
    }).filter((r) => r !== undefined);
    comparison = { perRound, median: summary };
    log(`\nHub vs floor (same sitting${multi ? `; medians of ${ROUNDS} rounds` : ''}):`);
    log(
      renderTable(
        ['conc', '', 'hub req/s', 'floor req/s', 'hub/floor', 'hub p99 ms', 'floor p99 ms'],
        summary.map((r) => [
          `c=${r.connections}`,
          '',
          r.hub,
          r.floor,
          `${r.ratio.toFixed(2)}×`,
          r.hubP99.toFixed(2),
          r.floorP99.toFixed(2),
        ]),
      ),
    );
    if (multi) {
      log(
        `  per round: ${perRound.map((r) => `c=${r.connections} #${r.round} ${r.ratio.toFixed(2)}×`).join(', ')}`,
      );
    }
    const c50 = summary.find((r) => r.connections === 50);
    if (c50) {
      const met = c50.ratio >= 0.8 && c50.hubP99 < 40;
      log(
        `Target (issue 2): ≥ 0.80× the floor at c=50 with p99 < 40 ms → ` +
          `${c50.ratio.toFixed(2)}×, p99 ${c50.hubP99.toFixed(2)} ms: ${met ? 'MET' : 'NOT MET'}` +
          (profile ? ' (profiled run: not representative)' : ''),
      );
    }
  }

  const file = path.join(DEMO_DIR, `bench-${STAMP}.json`);
  fs.writeFileSync(
    file,
    `${JSON.stringify(
      {
        startedAt: new Date(Number.parseInt(RUN, 36)).toISOString(),
        revision,
        machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
        config: {
          provider: 'stripe',
          eventType: 'invoice.paid',
          payloadBytes: PAYLOAD_BYTES,
          duration: DURATION,
          warmup: WARMUP,
          connections: CONNECTIONS,
          rounds: ROUNDS,
          worker: WITH_WORKER,
          profile,
          database: redactUrl(BENCH_DB),
          redis: redactUrl(BENCH_REDIS),
        },
        scenarios: all,
        comparison,
        profile: profileOut,
      },
      null,
      2,
    )}\n`,
  );
  log(`\nSaved ${path.relative(process.cwd(), file)}`);
  const bad = all.filter((s) => s.rowsOk === false);
  if (bad.length) log(`MISMATCH: stored rows differ from 2xx in ${bad.length} scenario(s)`);
  return bad.length ? 1 : 0;
}

function cpuText(s: Scenario): string {
  const c = s.cpu;
  const f = (k: string) => (c[k] ?? 0).toFixed(2);
  const parts =
    s.target === 'hub'
      ? [
          `api ${f('api')}` +
            (c.apiMainThreadRunqueueWait !== undefined
              ? ` (+${f('apiMainThreadRunqueueWait')} waiting for a CPU)`
              : ''),
          ...(WITH_WORKER ? [`worker ${f('worker')}`] : []),
          `pg ${f('postgres')}`,
          `redis ${f('redis')}`,
          `loadgen ${f('loadgen')}`,
          `other ${f('other')}`,
        ]
      : [`loadgen ${f('loadgen')}`, `server+pg+redis+other ${f('other')}`];
  return `${parts.join(', ')}; machine ${c.machineBusyPct} % busy`;
}

async function stopAll(): Promise<void> {
  await Promise.all(running.map((p) => p.stop().catch(() => undefined)));
}

let interrupted = false;
const onSignal = (signal: NodeJS.Signals) => {
  if (interrupted) process.exit(1);
  interrupted = true;
  log(`\n${signal}: stopping the processes this benchmark started …`);
  void stopAll().then(() => process.exit(130));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

main().then(
  async (code) => {
    await stopAll();
    process.exit(code);
  },
  async (err: unknown) => {
    console.error(err instanceof CliError ? `\nbench: ${err.message}` : err);
    await stopAll();
    process.exit(1);
  },
);
