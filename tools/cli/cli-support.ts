/**
 * Helpers shared by the demo and the benchmark CLIs (`npm run demo`, `npm run bench`): migrating a
 * database, checking a port, starting the built hub as a child process and waiting for it.
 * Never a code path of the hub itself.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** The project root (this file runs from dist-tools/tools/cli/, built by `npm run build:tools`). */
export const ROOT = path.resolve(__dirname, '../../..');
export const MAIN_JS = path.join(ROOT, 'dist/src/main.js');
export const DEMO_DIR = path.join(ROOT, '.demo');
export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/closeloop';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A failure with a message meant for the person at the terminal (printed without a stack). */
export class CliError extends Error {}

/** Environment variables a child process needs to run at all (no configuration of the hub). */
export function baseEnv(): Record<string, string> {
  const keep = [
    'PATH',
    'HOME',
    'TMPDIR',
    'LANG',
    'LC_ALL',
    'TZ',
    'NODE_EXTRA_CA_CERTS',
    'NODE_OPTIONS',
  ];
  return Object.fromEntries(
    keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k] as string]),
  );
}

/** `node src/ops/db.mjs migrate` (creates the database if missing); returns its output. */
export async function migrate(databaseUrl: string): Promise<string> {
  const child = spawn(process.execPath, ['src/ops/db.mjs', 'migrate'], {
    cwd: ROOT,
    env: { ...baseEnv(), DATABASE_URL: databaseUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) {
    throw new CliError(
      `migrating ${redactUrl(databaseUrl)} failed (exit ${code}). Is Postgres running there?\n` +
        out.trim(),
    );
  }
  return out.trim();
}

/** Whether something already listens on `port` (checked by binding it, as the hub would). */
export function portInUse(port: number, host = '0.0.0.0'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(true);
      else reject(err);
    });
    srv.listen(port, host, () => srv.close(() => resolve(false)));
  });
}

/** A database URL with its password masked, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return url;
  }
}

/** Same server, another database name. */
export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.href;
}

export interface HubProcess {
  proc: ChildProcess;
  url: string;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** Sends `signal` (if still running) and waits for the exit; SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | string>;
}

/**
 * Starts the built hub (`dist/src/main.js`) with exactly `env` (plus {@link baseEnv}), its stdout
 * and stderr appended to `logFile`, and `nodeArgs` (e.g. `--cpu-prof`) before the script.
 */
/**
 * How the hub is started in production (`npm start*`, docker-compose.yml): an old-space budget
 * per role. A worker (and ROLE=all) gets 256 MB: without it V8 lets the heap grow lazily to
 * ~480 MB under a billing burst although the live set is far smaller; with it the peak stays under
 * 300 MB at the same throughput. The api gets 1024 MB: its live set is small (peak RSS ~190 MB at
 * 4,600 req/s), and under a 256 MB budget V8 collects so much more often that the door's p99 at
 * c=50 rose from ~30 to ~45–50 ms at 20 % less throughput (README, Benchmark).
 */
export function hubNodeArgs(role: string | undefined): string[] {
  return [`--max-old-space-size=${role === 'api' ? 1024 : 256}`];
}

export function spawnHub(opts: {
  env: Record<string, string>;
  logFile: string;
  nodeArgs?: string[];
}): HubProcess {
  if (!fs.existsSync(MAIN_JS)) {
    throw new CliError(`${path.relative(process.cwd(), MAIN_JS)} is missing: run npm run build`);
  }
  const log = fs.openSync(opts.logFile, 'a');
  const proc = spawn(
    process.execPath,
    [...hubNodeArgs(opts.env.ROLE), ...(opts.nodeArgs ?? []), MAIN_JS],
    {
      cwd: ROOT,
      env: { ...baseEnv(), ...opts.env },
      stdio: ['ignore', log, log],
    },
  );
  fs.closeSync(log); // the child holds its own copy
  const exited = new Promise<number | string>((resolve) =>
    proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const port = opts.env.PORT ?? '3000';
  return {
    proc,
    url: `http://127.0.0.1:${port}`,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 30_000) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Waits until `GET url+path` answers 2xx; fails early when the process exits. */
export async function waitForHttp(
  hub: HubProcess,
  pathname: string,
  opts: { timeoutMs?: number; what?: string; logFile?: string } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let exit: number | string | undefined;
  void hub.exited.then((code) => (exit = code));
  let last = '';
  while (Date.now() < deadline) {
    if (exit !== undefined) {
      throw new CliError(
        `${opts.what ?? 'the hub'} exited (${exit}) before it was ready` +
          (opts.logFile
            ? `; last lines of ${path.relative(process.cwd(), opts.logFile)}:\n${tail(opts.logFile)}`
            : ''),
      );
    }
    try {
      const res = await fetch(`${hub.url}${pathname}`, { signal: AbortSignal.timeout(3000) });
      if (res.ok) return;
      last = `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(200);
  }
  throw new CliError(
    `${opts.what ?? 'the hub'} was not ready after ${opts.timeoutMs ?? 60_000} ms (${last})`,
  );
}

/** The last `lines` lines of a text file, JSON log lines shortened to their message. */
export function tail(file: string, lines = 15): string {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return '  (no log)';
  }
  return text
    .trimEnd()
    .split('\n')
    .slice(-lines)
    .map((line) => {
      try {
        const j = JSON.parse(line) as { msg?: string; level?: number; err?: { message?: string } };
        return `  ${j.msg ?? line}${j.err?.message ? ` (${j.err.message})` : ''}`;
      } catch {
        return `  ${line}`;
      }
    })
    .join('\n');
}
