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
 * `next()` returns the next request's bytes (see {@link buildRequest}), or undefined when there
 * are no more (a fixed count: each connection stops once it gets undefined).
 */
export function rawLoad(o: {
  url: string;
  connections: number;
  seconds: number;
  next: () => Buffer | undefined;
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
        const request = process.hrtime.bigint() >= deadline ? undefined : next();
        if (!request) {
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
        sock.write(request);
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

// --- open loop: a fixed offered rate ----------------------------------------------------------

export interface PacedResult extends LoadResult {
  /** Wall-clock time (ms since the epoch) of request 0's schedule: the run's t0. */
  startedAtMs: number;
  /** The rate asked for, and how many requests that schedule held. */
  offeredPerSec: number;
  offered: number;
  /** 2xx answers per second, from the first scheduled request to the last answer. */
  ackPerSec: number;
  /** 2xx answers received by the end of the schedule (t0 + seconds). */
  ok2xxInWindow: number;
  /** Worst delay between a request's scheduled time and its write (no free connection, a busy client). */
  maxSendLagMs: number;
  /** Connections opened in all (the pool grows while every connection has a request in flight). */
  connectionsOpened: number;
  maxInFlight: number;
}

/**
 * Open-loop load: request i is due at t0 + i/rate (for `seconds`), whatever the server's answers
 * do. A due request goes out on an idle keep-alive connection; when none is idle, another is
 * opened (up to `maxConnections`), beyond that the request waits for the first free one. Latency
 * runs from the request's scheduled time, not its write, so a server that falls behind is not
 * flattered by the client waiting for it (no coordinated omission). After the schedule, every
 * in-flight response is awaited, so status counts are exact.
 */
export function pacedLoad(o: {
  url: string;
  rate: number;
  seconds: number;
  next: () => Buffer;
  initialConnections?: number;
  maxConnections?: number;
  timeoutMs?: number;
}): Promise<PacedResult> {
  const { url, rate, seconds, next, timeoutMs = 10_000 } = o;
  const maxConnections = o.maxConnections ?? 256;
  const { hostname, port } = new URL(url);
  const total = Math.max(1, Math.round(rate * seconds));
  const hist = createHistogram(); // ns, from the scheduled time
  const status: Record<string, number> = {};
  let completed = 0;
  let errors = 0;
  let timeouts = 0;
  let opened = 0;
  let open = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let maxLagNs = 0n;
  let scheduled = 0;
  let t0 = 0n;
  let startedAtMs = 0;
  let lastAnswer = 0n;
  let okInWindow = 0;
  let windowEnd = 0n;
  const pending: bigint[] = []; // scheduled times of due requests without a connection yet
  const stepNs = 1e9 / rate;

  interface Conn {
    sock: net.Socket;
    busy: boolean;
    due: bigint;
    buf: Buffer | null;
    timer?: NodeJS.Timeout;
    timedOut: boolean;
  }
  const idle: Conn[] = [];
  const all = new Set<Conn>();
  let finished = false;
  let resolveAll: (r: PacedResult) => void = () => undefined;
  let ticker: NodeJS.Timeout | undefined;

  const result = (): PacedResult => {
    const end = lastAnswer > t0 ? lastAnswer : process.hrtime.bigint();
    const secs = Number(end - t0) / 1e9;
    const ms = (p: number) => +(hist.count ? hist.percentile(p) / 1e6 : 0).toFixed(2);
    const ok2xx = Object.entries(status)
      .filter(([c]) => c[0] === '2')
      .reduce((a, [, n]) => a + n, 0);
    return {
      seconds: +secs.toFixed(2),
      completed,
      reqPerSec: Math.round(completed / secs),
      p50ms: ms(50),
      p99ms: ms(99),
      maxMs: +((hist.count ? hist.max : 0) / 1e6).toFixed(2),
      ok2xx,
      non2xx: completed - ok2xx,
      errors,
      timeouts,
      status,
      startedAtMs,
      offeredPerSec: rate,
      offered: total,
      ackPerSec: Math.round(ok2xx / secs),
      ok2xxInWindow: okInWindow,
      maxSendLagMs: +(Number(maxLagNs) / 1e6).toFixed(1),
      connectionsOpened: opened,
      maxInFlight,
    };
  };
  const maybeFinish = () => {
    if (finished || scheduled < total || pending.length > 0 || inFlight > 0) return;
    finished = true;
    if (ticker) clearTimeout(ticker);
    for (const c of all) c.sock.destroy();
    resolveAll(result());
  };
  const send = (c: Conn, due: bigint) => {
    const t = process.hrtime.bigint();
    if (t - due > maxLagNs) maxLagNs = t - due;
    c.busy = true;
    c.due = due;
    c.timedOut = false;
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    c.timer = setTimeout(() => {
      timeouts++;
      c.timedOut = true;
      c.sock.destroy();
    }, timeoutMs);
    c.sock.write(next());
  };
  const dispatch = () => {
    while (pending.length > 0 && idle.length > 0) send(idle.pop()!, pending.shift()!);
    // Connections being opened will take the rest; open more only for what they cannot.
    const connecting = open - all.size;
    for (let want = pending.length - connecting; want > 0 && open < maxConnections; want--) {
      connect();
    }
  };
  const connect = (onReady?: () => void) => {
    open++;
    opened++;
    const sock = net.connect(Number(port), hostname);
    sock.setNoDelay(true);
    const c: Conn = { sock, busy: false, due: 0n, buf: null, timedOut: false };
    let readied = !onReady;
    const ready = () => {
      if (readied) return false;
      readied = true;
      onReady!();
      return true;
    };
    sock.on('connect', () => {
      all.add(c);
      idle.push(c);
      if (!ready()) dispatch();
    });
    sock.on('error', () => {}); // handled in 'close'
    sock.on('close', () => {
      clearTimeout(c.timer);
      open--;
      all.delete(c);
      const at = idle.indexOf(c);
      if (at >= 0) idle.splice(at, 1);
      if (finished) return;
      if (c.busy) {
        inFlight--;
        if (!c.timedOut) errors++;
        c.busy = false;
      }
      if (ready()) return; // an initial connection that failed: start without it
      setTimeout(() => {
        dispatch();
        maybeFinish();
      }, 10);
    });
    sock.on('data', (chunk: Buffer) => {
      c.buf = c.buf ? Buffer.concat([c.buf, chunk]) : chunk;
      const len = responseLength(c.buf);
      if (len < 0) return;
      clearTimeout(c.timer);
      const t = process.hrtime.bigint();
      lastAnswer = t;
      hist.record(Math.max(1, Number(t - c.due)));
      const code = c.buf.toString('latin1', 9, 12);
      status[code] = (status[code] ?? 0) + 1;
      if (code[0] === '2' && t <= windowEnd) okInWindow++;
      completed++;
      c.buf = c.buf.length > len ? c.buf.subarray(len) : null;
      c.busy = false;
      inFlight--;
      if (pending.length > 0) send(c, pending.shift()!);
      else idle.push(c);
      maybeFinish();
    });
  };
  const tick = () => {
    const now = process.hrtime.bigint();
    const due = Math.min(total, Math.floor(Number(now - t0) / stepNs) + 1);
    while (scheduled < due) pending.push(t0 + BigInt(Math.round(scheduled++ * stepNs)));
    dispatch();
    // Nothing can be sent for ever when the server is gone: give up on what is left.
    if (Number(now - t0) / 1e9 > seconds + (2 * timeoutMs) / 1000 && pending.length > 0) {
      errors += pending.length;
      pending.length = 0;
    }
    if (scheduled < total || pending.length > 0) ticker = setTimeout(tick, 1);
    maybeFinish();
  };

  return new Promise<PacedResult>((resolve) => {
    resolveAll = resolve;
    const initial = Math.min(maxConnections, Math.max(1, o.initialConnections ?? 16));
    let ready = 0;
    for (let i = 0; i < initial; i++) {
      connect(() => {
        if (++ready === initial) {
          t0 = process.hrtime.bigint();
          windowEnd = t0 + BigInt(Math.round(seconds * 1e9));
          startedAtMs = Date.now();
          tick();
        }
      });
    }
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

/**
 * Peak resident set size of a live process in MB (VmHWM in /proc/<pid>/status), or null when it
 * cannot be read (exited, not Linux). Read just before the process is stopped.
 */
export function peakRssMb(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? +(Number(m[1]) / 1024).toFixed(1) : null;
  } catch {
    return null;
  }
}
