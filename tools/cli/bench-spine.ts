/**
 * The spine parts of `npm run bench` (./bench.ts; issue "Spine v2"): the worker draining a backlog
 * on its own, api and worker side by side at a paced rate, and one deal's burst against other
 * deals' probes. See bench.ts's header for what each measures and its environment variables.
 */
import fs from 'node:fs';
import path from 'node:path';

import { Pool } from 'pg';

import { now } from '../simulator/provider-sim/request-log';
import { send, standardDelivery } from '../simulator/signed-delivery';
import {
  ADMIN_TOKEN,
  API_PORT,
  BENCH_DB,
  BenchHub,
  DRAIN_MAX_S,
  MILESTONE_SECRET,
  QUIET_MAX_S,
  RUN,
  STAMP,
  Stats,
  WORKER_PORT,
  log,
  num,
  numList,
  requests,
  resetHubStores,
  startHub,
  stats,
  statusCounts,
  stopHub,
  waitForHub,
} from './bench-hub';
import {
  CpuGroups,
  LoadResult,
  PacedResult,
  buildRequest,
  cpuDiff,
  cpuSnapshot,
  pacedLoad,
  rawLoad,
  waitForQuiet,
} from './bench-loadgen';
import { CliError, DEMO_DIR, sleep } from './cli-support';
import { ProfileSummary, formatProfileSummary, summarizeCpuProfile } from './cpu-profile';

/** One correctness check of a part (printed at the end; a failed one makes the exit code 1). */
export interface Check {
  part: string;
  what: string;
  ok: boolean;
  detail: string;
}

const DRAIN_EVENTS = num('DRAIN_EVENTS', 60_000);
const DRAIN_CONNECTIONS = num('DRAIN_CONNECTIONS', 50);
const SUSTAINED_RATES = numList('SUSTAINED_RATES', [500, 1000, 1500, 2000, 2500, 3000]);
const SUSTAINED_S = num('SUSTAINED_S', 15);
const SUSTAINED_GRACE_S = num('SUSTAINED_GRACE_S', 2);
const SUSTAINED_WARMUP_S = num('SUSTAINED_WARMUP_S', 3);
const SUSTAINED_MAX_CONNECTIONS = num('SUSTAINED_MAX_CONNECTIONS', 256);
/** A sustained step's door acknowledges at least this share of its schedule within the window. */
const SUSTAINED_MIN_IN_WINDOW = 0.95;
const FAIRNESS_BURST = num('FAIRNESS_BURST', 3000);
const FAIRNESS_CONNECTIONS = num('FAIRNESS_CONNECTIONS', 50);
const FAIRNESS_PROBE_MS = num('FAIRNESS_PROBE_MS', 150);
const FAIRNESS_MIN_PROBES = num('FAIRNESS_MIN_PROBES', 20);
const FAIRNESS_PROBE_DEALS = num('FAIRNESS_PROBE_DEALS', 20);
const FAIRNESS_TIMEOUT_S = num('FAIRNESS_TIMEOUT_S', 300);

const STRIPE_URL = `http://127.0.0.1:${API_PORT}/webhooks/stripe`;
/** What the ingest, drain and sustained runs send, and what the worker does with it. */
export const CHEAP_KIND =
  'Stripe invoice.paid (~1 KiB) about invoices the hub did not make: decided without a lane, ' +
  'IGNORED in one statement per batch';

const count = async (db: Pool, sql: string, params: unknown[] = []): Promise<number> =>
  (await db.query<{ n: number }>(sql, params)).rows[0].n;
const receivedCount = (db: Pool) =>
  count(db, `SELECT count(*)::int AS n FROM webhook_event WHERE status = 'RECEIVED'`);

const fmt = (n: number) => n.toLocaleString('en-US');

/** Waits until no event is RECEIVED (up to maxS); returns the seconds waited, or null. */
async function waitNoneReceived(db: Pool, maxS: number, pollMs = 250): Promise<number | null> {
  const t0 = Date.now();
  let lastPrint = t0;
  for (;;) {
    const left = await receivedCount(db);
    if (left === 0) return +((Date.now() - t0) / 1000).toFixed(2);
    if (Date.now() - t0 > maxS * 1000) return null;
    if (Date.now() - lastPrint > 10_000) {
      lastPrint = Date.now();
      log(`    backlog: ${fmt(left)} events RECEIVED`);
    }
    await sleep(pollMs);
  }
}

/** Stops the process with an error when it has exited (a crashed hub must not look like a slow one). */
function assertAlive(hub: BenchHub): void {
  if (hub.proc.exitCode !== null || hub.proc.signalCode !== null) {
    throw new CliError(
      `the ${hub.name} exited (${hub.proc.exitCode ?? hub.proc.signalCode}); see ${path.relative(process.cwd(), hub.logFile)}`,
    );
  }
}

// --- drain: the worker alone on a queued backlog ------------------------------------------------

export interface DrainResult {
  /** How the backlog was made: left by the door part, or built here with the api alone. */
  source: 'door' | 'built';
  built?: LoadResult & { requested: number };
  kind: string;
  backlog: { events: number; outbox: number; byType: Record<string, number> };
  quietBefore: { busyPct: number; waitedS: number };
  /** Seconds from the worker's spawn: answering /health/live, first event finished, backlog empty. */
  liveSeconds: number | null;
  firstFinishedSeconds: number | null;
  seconds: number | null;
  /** Events finished ÷ seconds from the worker's spawn until none was RECEIVED (the summary figure). */
  perSec: number | null;
  /** Same events ÷ seconds from the first to the last processed_at (the pace once running). */
  steadyPerSec: number | null;
  statuses: Record<string, number>;
  cpu: Record<string, number>;
  profile?: { file: string; summary: ProfileSummary };
}

export async function runDrain(opts: {
  backlogFromDoor: boolean;
  profile: boolean;
  checks: Check[];
}): Promise<DrainResult> {
  const db = new Pool({ connectionString: BENCH_DB, max: 2 });
  let api: BenchHub | undefined;
  let worker: BenchHub | undefined;
  try {
    let source: DrainResult['source'] = 'door';
    let built: DrainResult['built'];
    if (!opts.backlogFromDoor || (await receivedCount(db)) === 0) {
      // No backlog left by the door part: build one with the api alone.
      source = 'built';
      await resetHubStores(db);
      api = startHub('drain api', 'api', API_PORT);
      await waitForHub(api);
      log(
        `  drain: building a backlog of ${fmt(DRAIN_EVENTS)} events with the api alone (c=${DRAIN_CONNECTIONS}) …`,
      );
      const gen = requests(STRIPE_URL, `d${RUN}`, DRAIN_EVENTS, DRAIN_EVENTS);
      const r = await rawLoad({
        url: STRIPE_URL,
        connections: DRAIN_CONNECTIONS,
        seconds: 3600,
        next: () => gen.nextUpTo(),
      });
      built = { ...r, requested: DRAIN_EVENTS };
      await stopHub(api);
      api = undefined;
      log(`    ${fmt(r.ok2xx)} acknowledged at ${fmt(r.reqPerSec)} req/s, non-2xx ${r.non2xx}`);
    }
    const { rows: types } = await db.query<{ k: string; n: number }>(
      `SELECT provider || ' ' || type AS k, count(*)::int AS n FROM webhook_event
        WHERE status = 'RECEIVED' GROUP BY 1 ORDER BY 2 DESC`,
    );
    const events = types.reduce((a, t) => a + t.n, 0);
    const outbox = await count(db, 'SELECT count(*)::int AS n FROM outbox');
    const byType = Object.fromEntries(types.map((t) => [t.k, t.n]));
    await db.query('CHECKPOINT');
    const quietBefore = await waitForQuiet({ maxWaitS: QUIET_MAX_S });
    const profileDir = opts.profile ? path.join(DEMO_DIR, 'profiles') : undefined;
    if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
    const profileFile = profileDir ? path.join(profileDir, `drain-worker-${STAMP}.cpuprofile`) : '';
    log(
      `  drain: ${fmt(events)} queued events (${Object.entries(byType)
        .map(([k, n]) => `${k} ×${fmt(n)}`)
        .join(', ')}; outbox ${fmt(outbox)} rows), api stopped; starting the worker alone …`,
    );

    const cpu0 = cpuSnapshot();
    const t0 = Date.now();
    worker = startHub('drain worker', 'worker', WORKER_PORT, {
      nodeArgs: profileDir
        ? [
            '--cpu-prof',
            `--cpu-prof-dir=${profileDir}`,
            `--cpu-prof-name=${path.basename(profileFile)}`,
          ]
        : [],
    });
    // /health/live, not /health/ready: readiness fails while the queue backlog is high, and its
    // polling would cost the worker CPU during the drain.
    let readyAt: number | null = null;
    const ready = waitForHub(worker).then(() => (readyAt = Date.now()));
    ready.catch(() => undefined);
    let emptyAt: number | null = null;
    let lastPrint = t0;
    for (;;) {
      assertAlive(worker);
      const left = await receivedCount(db);
      if (left === 0) {
        emptyAt = Date.now();
        break;
      }
      if (Date.now() - t0 > DRAIN_MAX_S * 1000) break;
      if (Date.now() - lastPrint > 10_000) {
        lastPrint = Date.now();
        log(
          `    ${fmt(left)} events still RECEIVED after ${Math.round((lastPrint - t0) / 1000)} s`,
        );
      }
      await sleep(100);
    }
    const cpu = cpuDiff(cpu0, cpuSnapshot(), {
      worker: worker.proc.pid!,
      postgres: 'comm:postgres',
      redis: 'comm:redis-server',
      bench: process.pid,
    });
    await ready;
    const { rows: span } = await db.query<{ first: number | null; last: number | null }>(
      `SELECT (extract(epoch FROM min(processed_at)) * 1000)::float8 AS first,
              (extract(epoch FROM max(processed_at)) * 1000)::float8 AS last
         FROM webhook_event WHERE processed_at >= to_timestamp($1 / 1000.0)`,
      [t0],
    );
    const statuses = await statusCounts(db, 'true', []);
    const exit = await stopHub(worker);
    const exitWall = Date.now();
    worker = undefined;
    let profile: DrainResult['profile'];
    if (profileFile && fs.existsSync(profileFile) && emptyAt) {
      const summary = summarizeCpuProfile(profileFile, {
        top: 30,
        window: { fromMs: t0, toMs: emptyAt, profileEndWallMs: exitWall },
      });
      log(
        `\nCPU profile of the worker during the drain (${path.relative(process.cwd(), profileFile)}, exit ${exit}):`,
      );
      log(formatProfileSummary(summary));
      profile = { file: profileFile, summary };
    }
    const seconds = emptyAt ? (emptyAt - t0) / 1000 : null;
    const first = span[0].first;
    const last = span[0].last;
    const result: DrainResult = {
      source,
      built,
      kind: CHEAP_KIND,
      backlog: { events, outbox, byType },
      quietBefore,
      liveSeconds: readyAt ? +((readyAt - t0) / 1000).toFixed(2) : null,
      firstFinishedSeconds: first ? +((first - t0) / 1000).toFixed(2) : null,
      seconds: seconds === null ? null : +seconds.toFixed(2),
      perSec: seconds ? Math.round(events / seconds) : null,
      steadyPerSec:
        first && last && last > first ? Math.round(events / ((last - first) / 1000)) : null,
      statuses,
      cpu,
      profile,
    };
    log(
      `    ${seconds === null ? `NOT drained within ${DRAIN_MAX_S} s (DRAIN_MAX_S)` : `drained in ${result.seconds} s from the worker's spawn`}` +
        ` (live after ${result.liveSeconds ?? '?'} s, first event finished at ${result.firstFinishedSeconds ?? '?'} s)` +
        ` → ${result.perSec === null ? '—' : fmt(result.perSec)} events/s` +
        ` (${result.steadyPerSec === null ? '—' : fmt(result.steadyPerSec)}/s first→last finished); ` +
        `statuses ${JSON.stringify(statuses)}; CPU worker ${cpu.worker}, pg ${cpu.postgres}, redis ${cpu.redis} cores`,
    );
    const built2xxOk = !built || built.ok2xx === built.requested;
    opts.checks.push(
      {
        part: 'drain',
        what: 'no event left RECEIVED',
        ok: emptyAt !== null && !statuses.RECEIVED,
        detail: `${statuses.RECEIVED ?? 0} RECEIVED after the drain`,
      },
      {
        part: 'drain',
        what: 'no event FAILED or DEAD',
        ok: !statuses.FAILED && !statuses.DEAD,
        detail: `FAILED ${statuses.FAILED ?? 0}, DEAD ${statuses.DEAD ?? 0}`,
      },
      ...(built
        ? [
            {
              part: 'drain',
              what: 'backlog built: every request acknowledged and stored',
              ok: built2xxOk && events >= built.ok2xx,
              detail: `${built.ok2xx}/${built.requested} 2xx, ${events} RECEIVED`,
            },
          ]
        : []),
    );
    return result;
  } finally {
    await stopHub(api);
    await stopHub(worker);
    await db.end();
  }
}

// --- sustained: api and worker side by side at a paced rate --------------------------------------

export interface SustainedStep extends PacedResult {
  rate: number;
  /** Events of the step stored (must equal its 2xx count). */
  stored: number;
  /** Of the step's events, those finished by the end of the grace, and the rest. */
  finished: number;
  leftAfterGrace: number;
  /**
   * Seconds from the first scheduled request until the last answer, and until no event was
   * RECEIVED any more (polled every 50 ms; null: not within the window + grace).
   */
  answeredSeconds: number;
  settledSeconds: number | null;
  /**
   * Events acknowledged and finished per second: the step's finished events ÷ seconds from the
   * first scheduled request until none was RECEIVED (until the window + grace when it never was).
   */
  finishedPerSec: number;
  /** Events the worker finished per second during the run (any step's). */
  workerPerSecDuring: number;
  /** Largest RECEIVED count sampled every second during the run, and at its end. */
  maxBacklog: number;
  backlogAtEnd: number;
  sustained: boolean;
  why: string;
  cpu: Record<string, number>;
}

export interface SustainedResult {
  kind: string;
  rates: number[];
  seconds: number;
  graceSeconds: number;
  quietBefore: { busyPct: number; waitedS: number };
  steps: SustainedStep[];
  /** The highest sustained step's finishedPerSec (0: none was sustained). */
  perSec: number;
  sustainedRate: number | null;
  statuses: Record<string, number>;
}

export async function runSustained(opts: { checks: Check[] }): Promise<SustainedResult> {
  if (SUSTAINED_S > 240)
    throw new CliError('SUSTAINED_S must be ≤ 240 s (Stripe signatures are valid for 300 s)');
  const db = new Pool({ connectionString: BENCH_DB, max: 3 });
  let api: BenchHub | undefined;
  let worker: BenchHub | undefined;
  try {
    await resetHubStores(db);
    worker = startHub('sustained worker', 'worker', WORKER_PORT);
    api = startHub('sustained api', 'api', API_PORT);
    await waitForHub(worker, true);
    await waitForHub(api);
    log(
      `  sustained: api pid ${api.proc.pid}, worker pid ${worker.proc.pid}; paced ${SUSTAINED_S} s per rate ` +
        `(${SUSTAINED_RATES.join(', ')}/s; stop at the first not sustained), grace ${SUSTAINED_GRACE_S} s`,
    );
    const w = await pacedLoad({
      url: STRIPE_URL,
      rate: SUSTAINED_RATES[0],
      seconds: SUSTAINED_WARMUP_S,
      next: requests(STRIPE_URL, `s${RUN}w`, 0).next,
      maxConnections: SUSTAINED_MAX_CONNECTIONS,
    });
    await waitNoneReceived(db, DRAIN_MAX_S);
    log(`    warm-up: ${w.ok2xx} events at ${SUSTAINED_RATES[0]}/s, all finished`);
    await db.query('CHECKPOINT');
    const quietBefore = await waitForQuiet({ maxWaitS: QUIET_MAX_S });
    const steps: SustainedStep[] = [];
    for (const rate of SUSTAINED_RATES) {
      assertAlive(api);
      assertAlive(worker);
      const prefix = `s${RUN}x${rate}`;
      const gen = requests(STRIPE_URL, prefix, Math.ceil(rate * SUSTAINED_S) + 16);
      let maxBacklog = 0;
      let sample: Promise<void> | undefined;
      const sampler = setInterval(() => {
        sample ??= receivedCount(db)
          .then((n) => void (maxBacklog = Math.max(maxBacklog, n)))
          .catch(() => undefined)
          .finally(() => (sample = undefined));
      }, 1000);
      const cpu0 = cpuSnapshot();
      const fromMs = Date.now();
      const r = await pacedLoad({
        url: STRIPE_URL,
        rate,
        seconds: SUSTAINED_S,
        next: gen.next,
        maxConnections: SUSTAINED_MAX_CONNECTIONS,
      });
      const toMs = Date.now();
      const cpu = cpuDiff(cpu0, cpuSnapshot(), {
        loadgen: process.pid,
        api: api.proc.pid!,
        worker: worker.proc.pid!,
        postgres: 'comm:postgres',
        redis: 'comm:redis-server',
      } satisfies CpuGroups);
      clearInterval(sampler);
      await sample;
      // The window is the schedule (t0 … t0 + SUSTAINED_S); everything offered in it must be
      // acknowledged and finished within the grace after it.
      const t0 = r.startedAtMs;
      const deadline = t0 + (SUSTAINED_S + SUSTAINED_GRACE_S) * 1000;
      let settledAt: number | null = null;
      let backlogAtEnd: number | undefined;
      for (;;) {
        const left = await receivedCount(db);
        const at = Date.now();
        if (backlogAtEnd === undefined) {
          backlogAtEnd = left;
          maxBacklog = Math.max(maxBacklog, left);
        }
        if (left === 0) {
          settledAt = at <= deadline ? at : null;
          break;
        }
        if (at > deadline) break;
        await sleep(50);
      }
      const like = `evt_${prefix}\\_%`;
      const { rows } = await db.query<{ stored: number; finished: number }>(
        `SELECT count(*)::int AS stored, count(*) FILTER (WHERE status <> 'RECEIVED')::int AS finished
           FROM webhook_event WHERE provider = 'stripe' AND provider_event_id LIKE $1`,
        [like],
      );
      const during = await count(
        db,
        `SELECT count(*)::int AS n FROM webhook_event
          WHERE processed_at >= to_timestamp($1 / 1000.0) AND processed_at < to_timestamp($2 / 1000.0)`,
        [fromMs, toMs],
      );
      const { stored, finished } = rows[0];
      const finishedOk = Math.min(finished, r.ok2xx);
      const answeredSeconds = +((toMs - t0) / 1000).toFixed(2);
      const problems = [
        r.non2xx + r.errors + r.timeouts > 0
          ? `${r.non2xx} non-2xx, ${r.errors + r.timeouts} errors`
          : '',
        r.ok2xxInWindow < SUSTAINED_MIN_IN_WINDOW * r.offered
          ? `the door acknowledged ${fmt(r.ok2xxInWindow)} of ${fmt(r.offered)} within the window ` +
            `(< ${SUSTAINED_MIN_IN_WINDOW * 100} %: requests queue at the client)`
          : '',
        toMs > deadline
          ? `the door answered its last request ${answeredSeconds} s after t0 (> ${SUSTAINED_S} + ${SUSTAINED_GRACE_S} s)`
          : settledAt === null
            ? `${fmt(stored - finished)} of its events still RECEIVED ${SUSTAINED_GRACE_S} s after the window`
            : '',
      ].filter(Boolean);
      const settledSeconds = settledAt === null ? null : +((settledAt - t0) / 1000).toFixed(2);
      const step: SustainedStep = {
        ...r,
        rate,
        stored,
        finished,
        leftAfterGrace: stored - finished,
        answeredSeconds,
        settledSeconds,
        finishedPerSec: Math.round(
          finishedOk /
            (settledSeconds ?? Math.max(answeredSeconds, SUSTAINED_S + SUSTAINED_GRACE_S)),
        ),
        workerPerSecDuring: Math.round(during / ((toMs - fromMs) / 1000)),
        maxBacklog,
        backlogAtEnd: backlogAtEnd ?? 0,
        sustained: problems.length === 0,
        why:
          problems.join('; ') ||
          `everything acknowledged and finished ${settledSeconds} s after t0 (window ${SUSTAINED_S} s + grace ${SUSTAINED_GRACE_S} s)`,
        cpu,
      };
      steps.push(step);
      log(
        `    ${rate}/s offered: ${fmt(r.ok2xx)} acknowledged (${fmt(r.ok2xxInWindow)} within the window; ${r.ackPerSec}/s, p50 ${r.p50ms} ms, p99 ${r.p99ms} ms from schedule, ` +
          `send lag ≤ ${r.maxSendLagMs} ms, ${r.connectionsOpened} conns), ${fmt(finishedOk)} finished → ${step.finishedPerSec}/s; ` +
          `backlog ≤ ${fmt(maxBacklog)}, ${fmt(backlogAtEnd)} at the end, all finished ${settledSeconds ?? '>' + (SUSTAINED_S + SUSTAINED_GRACE_S)} s after t0; ` +
          `CPU api ${cpu.api}, worker ${cpu.worker}, pg ${cpu.postgres}, machine ${cpu.machineBusyPct} %: ` +
          (step.sustained ? 'SUSTAINED' : `NOT sustained (${step.why})`),
      );
      if (stored !== r.ok2xx) {
        opts.checks.push({
          part: 'sustained',
          what: `${rate}/s: rows stored = 2xx`,
          ok: false,
          detail: `${stored} stored, ${r.ok2xx} 2xx`,
        });
      }
      if (!step.sustained) break;
      await sleep(1000);
    }
    // Whatever the last step left must still be finished (not just late).
    const settled = await waitNoneReceived(db, DRAIN_MAX_S);
    const statuses = await statusCounts(db, 'true', []);
    const best = [...steps].reverse().find((s) => s.sustained);
    opts.checks.push(
      {
        part: 'sustained',
        what: 'rows stored = 2xx in every step',
        ok: steps.every((s) => s.stored === s.ok2xx),
        detail: steps.map((s) => `${s.rate}/s ${s.stored}/${s.ok2xx}`).join(', '),
      },
      {
        part: 'sustained',
        what: 'no event left RECEIVED',
        ok: settled !== null && !statuses.RECEIVED,
        detail:
          settled === null
            ? `${statuses.RECEIVED ?? 0} still RECEIVED after ${DRAIN_MAX_S} s`
            : `all finished (${settled} s after the last step)`,
      },
      {
        part: 'sustained',
        what: 'no event FAILED or DEAD',
        ok: !statuses.FAILED && !statuses.DEAD,
        detail: `FAILED ${statuses.FAILED ?? 0}, DEAD ${statuses.DEAD ?? 0}`,
      },
    );
    return {
      kind: CHEAP_KIND,
      rates: SUSTAINED_RATES,
      seconds: SUSTAINED_S,
      graceSeconds: SUSTAINED_GRACE_S,
      quietBefore,
      steps,
      perSec: best?.finishedPerSec ?? 0,
      sustainedRate: best?.rate ?? null,
      statuses,
    };
  } finally {
    await stopHub(api);
    await stopHub(worker);
    await db.end();
  }
}

// --- fairness: one deal's burst against other deals' probes -------------------------------------

/** One lane's worth of work: a deal whose only item bills on milestone.accepted. */
const FAIRNESS_PLAN = {
  currency: 'jpy',
  taxRatePercent: 10,
  billingCount: 'one_time',
  items: [{ key: 'm1', label: 'Milestone', amount: 400_000, trigger: 'milestone.accepted' }],
};

async function createDeal(hubUrl: string, name: string, i: number): Promise<string> {
  const res = await fetch(`${hubUrl}/api/deals`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name,
      customer: { company: `Fairness K.K. ${i}`, email: `fairness-${RUN}-${i}@example.com` },
      currency: 'jpy',
      amount: 400_000,
      // Before WON: accepting the milestone records it (timeline, item) but bills nothing, so
      // this part needs no Stripe.
      stage: 'NEGOTIATING',
      billingPlan: FAIRNESS_PLAN,
    }),
  });
  const body = (await res.json()) as { id?: string };
  if (res.status !== 201 || !body.id) {
    throw new CliError(`POST /api/deals: HTTP ${res.status} ${JSON.stringify(body)}`);
  }
  return body.id;
}

export interface FairnessResult {
  burst: {
    events: number;
    type: string;
    connections: number;
    door: LoadResult;
    /** From the first burst POST until the last finished burst event's processed_at. */
    finishedSeconds: number | null;
    /** Burst events finished ÷ finishedSeconds (the one lane's pace). */
    lanePerSec: number | null;
    statuses: Record<string, number>;
  };
  probes: {
    sent: number;
    type: string;
    deals: number;
    intervalMs: number;
    statuses: Record<string, number>;
    httpStatuses: Record<string, number>;
    /** 2xx → processed_at (the event row's own stamp; the summary figure is p99). */
    toProcessedMs: Stats;
    /** 2xx → first poll (every 50 ms) that saw the event finished: an upper bound. */
    toObservedMs: Stats;
    ackMs: Stats;
  };
  quietBefore: { busyPct: number; waitedS: number };
  seconds: number;
}

export async function runFairness(opts: { checks: Check[] }): Promise<FairnessResult> {
  const db = new Pool({ connectionString: BENCH_DB, max: 3 });
  const hubUrl = `http://127.0.0.1:${API_PORT}`;
  const env = { ADMIN_TOKEN, MILESTONE_WEBHOOK_SECRET: MILESTONE_SECRET };
  let api: BenchHub | undefined;
  let worker: BenchHub | undefined;
  try {
    await resetHubStores(db);
    worker = startHub('fairness worker', 'worker', WORKER_PORT, { extraEnv: env });
    api = startHub('fairness api', 'api', API_PORT, { extraEnv: env });
    await waitForHub(worker, true);
    await waitForHub(api);

    // Deals through the admin API: one for the burst, FAIRNESS_PROBE_DEALS for the probes.
    const names = [
      `Fairness burst ${RUN}`,
      ...Array.from({ length: FAIRNESS_PROBE_DEALS }, (_, i) => `Fairness probe ${RUN} ${i}`),
    ];
    const ids: string[] = new Array<string>(names.length);
    let nextDeal = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = nextDeal++; i < names.length; i = nextDeal++)
          ids[i] = await createDeal(hubUrl, names[i], i);
      }),
    );
    const [burstDeal, ...probeDeals] = ids;
    // Let the deals' own side effects (outbox rows, jobs) settle first.
    for (let i = 0; i < 600; i++) {
      const busy = await count(
        db,
        `SELECT ((SELECT count(*) FROM outbox) + (SELECT count(*) FROM webhook_event WHERE status = 'RECEIVED'))::int AS n`,
      );
      if (busy === 0) break;
      await sleep(100);
    }
    log(
      `  fairness: deals ${burstDeal} (burst) and ${probeDeals.length} probe deals created through POST /api/deals (stage NEGOTIATING, one milestone item)`,
    );

    await db.query('CHECKPOINT');
    const quietBefore = await waitForQuiet({ maxWaitS: QUIET_MAX_S });
    // Signed just before they are sent (Standard Webhooks allows 5 minutes).
    const url = `${hubUrl}/webhooks/milestones`;
    const acceptedAt = new Date().toISOString();
    const burstId = (i: number) => `msg_fb${RUN}_${i}`;
    const burst = Array.from({ length: FAIRNESS_BURST }, (_, i) => {
      const d = standardDelivery(
        '/webhooks/milestones',
        {
          type: 'milestone.accepted',
          timestamp: acceptedAt,
          data: {
            dealId: burstDeal,
            itemKey: 'm1',
            acceptedAt,
            acceptedBy: `client-${i}@example.com`,
          },
        },
        { secret: MILESTONE_SECRET, id: burstId(i) },
      );
      return buildRequest(url, d.headers, Buffer.from(d.body));
    });
    const probeDelivery = (k: number) =>
      standardDelivery(
        '/webhooks/milestones',
        {
          type: 'milestone.progress',
          timestamp: new Date().toISOString(),
          data: {
            dealId: probeDeals[k % probeDeals.length],
            itemKey: 'm1',
            progressPercent: Math.min(99, 1 + Math.floor(k / probeDeals.length)),
          },
        },
        { secret: MILESTONE_SECRET, id: `msg_fp${RUN}_${k}` },
      );

    log(
      `    burst: ${FAIRNESS_BURST} signed milestone.accepted for ${burstDeal} (c=${FAIRNESS_CONNECTIONS}); ` +
        `probes: milestone.progress for the other deals every ${FAIRNESS_PROBE_MS} ms …`,
    );

    const t0 = now();
    const wall0 = Date.now();
    let bi = 0;
    let burstDoor: LoadResult | undefined;
    const burstRun = rawLoad({
      url,
      connections: FAIRNESS_CONNECTIONS,
      seconds: 3600,
      next: () => (bi < burst.length ? burst[bi++] : undefined),
    }).then((r) => (burstDoor = r));

    interface Probe {
      id: string;
      sentAt: number;
      ackAt?: number;
      status?: number;
      seenAt?: number;
    }
    const probes: Probe[] = [];
    const probeSends: Promise<void>[] = [];
    let burstLeft = FAIRNESS_BURST;
    let stop = false;
    let halt = false;
    let timedOut = false;
    // Watches the burst (how many of its events are still unfinished) and the probes (when each is
    // first seen finished) every 50 ms.
    const watcher = (async () => {
      let lastBurstPoll = 0;
      while (
        !halt &&
        (!stop || probes.some((p) => p.ackAt !== undefined && p.seenAt === undefined))
      ) {
        const open = probes.filter((p) => p.ackAt !== undefined && p.seenAt === undefined);
        if (open.length) {
          const { rows } = await db.query<{ id: string }>(
            `SELECT provider_event_id AS id FROM webhook_event
              WHERE provider = 'milestones' AND provider_event_id = ANY($1) AND status <> 'RECEIVED'`,
            [open.map((p) => p.id)],
          );
          const seen = now();
          const done = new Set(rows.map((r) => r.id));
          for (const p of open) if (done.has(p.id)) p.seenAt = seen;
        }
        if (!stop && Date.now() - lastBurstPoll >= 250) {
          lastBurstPoll = Date.now();
          // Not stored yet counts as unfinished too.
          const finished = await count(
            db,
            `SELECT count(*)::int AS n FROM webhook_event
              WHERE provider = 'milestones' AND subject_key = $1 AND status <> 'RECEIVED'
                AND provider_event_id LIKE $2`,
            [`deal:${burstDeal}`, `msg\\_fb${RUN}\\_%`],
          );
          burstLeft = (burstDoor?.ok2xx ?? FAIRNESS_BURST) - finished;
        }
        await sleep(50);
      }
    })();
    for (let k = 0; ; k++) {
      const wait = t0 + k * FAIRNESS_PROBE_MS - now();
      if (wait > 1) await sleep(wait);
      if (burstDoor && burstLeft <= 0 && k >= FAIRNESS_MIN_PROBES) break;
      if (Date.now() - wall0 > FAIRNESS_TIMEOUT_S * 1000) {
        timedOut = true;
        break;
      }
      const d = probeDelivery(k);
      const p: Probe = { id: d.headers['webhook-id'], sentAt: now() };
      probes.push(p);
      probeSends.push(
        send(hubUrl, d, {}, { timeoutMs: 10_000 }).then(
          (r) => {
            p.status = r.status;
            if (r.status >= 200 && r.status < 300) p.ackAt = now();
          },
          () => {
            p.status = 0;
          },
        ),
      );
    }
    await burstRun;
    await Promise.all(probeSends);
    stop = true;
    const probeDeadline = Date.now() + 60_000;
    while (
      probes.some((p) => p.ackAt !== undefined && p.seenAt === undefined) &&
      Date.now() < probeDeadline
    ) {
      await sleep(50);
    }
    halt = true;
    await watcher;
    const seconds = (Date.now() - wall0) / 1000;

    const { rows: probeRows } = await db.query<{ id: string; status: string; at: number | null }>(
      `SELECT provider_event_id AS id, status::text AS status,
              (extract(epoch FROM processed_at) * 1000)::float8 AS at
         FROM webhook_event WHERE provider = 'milestones' AND provider_event_id = ANY($1)`,
      [probes.map((p) => p.id)],
    );
    const processedAt = new Map(probeRows.map((r) => [r.id, r.at]));
    const probeStatuses: Record<string, number> = {};
    for (const r of probeRows) probeStatuses[r.status] = (probeStatuses[r.status] ?? 0) + 1;
    const httpStatuses: Record<string, number> = {};
    for (const p of probes)
      httpStatuses[String(p.status)] = (httpStatuses[String(p.status)] ?? 0) + 1;
    const acked = probes.filter((p) => p.ackAt !== undefined);
    const toProcessed = acked
      .filter((p) => processedAt.get(p.id) != null)
      .map((p) => processedAt.get(p.id)! - p.ackAt!);
    const toObserved = acked.filter((p) => p.seenAt !== undefined).map((p) => p.seenAt! - p.ackAt!);

    const burstWhere = `provider = 'milestones' AND provider_event_id LIKE $1`;
    const burstLike = `msg\\_fb${RUN}\\_%`;
    const burstStatuses = await statusCounts(db, burstWhere, [burstLike]);
    const { rows: burstSpan } = await db.query<{ last: number | null }>(
      `SELECT (extract(epoch FROM max(processed_at)) * 1000)::float8 AS last FROM webhook_event WHERE ${burstWhere}`,
      [burstLike],
    );
    const finishedSeconds = burstSpan[0].last
      ? +((burstSpan[0].last - t0) / 1000).toFixed(2)
      : null;
    const door = burstDoor!;
    const result: FairnessResult = {
      burst: {
        events: FAIRNESS_BURST,
        type: 'milestone.accepted (one deal, one lane)',
        connections: FAIRNESS_CONNECTIONS,
        door,
        finishedSeconds,
        lanePerSec: finishedSeconds
          ? Math.round((door.ok2xx - (burstStatuses.RECEIVED ?? 0)) / finishedSeconds)
          : null,
        statuses: burstStatuses,
      },
      probes: {
        sent: probes.length,
        type: 'milestone.progress (other deals, each its own lane)',
        deals: probeDeals.length,
        intervalMs: FAIRNESS_PROBE_MS,
        statuses: probeStatuses,
        httpStatuses,
        toProcessedMs: stats(toProcessed),
        toObservedMs: stats(toObserved),
        ackMs: stats(acked.map((p) => p.ackAt! - p.sentAt)),
      },
      quietBefore,
      seconds: +seconds.toFixed(1),
    };
    const P = result.probes.toProcessedMs;
    log(
      `    burst: door took ${door.ok2xx}/${FAIRNESS_BURST} in ${door.seconds} s (${door.reqPerSec} req/s, non-2xx ${door.non2xx}); ` +
        `${burstStatuses.RECEIVED ? `${burstStatuses.RECEIVED} still RECEIVED; the last finished one` : 'the last burst event'} finished ` +
        `${finishedSeconds ?? '?'} s after the first POST (${result.burst.lanePerSec ?? '—'} events/s through one lane); ` +
        `statuses ${JSON.stringify(burstStatuses)}`,
    );
    log(
      `    probes: ${probes.length} sent, HTTP ${JSON.stringify(httpStatuses)}; 2xx → processed_at p50 ${P.p50} ms, ` +
        `p95 ${P.p95} ms, p99 ${P.p99} ms, max ${P.max} ms (seen finished by polling: p99 ${result.probes.toObservedMs.p99} ms); ` +
        `statuses ${JSON.stringify(probeStatuses)}`,
    );
    const unfinished = (s: Record<string, number>) => s.RECEIVED ?? 0;
    opts.checks.push(
      {
        part: 'fairness',
        what: 'every burst delivery acknowledged and stored',
        ok:
          door.ok2xx === FAIRNESS_BURST &&
          Object.values(burstStatuses).reduce((a, b) => a + b, 0) === FAIRNESS_BURST,
        detail: `${door.ok2xx}/${FAIRNESS_BURST} 2xx, ${Object.values(burstStatuses).reduce((a, b) => a + b, 0)} stored`,
      },
      {
        part: 'fairness',
        what: 'every burst and probe event finished',
        ok:
          !timedOut &&
          unfinished(burstStatuses) === 0 &&
          unfinished(probeStatuses) === 0 &&
          probeRows.length === acked.length,
        detail:
          `burst RECEIVED ${unfinished(burstStatuses)}, probes RECEIVED ${unfinished(probeStatuses)}, probes stored ${probeRows.length}/${acked.length}` +
          (timedOut ? `; gave up after FAIRNESS_TIMEOUT_S=${FAIRNESS_TIMEOUT_S} s` : ''),
      },
      {
        part: 'fairness',
        what: `at least ${FAIRNESS_MIN_PROBES} probes, all acknowledged`,
        ok: acked.length >= FAIRNESS_MIN_PROBES && acked.length === probes.length,
        detail: `${acked.length}/${probes.length} probes 2xx`,
      },
      {
        part: 'fairness',
        what: 'no burst or probe event FAILED or DEAD',
        ok:
          !burstStatuses.FAILED &&
          !burstStatuses.DEAD &&
          !probeStatuses.FAILED &&
          !probeStatuses.DEAD,
        detail: `burst ${JSON.stringify(burstStatuses)}, probes ${JSON.stringify(probeStatuses)}`,
      },
    );
    return result;
  } finally {
    await stopHub(api);
    await stopHub(worker);
    await db.end();
  }
}
