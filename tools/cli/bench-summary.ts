/**
 * The summary of `npm run bench` (issue "Spine v2"): one figure per performance target, its
 * threshold, and whether it was met. The keys are stable: they are how people read the figures.
 */

export const SUMMARY_KEYS = [
  'doorVsFloorC50',
  'doorP99MsC50',
  'drainPerSec',
  'sustainedPerSec',
  'fairnessProbeMs',
  'invoicesPerSec',
  'stripeCallsPerInvoice',
  'e2eP50Ms',
  'e2eP99Ms',
  'rssMb',
] as const;

export type SummaryKey = (typeof SUMMARY_KEYS)[number];
/** A figure measured in this sitting, or null when its part did not run. */
export type Summary = Record<SummaryKey, number | null>;

export interface Target {
  op: '>=' | '<' | '<=';
  value: number;
  unit: string;
  /** What the figure is, in a few words (the printed table). */
  what: string;
}

export const TARGETS: Record<SummaryKey, Target> = {
  doorVsFloorC50: { op: '>=', value: 0.9, unit: '×', what: 'door (api alone) ÷ floor, c=50' },
  doorP99MsC50: { op: '<', value: 30, unit: 'ms', what: 'door p99, api alone, c=50' },
  drainPerSec: { op: '>=', value: 3000, unit: '/s', what: 'worker alone drains a backlog' },
  sustainedPerSec: {
    op: '>=',
    value: 1500,
    unit: '/s',
    what: 'api + worker, paced, bounded backlog',
  },
  fairnessProbeMs: {
    op: '<',
    value: 2000,
    unit: 'ms',
    what: "other deals' p99 during one deal's burst",
  },
  invoicesPerSec: { op: '>=', value: 150, unit: '/s', what: 'billing burst, completions → /send' },
  stripeCallsPerInvoice: {
    op: '<=',
    value: 4,
    unit: '',
    what: 'Stripe requests per invoice, 5 customers',
  },
  e2eP50Ms: { op: '<', value: 25, unit: 'ms', what: 'completion → POST /v1/invoices p50, 10/s' },
  e2eP99Ms: { op: '<', value: 80, unit: 'ms', what: 'completion → POST /v1/invoices p99, 10/s' },
  rssMb: { op: '<', value: 300, unit: 'MB', what: 'peak RSS of any hub process' },
};

export function emptySummary(): Summary {
  return Object.fromEntries(SUMMARY_KEYS.map((k) => [k, null])) as Summary;
}

/** key → true/false, or null when the figure is null. */
export function metOf(summary: Summary): Record<SummaryKey, boolean | null> {
  return Object.fromEntries(
    SUMMARY_KEYS.map((k) => {
      const v = summary[k];
      const t = TARGETS[k];
      if (v === null) return [k, null];
      return [k, t.op === '>=' ? v >= t.value : t.op === '<' ? v < t.value : v <= t.value];
    }),
  ) as Record<SummaryKey, boolean | null>;
}

/** The printed table: key, figure, target, verdict. */
export function summaryTable(summary: Summary): string {
  const met = metOf(summary);
  const rows = SUMMARY_KEYS.map((k) => {
    const t = TARGETS[k];
    const v = summary[k];
    return [
      k,
      t.what,
      v === null
        ? '—'
        : `${v.toLocaleString('en-US')}${t.unit && t.unit !== '×' ? ` ${t.unit}` : t.unit}`,
      `${t.op} ${t.value.toLocaleString('en-US')}${t.unit && t.unit !== '×' ? ` ${t.unit}` : t.unit}`,
      met[k] === null ? 'not run' : met[k] ? 'MET' : 'NOT MET',
    ];
  });
  const headers = ['summary key', 'what', 'measured', 'target', ''];
  const cells = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
