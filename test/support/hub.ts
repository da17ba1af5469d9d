import { ChildProcess, spawn } from 'node:child_process';
import { AddressInfo, createServer } from 'node:net';
import path from 'node:path';

import { Redis } from 'ioredis';
import { Pool } from 'pg';

import { TEST_DATABASE_URL, TEST_REDIS_URL, hubEnv } from './test-env';

// TEST_HUB_MAIN runs a copy of the build (e.g. .dist-copy/src/main.js) so a concurrent
// `npm run build` cannot pull the entry point away mid-run.
const MAIN = path.resolve(
  process.env.TEST_HUB_MAIN ?? path.join(__dirname, '../../dist/src/main.js'),
);

export interface RunningHub {
  url: string;
  port: number;
  proc: ChildProcess;
  output: () => string;
  /** Sends a signal and waits for the process to exit; resolves with its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/**
 * Starts the built hub (`dist/src/main.js`, the production entry point) as a child process with
 * the test environment, and waits until it answers /health/live.
 */
export async function startHub(env: Record<string, string | undefined> = {}): Promise<RunningHub> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  let out = '';
  const proc = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH, ...hubEnv({ PORT: String(port), ...env }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`hub exited with ${proc.exitCode}:\n${out}`);
      const res = await fetch(`${url}/health/live`).catch(() => undefined);
      return res?.ok === true;
    },
    { timeoutMs: 30_000, what: 'hub to start' },
  );
  return {
    url,
    port,
    proc,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Polls `check` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
      if (String((err as Error).message).startsWith('hub exited')) throw err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${opts.what ?? 'condition'}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/** A pg pool on the test database, and a helper to empty every table between tests. */
export function testDb(): Pool {
  return new Pool({ connectionString: TEST_DATABASE_URL, max: 4 });
}

export async function truncateAll(db: Pool): Promise<void> {
  await db.query(
    'TRUNCATE webhook_event, outbox, dead_letter, job_attempt, api_token, audit_log, deal, billing_item, ' +
      'invoice, contract, timeline_entry, stage_trigger, idempotency_record, crm_note, referral, report, alert, ' +
      'stripe_customer ' +
      'RESTART IDENTITY CASCADE',
  );
}

/** Empties the shared test Redis database (db 7 unless told otherwise). */
export async function flushTestRedis(url = TEST_REDIS_URL): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    await redis.flushdb();
  } finally {
    redis.disconnect();
  }
}
