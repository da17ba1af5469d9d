/**
 * `npm run bench`: the judge of the spine's performance targets (issue "Spine v2"), on the built
 * hub, on a dedicated database (closeloop_bench, migrated here) and Redis database (db 4); each
 * part starts from empty hub tables and a flushed Redis, with fresh hub processes (LOG_LEVEL=warn).
 * Parts, in this order:
 *
 *  door       The api process ALONE (ROLE=api, no worker: its events stay queued for `drain`).
 *             Per concurrency (CONNECTIONS, default 10 and 50): waits for an idle machine, warms up
 *             for WARMUP s, precomputes every signed request of the measured run, measures for
 *             DURATION s (closed loop: each connection sends its next request when answered), and
 *             reads back how many rows the measured run stored, which must equal its 2xx count.
 *             With `--floor` the reference floor server (FLOOR_DIR, ../shared/bench/floor) runs in
 *             the same sitting with its own load test (ROUNDS rounds, alternating which goes first)
 *             and the ratio is printed. → doorVsFloorC50 (hub req/s ÷ floor req/s at c=50, median
 *             of the rounds' ratios; null without --floor), doorP99MsC50 (the hub's p99 at c=50,
 *             median of the rounds); both null when CONNECTIONS lacks 50.
 *  drain      The worker ALONE (api stopped, no load) on the backlog `door` left (every event
 *             its last round stored, warm-ups included) — or, when `door` did not run, a backlog
 *             of DRAIN_EVENTS built first with the api alone (c=DRAIN_CONNECTIONS). → drainPerSec:
 *             events finished ÷ seconds from the worker's spawn (boot included) until no event is
 *             RECEIVED (polled every 100 ms); the pace from the first to the last finished event
 *             is printed and saved too.
 *  sustained  api and worker side by side, open-loop paced load (bench-loadgen pacedLoad: request
 *             i due at t0 + i/rate, whatever the answers do) at each of SUSTAINED_RATES for
 *             SUSTAINED_S s, after a SUSTAINED_WARMUP_S s warm-up. A rate is sustained when every
 *             request got a 2xx, ≥ 95 % of them within the window (t0 … t0 + SUSTAINED_S: the door
 *             kept pace, requests did not pile up at the client), and SUSTAINED_GRACE_S s after the
 *             window every request was answered and no event was RECEIVED any more (the worker
 *             kept pace: its backlog stayed bounded); the search stops at the first rate not
 *             sustained. → sustainedPerSec: at the highest sustained rate, the step's events
 *             acknowledged and finished ÷ seconds from t0 until none was RECEIVED (polled every
 *             50 ms); 0 when not even the first rate was sustained.
 *  fairness   api and worker; deals created through POST /api/deals (stage NEGOTIATING, one
 *             milestone item, so nothing is billed). FAIRNESS_BURST valid signed (Standard
 *             Webhooks) milestone.accepted deliveries for ONE deal sent as fast as the door takes
 *             them (FAIRNESS_CONNECTIONS), while a milestone.progress probe for one of
 *             FAIRNESS_PROBE_DEALS other deals goes out every FAIRNESS_PROBE_MS ms until the burst's
 *             events are all finished (at least FAIRNESS_MIN_PROBES probes). → fairnessProbeMs: p99
 *             of probe 2xx → the probe event's processed_at.
 *  billing    ./bench-billing.ts (one ROLE=all hub against the provider simulator, port
 *             BENCH_PORT+2; results also in .demo/bench-billing.json). → invoicesPerSec (the burst
 *             of completions), stripeCallsPerInvoice (250 deals of 5 customers), e2eP50Ms/e2eP99Ms
 *             (completion → POST /v1/invoices at 10 deals/s).
 *  mixed      Not run by default: the pre-v2 ingest run, api AND worker side by side under the
 *             closed-loop load of `door` (per concurrency: req/s, p99, the worker's pace, catch-up).
 *
 * rssMb: the peak resident memory (VmHWM, read just before each is stopped) of every hub process
 * the bench ran (door api, drain worker, sustained/fairness api and worker, the billing hub).
 *
 * Ingest deliveries (door, drain, sustained, mixed): Stripe `invoice.paid` events (~1 KiB like the
 * floor's Stripe-like event), each with a distinct event id, POSTed to /webhooks/stripe with a real
 * `Stripe-Signature: t=…,v1=…` (computed directly with HMAC-SHA256 and checked once against the
 * Stripe SDK's helper). Stripe is the provider whose scheme is closest to the floor's (one
 * HMAC-SHA256 over the body), so the comparison measures the hub, not the signature scheme. The
 * invoices and deals they name do not exist, so the worker decides them without a lane (IGNORED,
 * one statement per batch). The `t=` of precomputed requests is taken when they are built, just
 * before the clock starts; Stripe allows 300 s, hence DURATION ≤ 240.
 *
 * Output: each part's lines, the tables, the checks, a summary table (figure vs target), and last
 * the summary as one JSON line. Everything goes to .demo/bench-<timestamp>.json: scenarios,
 * comparison, profile (as before), drain, sustained, fairness, billing, peakRss, checks, errors,
 * summary (the keys of ./bench-summary.ts, null when their part did not run), targets and met.
 * Exit code 1 when a check failed or a part failed; targets not met do not change it.
 *
 * Flags: --only=door,drain,sustained,fairness,billing,mixed (any subset; default: all but mixed)
 *        --floor      the floor in the same sitting (needs door)
 *        --profile    api/worker under `node --cpu-prof` (door: the api during the highest
 *                     concurrency; drain: the worker; mixed: both; billing: the hub); the profiler
 *                     costs throughput, so profiled figures are not representative
 *        --billing    only the billing part (= --only=billing); --no-billing: every part but billing
 *        --help
 * Env:   DURATION=15 WARMUP=5 CONNECTIONS=10,50 ROUNDS=1 PAYLOAD_BYTES=1024 QUIET_MAX_S=120
 *        DRAIN_MAX_S=600 DRAIN_EVENTS=60000 DRAIN_CONNECTIONS=50
 *        SUSTAINED_RATES=500,1000,1500,2000,2500,3000 SUSTAINED_S=15 SUSTAINED_GRACE_S=2
 *        SUSTAINED_WARMUP_S=3 SUSTAINED_MAX_CONNECTIONS=256
 *        FAIRNESS_BURST=3000 FAIRNESS_CONNECTIONS=50 FAIRNESS_PROBE_MS=150 FAIRNESS_MIN_PROBES=20
 *        FAIRNESS_PROBE_DEALS=20 FAIRNESS_TIMEOUT_S=300
 *        BILLING_DEALS=500 BILLING_RATE=10 BILLING_WARMUP=20 BILLING_CONNECTIONS=32
 *        BILLING_CUSTOMER_DEALS=250 BILLING_CUSTOMERS=5 BILLING_STRIPE_RATE_LIMIT=10000
 *        BILLING_TIMEOUT_S=120
 *        BENCH_DATABASE_URL (default: DATABASE_URL's server, database closeloop_bench)
 *        BENCH_REDIS_URL=redis://127.0.0.1:6379/4 BENCH_PORT=3180 (worker: +1, billing hub: +2)
 *        FLOOR_DIR=../shared/bench/floor FLOOR_PORT=3901; DB_POOL_SIZE, WORKER_CONCURRENCY and
 *        OUTBOX_POLL_MS are passed to the hub when set. WORKER=0 (formerly: the api alone) is no
 *        longer needed: that is `door`.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Redis } from 'ioredis';
import { Pool } from 'pg';

import { BillingBenchResult, runBillingBench } from './bench-billing';
import {
  API_PORT,
  BENCH_DB,
  BENCH_REDIS,
  BenchHub,
  DRAIN_MAX_S,
  PAYLOAD_BYTES,
  QUIET_MAX_S,
  RUN,
  STAMP,
  WORKER_PORT,
  checkSigning,
  log,
  median,
  num,
  peakRss,
  requests,
  resetHubStores,
  running,
  startHub,
  stopHub,
  waitForHub,
} from './bench-hub';
import {
  CpuGroups,
  LoadResult,
  cpuDiff,
  cpuSnapshot,
  rawLoad,
  waitForQuiet,
} from './bench-loadgen';
import {
  CHEAP_KIND,
  Check,
  DrainResult,
  FairnessResult,
  SustainedResult,
  runDrain,
  runFairness,
  runSustained,
} from './bench-spine';
import { SUMMARY_KEYS, Summary, TARGETS, emptySummary, metOf, summaryTable } from './bench-summary';
import {
  CliError,
  DEMO_DIR,
  ROOT,
  baseEnv,
  migrate,
  portInUse,
  redactUrl,
  sleep,
  tail,
  withDatabase,
} from './cli-support';
import { formatProfileSummary, summarizeCpuProfile } from './cpu-profile';

const PARTS = ['door', 'drain', 'sustained', 'fairness', 'billing', 'mixed'] as const;
type Part = (typeof PARTS)[number];
const DEFAULT_PARTS: Part[] = ['door', 'drain', 'sustained', 'fairness', 'billing'];

const ARGV = process.argv.slice(2);
const ARGS = new Set(ARGV.filter((a) => !a.startsWith('--only=')));
const DURATION = num('DURATION', 15);
const WARMUP = num('WARMUP', 5);
const ROUNDS = num('ROUNDS', 1);
const CONNECTIONS = (process.env.CONNECTIONS ?? '10,50').split(',').map(Number);
const FLOOR_PORT = num('FLOOR_PORT', 3901);
const FLOOR_DIR = path.resolve(ROOT, process.env.FLOOR_DIR ?? '../shared/bench/floor');
const FLOOR_DB = withDatabase(BENCH_DB, 'floor');
const FLOOR_REDIS_DB = 3; // the floor's own default (config.mjs)

/** One measured scenario, as printed and saved. */
interface Scenario extends LoadResult {
  target: 'hub' | 'floor';
  /** Hub only: `door` (the api alone) or `mixed` (api and worker side by side). */
  part?: 'door' | 'mixed';
  connections: number;
  round: number;
  sent?: number;
  warmupReqPerSec: number;
  quietBefore: { busyPct: number; waitedS: number };
  cpu: Record<string, number>;
  rows: number | null;
  rowsOk: boolean | null;
  /** Hub with a worker only: seconds after the measured run until the worker had processed every event. */
  drainSeconds?: number | null;
  processed?: number | null;
  /** Hub with a worker only: events the worker finished per second during the measured run. */
  workerPerSec?: number;
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

// --- the hub under closed-loop load (door: the api alone; mixed: api + worker) -------------------

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

interface Hubs {
  api: BenchHub;
  worker?: BenchHub;
}

async function hubScenario(
  db: Pool,
  hub: Hubs,
  part: 'door' | 'mixed',
  connections: number,
  round: number,
): Promise<Scenario & { windowMs: [number, number] }> {
  const url = `http://127.0.0.1:${API_PORT}/webhooks/stripe`;
  const prefix = `b${RUN}${part === 'mixed' ? 'x' : ''}r${round}c${connections}`;
  // The previous scenario's events: don't measure the worker's catch-up.
  if (hub.worker) await waitForDrain(db, 'evt_b%');
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
  const scenario: Scenario & { windowMs: [number, number] } = {
    target: 'hub',
    part,
    connections,
    round,
    ...r,
    sent: gen.sent(),
    warmupReqPerSec: warm.reqPerSec,
    quietBefore,
    cpu,
    rows,
    rowsOk: rows === r.ok2xx,
    windowMs: [fromMs, toMs],
  };
  if (hub.worker) {
    // The worker's pace while the api was under load (events of any scenario it finished then).
    const { rows: done } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM webhook_event
        WHERE processed_at >= to_timestamp($1 / 1000.0) AND processed_at < to_timestamp($2 / 1000.0)`,
      [fromMs, toMs],
    );
    scenario.workerPerSec = Math.round(done[0].n / ((toMs - fromMs) / 1000));
    scenario.drainSeconds = await waitForDrain(db, like);
    scenario.processed = await count(['PROCESSED', 'IGNORED']);
  }
  return scenario;
}

/** One round of `door` (the api alone) or `mixed` (api and worker) at every concurrency. */
async function runHub(
  part: 'door' | 'mixed',
  round: number,
  profile: boolean,
): Promise<{ scenarios: Scenario[]; profile?: unknown }> {
  const db = new Pool({ connectionString: BENCH_DB, max: 2 });
  const profileDir = profile ? path.join(DEMO_DIR, 'profiles') : undefined;
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
  const prof = (role: string) =>
    profileDir
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${profileDir}`,
          `--cpu-prof-name=${part}-${role}-${STAMP}.cpuprofile`,
        ]
      : [];
  let hub: Hubs | undefined;
  try {
    await resetHubStores(db);
    const worker =
      part === 'mixed'
        ? startHub(`${part} worker`, 'worker', WORKER_PORT, { nodeArgs: prof('worker') })
        : undefined;
    hub = {
      api: startHub(`${part} api`, 'api', API_PORT, { nodeArgs: prof('api') }),
      worker,
    };
    if (hub.worker) await waitForHub(hub.worker, true);
    await waitForHub(hub.api);
    log(
      `  hub: api pid ${hub.api.proc.pid} :${API_PORT}, ` +
        (hub.worker
          ? `worker pid ${hub.worker.proc.pid}`
          : 'NO worker (the api alone: its events stay queued)'),
    );
    const scenarios: (Scenario & { windowMs: [number, number] })[] = [];
    for (const c of CONNECTIONS) {
      log(`  hub c=${c}: warm-up ${WARMUP} s, measure ${DURATION} s …`);
      const s = await hubScenario(db, hub, part, c, round);
      scenarios.push(s);
      log(
        `    ${summaryLine(s)}` +
          (hub.worker
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
      if (proc) exits[role] = { code: (await stopHub(proc))!, wallMs: Date.now() };
    }
    let profileOut: unknown;
    if (profileDir) {
      // Only the samples of the last (highest-concurrency) measured run.
      const last = scenarios[scenarios.length - 1];
      const out: Record<string, unknown> = { part, connections: last.connections };
      for (const [role, exit] of Object.entries(exits)) {
        const file = path.join(profileDir, `${part}-${role}-${STAMP}.cpuprofile`);
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
    if (hub) await Promise.all([stopHub(hub.api), stopHub(hub.worker)]);
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

function summaryLine(s: Scenario): string {
  return (
    `${s.reqPerSec} req/s, p50 ${s.p50ms} ms, p99 ${s.p99ms} ms, non-2xx ${s.non2xx}, ` +
    `rows ${s.rows}/${s.ok2xx} ${s.rowsOk ? 'OK' : 'MISMATCH'}`
  );
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
          ...(s.part === 'mixed' ? [`worker ${f('worker')}`] : []),
          `pg ${f('postgres')}`,
          `redis ${f('redis')}`,
          `loadgen ${f('loadgen')}`,
          `other ${f('other')}`,
        ]
      : [`loadgen ${f('loadgen')}`, `server+pg+redis+other ${f('other')}`];
  return `${parts.join(', ')}; machine ${c.machineBusyPct} % busy`;
}

/** The results table of closed-loop scenarios (door, floor, mixed). */
function printScenarios(all: Scenario[]): void {
  const multi = ROUNDS > 1;
  const label = (s: Scenario) =>
    s.target === 'floor'
      ? 'floor (node:http)'
      : s.part === 'mixed'
        ? 'hub (api + worker)'
        : 'hub (api only)';
  const rank = (s: Scenario) => (s.target === 'floor' ? 2 : s.part === 'mixed' ? 1 : 0);
  const ordered = [...all].sort(
    (a, b) => rank(a) - rank(b) || a.connections - b.connections || a.round - b.round,
  );
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
        label(s),
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
}

interface DoorOutcome {
  scenarios: Scenario[];
  comparison?: unknown;
  profile?: unknown;
  /** Median over rounds of hub ÷ floor at c=50 (unrounded), and the hub's p99 at c=50. */
  ratioC50: number | null;
  p99C50: number | null;
}

/** The door part: the api alone at every concurrency, and with --floor the floor, ROUNDS rounds. */
async function runDoor(withFloor: boolean, profile: boolean): Promise<DoorOutcome> {
  const all: Scenario[] = [];
  let profileOut: unknown;
  for (let round = 1; round <= ROUNDS; round++) {
    if (ROUNDS > 1) log(`round ${round}/${ROUNDS}`);
    // Alternate which goes first, so neither always runs on a fresher machine.
    const order = withFloor && round % 2 === 0 ? ['floor', 'hub'] : ['hub', 'floor'];
    for (const target of order) {
      if (target === 'hub') {
        const r = await runHub('door', round, profile);
        all.push(...r.scenarios);
        profileOut ??= r.profile;
      } else if (withFloor) {
        all.push(...(await runFloor(round)));
      }
    }
  }
  const multi = ROUNDS > 1;
  log('\nResults:');
  printScenarios(all);

  const hubC50 = all.filter((s) => s.target === 'hub' && s.connections === 50);
  const p99C50 = hubC50.length ? +median(hubC50.map((s) => s.p99ms)).toFixed(2) : null;
  let comparison: unknown;
  let ratioC50: number | null = null;
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
                exactRatio: h.reqPerSec / f.reqPerSec,
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
    comparison = { perRound: perRound.map(({ exactRatio: _e, ...r }) => r), median: summary };
    const c50 = perRound.filter((r) => r.connections === 50);
    if (c50.length) ratioC50 = +median(c50.map((r) => r.exactRatio)).toFixed(3);
    log(
      `\nHub (api alone) vs floor (same sitting${multi ? `; medians of ${ROUNDS} rounds` : ''}):`,
    );
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
    if (ratioC50 !== null && p99C50 !== null) {
      const t = TARGETS.doorVsFloorC50.value;
      const p = TARGETS.doorP99MsC50.value;
      const met = ratioC50 >= t && p99C50 < p;
      log(
        `Target (Spine v2): the api alone ≥ ${t.toFixed(2)}× the floor at c=50 with p99 < ${p} ms → ` +
          `${ratioC50.toFixed(2)}×, p99 ${p99C50.toFixed(2)} ms: ${met ? 'MET' : 'NOT MET'}` +
          (profile ? ' (profiled run: not representative)' : ''),
      );
    }
  }
  return { scenarios: all, comparison, profile: profileOut, ratioC50, p99C50 };
}

/** The mixed part (not default): api and worker side by side under the closed-loop load. */
async function runMixed(profile: boolean): Promise<{ scenarios: Scenario[]; profile?: unknown }> {
  const all: Scenario[] = [];
  let profileOut: unknown;
  for (let round = 1; round <= ROUNDS; round++) {
    if (ROUNDS > 1) log(`round ${round}/${ROUNDS}`);
    const r = await runHub('mixed', round, profile);
    all.push(...r.scenarios);
    profileOut ??= r.profile;
  }
  log('\nResults (api + worker side by side, closed loop):');
  printScenarios(all);
  return { scenarios: all, profile: profileOut };
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

const USAGE =
  'usage: npm run bench -- [--only=door,drain,sustained,fairness,billing,mixed] [--floor] [--profile] ' +
  '[--billing | --no-billing] (see the header of tools/cli/bench.ts for the parts and their env)';

/** The parts to run, from the flags. */
function selectedParts(): Set<Part> {
  for (const a of ARGS) {
    if (!['--floor', '--profile', '--billing', '--no-billing', '--help'].includes(a))
      throw new CliError(`unknown option ${a}\n${USAGE}`);
  }
  if (ARGS.has('--billing') && ARGS.has('--no-billing'))
    throw new CliError('--billing runs only the billing benchmark; --no-billing skips it');
  const only = ARGV.filter((a) => a.startsWith('--only='));
  let parts = new Set<Part>(DEFAULT_PARTS);
  if (only.length) {
    if (ARGS.has('--billing')) throw new CliError('--billing is --only=billing: use one of them');
    const names = only.flatMap((a) =>
      a
        .slice('--only='.length)
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    );
    const bad = names.filter((n) => !(PARTS as readonly string[]).includes(n));
    if (bad.length || !names.length)
      throw new CliError(
        `--only: unknown part ${bad.join(', ') || '(none)'} (use ${PARTS.join(',')})`,
      );
    parts = new Set(names as Part[]);
  }
  if (ARGS.has('--billing')) parts = new Set<Part>(['billing']);
  if (ARGS.has('--no-billing')) parts.delete('billing');
  if (!parts.size) throw new CliError('no part left to run');
  if (ARGS.has('--floor') && !parts.has('door'))
    throw new CliError('--floor compares the floor with the door: add door to --only');
  return parts;
}

async function main(): Promise<number> {
  if (ARGS.has('--help')) {
    log(USAGE);
    return 0;
  }
  const parts = selectedParts();
  const withFloor = ARGS.has('--floor');
  const profile = ARGS.has('--profile');
  if (process.env.WORKER?.trim() === '0')
    log('note: WORKER=0 is no longer needed: the door part runs the api alone (--only=door)');
  const ingest = parts.has('door') || parts.has('mixed');
  if (ingest && DURATION > 240)
    throw new CliError('DURATION must be ≤ 240 s (Stripe signatures are valid for 300 s)');
  if (ingest && CONNECTIONS.some((c) => !Number.isInteger(c) || c < 1))
    throw new CliError('CONNECTIONS must be like 10,50');
  if (withFloor && !fs.existsSync(path.join(FLOOR_DIR, 'floor-server.mjs'))) {
    throw new CliError(`--floor: no floor benchmark at ${FLOOR_DIR} (set FLOOR_DIR)`);
  }
  const hubParts = [...parts].some((p) => p !== 'billing');
  const ports = [
    ...(hubParts ? [API_PORT, WORKER_PORT] : []),
    ...(parts.has('billing') ? [API_PORT + 2] : []),
    ...(withFloor ? [FLOOR_PORT] : []),
  ];
  for (const port of ports) {
    if (await portInUse(port))
      throw new CliError(`port ${port} is already in use (set BENCH_PORT / FLOOR_PORT)`);
  }
  checkSigning();
  fs.mkdirSync(DEMO_DIR, { recursive: true });

  const revision = gitRevision();
  const order = PARTS.filter((p) => parts.has(p)).sort(
    (a, b) => ORDER.indexOf(a) - ORDER.indexOf(b),
  );
  log(
    `closeloop benchmark${revision ? ` (${revision})` : ''} — ${os.cpus().length} CPUs, Node ${process.version}; ` +
      `parts: ${order.join(', ')}${withFloor ? ' (+ floor)' : ''}${profile ? '; hub under --cpu-prof' : ''}`,
  );
  if (ingest) {
    log(
      `  ingest: ${DURATION} s measured after ${WARMUP} s warm-up, c=${CONNECTIONS.join(',')}, ` +
        `${ROUNDS} round${ROUNDS > 1 ? 's' : ''}; signed Stripe invoice.paid events, ~${PAYLOAD_BYTES} B, ` +
        `distinct ids, POST /webhooks/stripe`,
    );
  }
  log(`  database ${redactUrl(BENCH_DB)}, Redis ${redactUrl(BENCH_REDIS)} (emptied first)`);
  log(`  migrating … ${(await migrate(BENCH_DB)).split('\n').pop()}`);

  const checks: Check[] = [];
  const errors: Record<string, string> = {};
  const summary: Summary = emptySummary();
  let door: DoorOutcome | undefined;
  let mixed: { scenarios: Scenario[]; profile?: unknown } | undefined;
  let drain: DrainResult | undefined;
  let sustained: SustainedResult | undefined;
  let fairness: FairnessResult | undefined;
  let billing: BillingBenchResult | undefined;

  /** Runs one part; a failure is recorded and the next part still runs. */
  const part = async (name: Part, title: string, body: () => Promise<void>) => {
    if (!parts.has(name) || interrupted) return;
    log(`\n== ${name}: ${title}`);
    const t0 = Date.now();
    try {
      await body();
    } catch (err) {
      if (interrupted) throw err;
      errors[name] = err instanceof Error ? err.message : String(err);
      log(`\n${name} FAILED: ${errors[name]}`);
      if (!(err instanceof CliError)) console.error(err);
    }
    log(`  (${name}: ${Math.round((Date.now() - t0) / 1000)} s)`);
  };

  await part(
    'door',
    'the api alone under closed-loop load' + (withFloor ? ', and the floor' : ''),
    async () => {
      door = await runDoor(withFloor, profile);
      summary.doorVsFloorC50 = door.ratioC50;
      summary.doorP99MsC50 = door.p99C50;
      const bad = door.scenarios.filter((s) => s.rowsOk === false);
      checks.push({
        part: 'door',
        what: 'rows stored = 2xx in every scenario',
        ok: bad.length === 0,
        detail: bad.length
          ? `MISMATCH in ${bad.map((s) => `${s.target} c=${s.connections} #${s.round}: ${s.rows}/${s.ok2xx}`).join(', ')}`
          : `${door.scenarios.length} scenarios`,
      });
      if (bad.length) log(`MISMATCH: stored rows differ from 2xx in ${bad.length} scenario(s)`);
    },
  );
  await part('drain', 'the worker alone on a queued backlog', async () => {
    drain = await runDrain({ backlogFromDoor: parts.has('door') && !errors.door, profile, checks });
    summary.drainPerSec = drain.perSec;
  });
  await part('mixed', 'api and worker side by side, closed loop (pre-v2 ingest run)', async () => {
    mixed = await runMixed(profile);
    const bad = mixed.scenarios.filter((s) => s.rowsOk === false);
    const left = mixed.scenarios.filter((s) => s.drainSeconds === null);
    checks.push(
      {
        part: 'mixed',
        what: 'rows stored = 2xx in every scenario',
        ok: bad.length === 0,
        detail: `${bad.length} mismatches in ${mixed.scenarios.length} scenarios`,
      },
      {
        part: 'mixed',
        what: 'the worker caught up after every run',
        ok: left.length === 0,
        detail: `${left.length} runs not drained within DRAIN_MAX_S`,
      },
    );
  });
  await part('sustained', 'api and worker side by side, paced open-loop load', async () => {
    sustained = await runSustained({ checks });
    summary.sustainedPerSec = sustained.perSec;
  });
  await part('fairness', "one deal's burst, other deals' probes", async () => {
    fairness = await runFairness({ checks });
    summary.fairnessProbeMs = acked(fairness) ? fairness.probes.toProcessedMs.p99 : null;
  });
  await part('billing', 'invoices through the provider simulator', async () => {
    billing = await runBillingBench({
      databaseUrl: BENCH_DB,
      redisUrl: BENCH_REDIS,
      port: API_PORT + 2,
      profile,
      stamp: STAMP,
      revision,
      log,
    });
    const f = billing.figures;
    summary.invoicesPerSec = f.invoicesPerSec;
    summary.stripeCallsPerInvoice = f.stripeCallsPerInvoice;
    summary.e2eP50Ms = f.e2eP50Ms;
    summary.e2eP99Ms = f.e2eP99Ms;
    peakRss.push({ process: 'billing hub (ROLE=all)', mb: f.rssMb });
    checks.push(...billing.checks.map((c) => ({ part: 'billing', ...c })));
  });
  const rss = peakRss.filter((r) => r.mb !== null).map((r) => r.mb!);
  summary.rssMb = rss.length ? Math.max(...rss) : null;

  // --- the verdict ---------------------------------------------------------------------------
  const met = metOf(summary);
  log(
    '\nPeak RSS per hub process: ' +
      peakRss.map((r) => `${r.process} ${r.mb ?? '?'} MB`).join(', '),
  );
  log('\nChecks:');
  for (const c of checks) log(`  ${c.ok ? 'OK  ' : 'FAIL'} ${c.part}: ${c.what} (${c.detail})`);
  for (const [name, message] of Object.entries(errors))
    log(`  FAIL ${name}: the part failed: ${message}`);
  log(`\nSummary (Spine v2 targets${profile ? '; PROFILED run: not representative' : ''}):`);
  log(summaryTable(summary));
  const notes = [
    drain &&
      `drainPerSec: ${drain.backlog.events} queued events (${Object.keys(drain.backlog.byType).join(', ')}; ${drain.source === 'door' ? 'left by the door part' : 'built with the api alone'}), ${drain.seconds ?? '—'} s from the worker's spawn`,
    sustained &&
      `sustainedPerSec: highest sustained offered rate ${sustained.sustainedRate ?? 'none'}${sustained.sustainedRate === null ? ` (not even ${sustained.rates[0]}/s)` : '/s'}`,
    fairness &&
      `fairnessProbeMs: ${fairness.probes.toProcessedMs.n} probes during a burst of ${fairness.burst.events} for one deal`,
  ].filter(Boolean);
  for (const n of notes) log(`  ${n}`);

  const file = path.join(DEMO_DIR, `bench-${STAMP}.json`);
  const targets = Object.fromEntries(
    SUMMARY_KEYS.map((k) => [k, { op: TARGETS[k].op, value: TARGETS[k].value }]),
  );
  fs.writeFileSync(
    file,
    `${JSON.stringify(
      {
        startedAt: new Date(Number.parseInt(RUN, 36)).toISOString(),
        revision,
        machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
        config: {
          parts: order,
          floor: withFloor,
          provider: 'stripe',
          eventType: 'invoice.paid',
          eventKind: CHEAP_KIND,
          payloadBytes: PAYLOAD_BYTES,
          duration: DURATION,
          warmup: WARMUP,
          connections: CONNECTIONS,
          rounds: ROUNDS,
          profile,
          database: redactUrl(BENCH_DB),
          redis: redactUrl(BENCH_REDIS),
        },
        scenarios: [...(door?.scenarios ?? []), ...(mixed?.scenarios ?? [])],
        comparison: door?.comparison,
        profile: door?.profile ?? mixed?.profile,
        drain,
        sustained,
        fairness,
        billing: billing?.report,
        peakRss,
        checks,
        errors,
        summary,
        targets,
        met,
      },
      null,
      2,
    )}\n`,
  );
  log(`\nSaved ${path.relative(process.cwd(), file)}`);
  log(JSON.stringify(summary));
  const failed = checks.some((c) => !c.ok) || Object.keys(errors).length > 0;
  return failed ? 1 : 0;
}

/** The order parts run in (mixed after drain: it empties the backlog the door left). */
const ORDER: Part[] = ['door', 'drain', 'mixed', 'sustained', 'fairness', 'billing'];

const acked = (f: FairnessResult) => f.probes.toProcessedMs.n > 0;

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
