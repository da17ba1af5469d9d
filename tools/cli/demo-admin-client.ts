/** The demo's client of the admin API (CONTRACT §6) and the views it reads. */
import path from 'node:path';

import { CliError, sleep } from './cli-support';

export interface DealView {
  id: string;
  name: string;
  stage: string;
  crmDealId: string | null;
  amount: number | null;
  referral: {
    platform: string;
    id: string;
    /** The hub's referral id (ref_…), once the referral itself arrived. */
    referralId?: string;
    state?: string;
    respondBy?: string | null;
    clockRule?: string | null;
    platformStatus?: string | null;
    platformSubstatus?: string | null;
  } | null;
  reports: ReportView[];
  billing: { invoicedAmount: number; paidAmount: number };
  items: {
    key: string;
    label: string;
    billingStatus: string;
    invoices: {
      billingKey: string;
      state: string;
      amount: number;
      total: number;
      stripeInvoiceId: string | null;
      stripeNumber: string | null;
      hostedInvoiceUrl: string | null;
    }[];
  }[];
  contract: { envelopeId: string | null; status: string } | null;
  timeline: { at: string; kind: string; message: string; cause: string }[];
  events: { id: string; provider: string; type: string; status: string; providerEventId: string }[];
}

export interface ReportView {
  id: string;
  kind: string;
  platform: string;
  channel: string;
  status: string;
  dueAt: string | null;
  deliveredAt: string | null;
  attempts: number;
  lastError: string | null;
  billingKey: string | null;
  amountExTax: number | null;
  fields: { key: string; label: string; labelEn: string; value: string }[];
  /** GET /api/reports only: the platform's name for the report, e.g. `成約報告 (won)`. */
  title?: string;
}

export interface EventView {
  id: string;
  provider: string;
  type: string;
  status: string;
  providerEventId: string;
  lastError?: string | null;
}

/** An admin API answer other than 2xx. */
export class AdminApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export class AdminClient {
  constructor(
    private readonly base: string,
    private readonly token: string,
    /** The hub's log file, named when a wait times out. */
    private readonly hubLog: string,
  ) {}

  async get<T>(pathname: string): Promise<T> {
    return this.call<T>('GET', pathname);
  }

  async post<T>(pathname: string, body?: unknown): Promise<T> {
    return this.call<T>('POST', pathname, body);
  }

  private async call<T>(method: string, pathname: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.base}${pathname}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) {
      throw new AdminApiError(
        `${method} ${pathname}: HTTP ${res.status} ${await res.text()}`,
        res.status,
      );
    }
    return (await res.json()) as T;
  }

  deal(id: string): Promise<DealView> {
    return this.get<DealView>(`/api/deals/${encodeURIComponent(id)}`);
  }

  /** Polls the deal until `check` holds; a CliError naming `what` and the deal's state after `timeoutMs`. */
  async waitDeal(
    id: string,
    what: string,
    check: (d: DealView) => boolean,
    timeoutMs = 30_000,
  ): Promise<DealView> {
    const deadline = Date.now() + timeoutMs;
    let last: DealView | undefined;
    for (;;) {
      try {
        last = await this.deal(id);
        if (check(last)) return last;
      } catch {
        // the hub may be busy; try again until the deadline
      }
      if (Date.now() > deadline) {
        throw new CliError(
          `timed out after ${timeoutMs / 1000} s waiting for ${what}; the hub shows ` +
            `${last ? hubView(last) : 'nothing'}.\n` +
            (last ? `Last timeline entries:\n${timelineText(last.timeline.slice(-8))}\n` : '') +
            `See ${path.relative(process.cwd(), this.hubLog) || '.'} and GET /api/dead-letters.`,
        );
      }
      await sleep(100);
    }
  }
}

/** Local wall-clock time with milliseconds, e.g. `10:00:01.234`. */
export function clock(d = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function hubView(d: DealView): string {
  const items = d.items.map((i) => `${i.key} ${i.billingStatus}`).join(', ');
  return items ? `${d.stage} · ${items}` : d.stage;
}

export function timelineText(entries: DealView['timeline']): string {
  return entries
    .map((t) => `  ${clock(new Date(t.at))}  ${t.kind.padEnd(10)} ${t.message}  (${t.cause})`)
    .join('\n');
}
