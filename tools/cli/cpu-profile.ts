/**
 * Summarises a V8 `.cpuprofile` (written by `node --cpu-prof`): self time per function and per
 * package, optionally only for samples inside a wall-clock window. Used by `npm run bench --
 * --profile`; also runnable on its own:
 *
 *   node dist-tools/tools/cli/cpu-profile.js <file.cpuprofile> [top=25]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number; // µs, V8's monotonic clock
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Milliseconds of samples considered (busy = not idle). */
  totalMs: number;
  busyMs: number;
  idleMs: number;
  functions: { name: string; where: string; selfMs: number; pct: number }[];
  packages: { name: string; selfMs: number; pct: number }[];
}

/** Where a frame's code comes from: an npm package, closeloop's own code, Node internals, V8. */
export function packageOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName === '(garbage collector)') return '(gc)';
    if (functionName === '(program)' || functionName === '(idle)') return functionName;
    return '(native)';
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  if (url.includes('/src/generated/')) return 'closeloop (prisma client)';
  if (url.includes('/dist/src/') || url.includes('/src/')) return 'closeloop';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  return url;
}

function shortUrl(url: string, line: number): string {
  if (!url) return '';
  const nm = url.lastIndexOf('node_modules/');
  const tail =
    nm >= 0 ? url.slice(nm + 13) : url.replace(/^.*\/dist\//, '').replace(/^file:\/\//, '');
  return `${tail}:${line + 1}`;
}

/**
 * @param window wall-clock window in ms since the epoch; `profileEndWallMs` is when the profile
 *   stopped (the process exit), used to map V8's monotonic sample times onto wall time.
 */
export function summarizeCpuProfile(
  file: string,
  opts: { top?: number; window?: { fromMs: number; toMs: number; profileEndWallMs: number } } = {},
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    // A sample's time is attributed to the node sampled; its duration is the next delta.
    const dur = profile.timeDeltas[i + 1] ?? 0;
    if (opts.window) {
      const wall = opts.window.profileEndWallMs - (profile.endTime - t) / 1000;
      if (wall < opts.window.fromMs || wall > opts.window.toMs) continue;
    }
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dur);
  }
  const byFunction = new Map<string, { name: string; where: string; us: number }>();
  const byPackage = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = nodes.get(id)!.callFrame;
    totalUs += us;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const name = functionName || '(anonymous)';
    const key = `${name}|${url}|${lineNumber}`;
    const f = byFunction.get(key) ?? { name, where: shortUrl(url, lineNumber), us: 0 };
    f.us += us;
    byFunction.set(key, f);
    const pkg = packageOf(url, functionName);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number) => +((100 * us) / Math.max(1, busyUs)).toFixed(1);
  return {
    totalMs: Math.round(totalUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    functions: [...byFunction.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, opts.top ?? 25)
      .map((f) => ({
        name: f.name,
        where: f.where,
        selfMs: Math.round(f.us / 1000),
        pct: pct(f.us),
      })),
    packages: [...byPackage.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), pct: pct(us) })),
  };
}

export function formatProfileSummary(s: ProfileSummary, packages = 15): string {
  const lines = [
    `busy ${s.busyMs} ms, idle ${s.idleMs} ms (${Math.round((100 * s.busyMs) / Math.max(1, s.totalMs))} % busy)`,
    '',
    'self time by package:',
    ...s.packages
      .slice(0, packages)
      .map(
        (p) => `  ${p.pct.toFixed(1).padStart(5)} %  ${String(p.selfMs).padStart(6)} ms  ${p.name}`,
      ),
    '',
    'top functions by self time:',
    ...s.functions.map(
      (f) =>
        `  ${f.pct.toFixed(1).padStart(5)} %  ${String(f.selfMs).padStart(6)} ms  ${f.name}  ${f.where}`,
    ),
  ];
  return lines.join('\n');
}

if (require.main === module) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node dist-tools/tools/cli/cpu-profile.js <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(formatProfileSummary(summarizeCpuProfile(file, { top: Number(top ?? 25) })));
}
