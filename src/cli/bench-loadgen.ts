/**
 * Load generation and CPU accounting for `npm run bench`.
 *
 * Ported from the reference "floor" benchmark in ../shared/bench/floor (loadgen.mjs: rawLoad and
 * buildRequest; cpu.mjs: cpuSnapshot, cpuDiff and waitForQuiet), kept here so the benchmark runs
 * without that folder and measures the hub with the very same client as the floor. The logic is
 * unchanged; only types were added.
 *
 * loadgen.mjs's rationale: a closed-loop HTTP/1.1 generator over raw keep-alive sockets that writes a
 * prebuilt Buffer per request (~25 µs/req, versus ~70 µs for autocannon or undici with a unique
 * signed body each time: CPU taken from the server under test on 2 shared cores), times each
 * request with hrtime into a native histogram, stops issuing at the deadline and waits for every
 * in-flight response, so status counts are exact. Pipelining 1.
 */
import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { createHistogram } from 'node:perf_hooks';

const HEADER_END = Buffer.from('\r\n\r\n');

/** Prebuilt request bytes for POST <url> with the given extra headers and body. */
export function buildRequest(url: string, headers: Record<string, string>, body: Buffer): Buffer {
  const u = new URL(url);
  let head = `POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Length: ${body.length}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return Buffer.concat([Buffer.from(head + '\r\n'), body]);
}

/** Length of the first complete response in buf, or -1 if incomplete. */
function responseLength(buf: Buffer): number {
  const he = buf.indexOf(HEADER_END);
  if (he < 0) return -1;
  const head = buf.toString('latin1', 0, he).toLowerCase();
  const cl = /\r\ncontent-length: *(\d+)/.exec(head);
  if (cl) return buf.length >= he + 4 + Number(cl[1]) ? he + 4 + Number(cl[1]) : -1;
  if (/\r\ntransfer-encoding: *chunked/.test(head)) {
    const end = buf.indexOf('\r\n0\r\n\r\n', he); // last-chunk marker (no trailers)
    return end < 0 ? -1 : end + 7;
  }
  return he + 4; // no body (e.g. 204)
}

export interface LoadResult {
  seconds: number;
  completed: number;
  reqPerSec: number;
  p50ms: number;
  p99ms: number;
  maxMs: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  status: Record<string, number>;
}

/**
 * Runs `connections` keep-alive connections, one request in flight on each, for `seconds`;
 * `next()` returns the next request's bytes (see {@link buildRequest}).
 */
export function rawLoad(o: {
  url: string;
  connections: number;
  seconds: number;
  next: () => Buffer;
  timeoutMs?: number;
}): Promise<LoadResult> {
  const { url, connections, seconds, next, timeoutMs = 10_000 } = o;
  const { hostname, port } = new URL(url);
  const hist = createHistogram(); // ns
  const status: Record<string, number> = {};
  let completed = 0;
  let errors = 0;
  let timeouts = 0;
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(seconds * 1e9));

  const connection = () =>
    new Promise<void>((resolve) => {
      let sock: net.Socket;
      let buf: Buffer | null = null;
      let start = 0n;
      let timer: NodeJS.Timeout | undefined;
      let inFlight = false;
      let done = false;
      let timedOut = false;
      const send = () => {
        if (process.hrtime.bigint() >= deadline) {
          done = true;
          sock.destroy();
          return resolve();
        }
        start = process.hrtime.bigint();
        inFlight = true;
        timer = setTimeout(() => {
          timeouts++;
          timedOut = true;
          sock.destroy();
        }, timeoutMs);
        sock.write(next());
      };
      const open = () => {
        buf = null;
        sock = net.connect(Number(port), hostname);
        sock.setNoDelay(true);
        sock.on('connect', send);
        sock.on('error', () => {}); // handled in 'close'
        sock.on('close', () => {
          // server closed, reset, or our timeout: count the lost request, reconnect
          clearTimeout(timer);
          if (done) return;
          if (inFlight && !timedOut) errors++;
          inFlight = timedOut = false;
          setTimeout(open, 10);
        });
        sock.on('data', (chunk: Buffer) => {
          buf = buf ? Buffer.concat([buf, chunk]) : chunk;
          const len = responseLength(buf);
          if (len < 0) return;
          clearTimeout(timer);
          inFlight = false;
          hist.record(Math.max(1, Number(process.hrtime.bigint() - start)));
          const code = buf.toString('latin1', 9, 12);
          status[code] = (status[code] ?? 0) + 1;
          completed++;
          buf = buf.length > len ? buf.subarray(len) : null;
          send();
        });
      };
      open();
    });

  return Promise.all(Array.from({ length: connections }, connection)).then(() => {
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const ms = (p: number) => +(hist.percentile(p) / 1e6).toFixed(2);
    const ok2xx = Object.entries(status)
      .filter(([c]) => c[0] === '2')
      .reduce((a, [, n]) => a + n, 0);
    return {
      seconds: +secs.toFixed(2),
      completed,
      reqPerSec: Math.round(completed / secs),
      p50ms: ms(50),
      p99ms: ms(99),
      maxMs: +(hist.max / 1e6).toFixed(2),
      ok2xx,
      non2xx: completed - ok2xx,
      errors,
      timeouts,
      status,
    };
  });
}

// --- CPU accounting from /proc (cpu.mjs) -------------------------------------------------------

const HZ = 100; // USER_HZ on Linux
const CORES = os.cpus().length;

interface ProcStat {
  comm: string;
  pgid: number;
  ticks: number;
}

function allProcs(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(p), { comm, pgid: Number(f[2]), ticks: Number(f[11]) + Number(f[12]) }); // utime + stime
    } catch {
      // exited
    }
  }
  return out;
}

function machine() {
  const vals = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  const [, , , idle, iowait, , , steal] = vals;
  return { total: vals.reduce((a, b) => a + b, 0), idle: idle + iowait, steal };
}

export interface CpuSnapshot {
  at: bigint;
  sys: ReturnType<typeof machine>;
  procs: Map<number, ProcStat>;
}

export const cpuSnapshot = (): CpuSnapshot => ({
  at: process.hrtime.bigint(),
  sys: machine(),
  procs: allProcs(),
});

/** group spec: a pid, several pids, `comm:<name>` or `pgid:<process group id>`. */
export type CpuGroups = Record<string, number | number[] | string>;

/**
 * Cores used between two snapshots (1.0 = one full core) per group, `other` for every process in
 * no group, whole-machine busy% and steal%, and `unattributed` (softirq, short-lived processes).
 */
export function cpuDiff(a: CpuSnapshot, b: CpuSnapshot, groups: CpuGroups): Record<string, number> {
  const secs = Number(b.at - a.at) / 1e9;
  const owner = (pid: number, { comm, pgid }: ProcStat) => {
    for (const [name, spec] of Object.entries(groups)) {
      if (
        typeof spec === 'string'
          ? spec === `comm:${comm}` || spec === `pgid:${pgid}`
          : [spec].flat().includes(pid)
      )
        return name;
    }
    return 'other';
  };
  const ticks: Record<string, number> = Object.fromEntries(
    [...Object.keys(groups), 'other'].map((k) => [k, 0]),
  );
  for (const [pid, p] of b.procs) ticks[owner(pid, p)] += p.ticks - (a.procs.get(pid)?.ticks ?? 0);
  const out: Record<string, number> = Object.fromEntries(
    Object.entries(ticks).map(([k, t]) => [k, +(t / HZ / secs).toFixed(2)]),
  );
  const dt = b.sys.total - a.sys.total;
  out.machineBusyPct = +(100 * (1 - (b.sys.idle - a.sys.idle) / dt)).toFixed(1);
  const busyCores = (out.machineBusyPct / 100) * CORES;
  out.unattributed = +(busyCores - Object.keys(ticks).reduce((acc, k) => acc + out[k], 0)).toFixed(
    2,
  );
  out.stealPct = +((100 * (b.sys.steal - a.sys.steal)) / dt).toFixed(1);
  return out;
}

/**
 * Other work may share this machine: wait (up to maxWaitS) until the whole machine is below
 * busyPct for two consecutive 2 s windows.
 */
export async function waitForQuiet({
  busyPct = 15,
  maxWaitS = 300,
}: { busyPct?: number; maxWaitS?: number } = {}): Promise<{ busyPct: number; waitedS: number }> {
  const t0 = Date.now();
  let last = 0;
  let quietWindows = 0;
  do {
    const a = machine();
    await new Promise((r) => setTimeout(r, 2000));
    const b = machine();
    last = +(100 * (1 - (b.idle - a.idle) / (b.total - a.total))).toFixed(1);
    quietWindows = last < busyPct ? quietWindows + 1 : 0;
    if (quietWindows >= 2) break;
  } while (Date.now() - t0 < maxWaitS * 1000);
  return { busyPct: last, waitedS: Math.round((Date.now() - t0) / 1000) };
}
