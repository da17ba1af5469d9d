import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { headerValue } from '../../../src/common/header.util';
import { SignatureError } from '../../../src/ports/webhook-door.port';
import { verifyStandardWebhook } from '../../../src/webhooks/signatures/standard-webhooks-signature.verifier';
import { parseJsonBody } from './hubspot.sim';
import type { SimProviderModule, SimRequest, SimResponse } from './sim.types';

/*
 * The referral platform's side of the hub's generic outbound reports (CONTRACT §5): a Standard
 * Webhooks endpoint [SW-SPEC] that verifies signatures, deduplicates on `webhook-id` and can be told
 * to fail. Usable as a provider-simulator module (name `reports`, default path `/_sim/reports`) or as
 * its own small server ({@link startReportReceiver}). A test, demo and benchmark aid; never a code
 * path of the hub.
 */

export const DEFAULT_REPORT_PATH = '/_sim/reports';

/** One report stored (the first delivery of its `webhook-id`). */
export interface ReceivedReport {
  /** `webhook-id` (the hub's `reportId`). */
  id: string;
  /** `webhook-timestamp` (seconds). */
  timestamp: number;
  /** e.g. `referral.report.won`. */
  type: string;
  /** `data.kind`, else the suffix of `type`. */
  kind: string;
  data: Record<string, unknown>;
  /** The raw body as received. */
  rawBody: string;
  receivedAt: string;
  /** Deliveries of this id so far (1 + duplicates). */
  deliveries: number;
}

/** Every POST to the report path, with what the receiver answered. */
export interface ReportAttempt {
  webhookId: string | undefined;
  status: number;
  /** `stored`, `duplicate`, `fault`, `bad_signature`, `invalid_body`. */
  outcome: 'stored' | 'duplicate' | 'fault' | 'bad_signature' | 'invalid_body';
  reason?: string;
  at: string;
}

/** Fault injection: answer `statuses` in turn (then normal service), or `always` forever. */
export interface ReportFaults {
  statuses?: number[];
  always?: number;
}

export interface ReportReceiverOptions {
  /** `whsec_…` secret (the hub's `REFERRAL_REPORT_WEBHOOK_SECRET`). */
  secret: string;
  /** Path reports are POSTed to (default `/_sim/reports`). */
  path?: string;
  /** Clock in epoch ms for the ±5 min timestamp tolerance (default Date.now). */
  now?: () => number;
}

/** The receiver as a provider-simulator module (`ProviderSimulator.start({ modules: [receiver] })`). */
export class ReportReceiver implements SimProviderModule {
  readonly name = 'reports' as const;
  readonly path: string;
  private readonly now: () => number;
  private secret: string;
  private stored = new Map<string, ReceivedReport>();
  private _duplicates = 0;
  private mismatched: string[] = [];
  private queue: number[] = [];
  private always: number | undefined;
  readonly attempts: ReportAttempt[] = [];

  constructor(options: ReportReceiverOptions) {
    this.secret = options.secret;
    this.path = (options.path ?? DEFAULT_REPORT_PATH).replace(/\/+$/, '') || '/';
    this.now = options.now ?? Date.now;
  }

  // --------------------------------------------------------------------------- accessors

  /** Stored reports in arrival order (one per `webhook-id`). */
  reports(): ReceivedReport[] {
    return [...this.stored.values()];
  }

  byKind(kind: string): ReceivedReport[] {
    return this.reports().filter((r) => r.kind === kind);
  }

  byId(id: string): ReceivedReport | undefined {
    return this.stored.get(id);
  }

  /** Authentic deliveries of an already stored `webhook-id` (answered 2xx, not stored again). */
  get duplicates(): number {
    return this._duplicates;
  }

  /** `webhook-id`s redelivered with a different body (a sender bug: the id must name one report). */
  get mismatchedDuplicates(): string[] {
    return [...this.mismatched];
  }

  /** Deliveries refused for their signature (401). */
  get rejected(): number {
    return this.attempts.filter((a) => a.outcome === 'bad_signature').length;
  }

  /** Resolves once `count` reports are stored (optionally of one kind). */
  async waitFor(count: number, opts: { kind?: string; timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    const have = () => (opts.kind ? this.byKind(opts.kind) : this.reports()).length;
    while (have() < count) {
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${count} ${opts.kind ?? ''} report(s); have ${have()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  // --------------------------------------------------------------------------- configuration

  setSecret(secret: string): void {
    this.secret = secret;
  }

  /** Replaces the fault plan (e.g. `{ statuses: [500, 500] }`, `{ always: 400 }`); `{}` clears it. */
  setFaults(faults: ReportFaults): void {
    for (const s of [...(faults.statuses ?? []), ...(faults.always ? [faults.always] : [])]) {
      if (!Number.isInteger(s) || s < 100 || s > 599) throw new Error(`invalid status ${s}`);
    }
    this.queue = [...(faults.statuses ?? [])];
    this.always = faults.always;
  }

  clearFaults(): void {
    this.setFaults({});
  }

  reset(): void {
    this.stored.clear();
    this._duplicates = 0;
    this.mismatched = [];
    this.attempts.length = 0;
    this.clearFaults();
  }

  // --------------------------------------------------------------------------- module interface

  matches(req: SimRequest): boolean {
    return req.method.toUpperCase() === 'POST' && this.isReportPath(req.path);
  }

  handle(req: SimRequest): SimResponse {
    return this.receive(req);
  }

  /**
   * `/_sim/reports/...`: the report path itself when it lives there, plus
   * `GET /_sim/reports/received`, `POST|DELETE /_sim/reports/faults`, `POST /_sim/reports/reset`.
   */
  control(req: SimRequest): SimResponse | undefined {
    const method = req.method.toUpperCase();
    if (method === 'POST' && this.isReportPath(req.path)) return this.receive(req);
    const sub = req.path.replace(/^\/_sim\/reports/, '');
    if (method === 'GET' && sub === '/received') {
      return {
        status: 200,
        body: {
          reports: this.reports(),
          duplicates: this.duplicates,
          mismatchedDuplicates: this.mismatchedDuplicates,
          attempts: this.attempts,
        },
      };
    }
    if (sub === '/faults' && method === 'POST') {
      const parsed = parseJsonBody(req);
      if (!parsed.ok) return { status: 400, body: { error: 'invalid JSON' } };
      try {
        this.setFaults((parsed.value ?? {}) as ReportFaults);
      } catch (e) {
        return { status: 400, body: { error: (e as Error).message } };
      }
      return { status: 200, body: { ok: true } };
    }
    if (sub === '/faults' && method === 'DELETE') {
      this.clearFaults();
      return { status: 200, body: { ok: true } };
    }
    if (sub === '/reset' && method === 'POST') {
      this.reset();
      return { status: 200, body: { ok: true } };
    }
    return undefined;
  }

  // --------------------------------------------------------------------------- receiving

  private isReportPath(path: string): boolean {
    return (path.replace(/\/+$/, '') || '/') === this.path;
  }

  private receive(req: SimRequest): SimResponse {
    const at = new Date(this.now()).toISOString();
    const webhookId = headerValue(req.headers, 'webhook-id');
    const answer = (
      status: number,
      outcome: ReportAttempt['outcome'],
      reason?: string,
    ): SimResponse => {
      this.attempts.push({ webhookId, status, outcome, reason, at });
      return {
        status,
        body: status >= 200 && status < 300 ? { ok: true } : { error: reason ?? outcome },
      };
    };

    try {
      verifyStandardWebhook(req.rawBody, req.headers, this.secret, this.now());
    } catch (e) {
      if (!(e instanceof SignatureError)) throw e;
      return answer(401, 'bad_signature', `${e.reason}: ${e.message}`);
    }

    const fault = this.queue.length > 0 ? this.queue.shift() : this.always;
    if (fault !== undefined && (fault < 200 || fault >= 300)) {
      return answer(fault, 'fault', `injected ${fault}`);
    }
    const ok = fault ?? 200;
    const id = webhookId as string; // present: the signature verified
    const rawBody = req.rawBody.toString('utf8');
    const existing = this.stored.get(id);
    if (existing) {
      this._duplicates++;
      existing.deliveries++;
      if (existing.rawBody !== rawBody && !this.mismatched.includes(id)) this.mismatched.push(id);
      return answer(ok, 'duplicate');
    }

    const parsed = parseJsonBody(req);
    const body = parsed.ok ? parsed.value : undefined;
    if (
      typeof body !== 'object' ||
      body === null ||
      typeof (body as { type?: unknown }).type !== 'string' ||
      typeof (body as { data?: unknown }).data !== 'object' ||
      (body as { data?: unknown }).data === null
    ) {
      return answer(400, 'invalid_body', 'body must be JSON { type, data }');
    }
    const { type, data } = body as { type: string; data: Record<string, unknown> };
    const kind =
      typeof data.kind === 'string' ? data.kind : type.replace(/^referral\.report\./, '');
    this.stored.set(id, {
      id,
      timestamp: Number(headerValue(req.headers, 'webhook-timestamp')),
      type,
      kind,
      data,
      rawBody,
      receivedAt: at,
      deliveries: 1,
    });
    return answer(ok, 'stored');
  }
}

export interface StartedReportReceiver {
  receiver: ReportReceiver;
  /** Base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  /** The full URL to configure as `REFERRAL_REPORT_WEBHOOK_URL`. */
  reportUrl: string;
  close(): Promise<void>;
}

/**
 * Runs a receiver on its own HTTP server (port 0 picks a free one): the report path plus the
 * `/_sim/reports/...` control routes.
 */
export async function startReportReceiver(
  options: ReportReceiverOptions & { port?: number; host?: string },
): Promise<StartedReportReceiver> {
  const receiver = new ReportReceiver(options);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://receiver');
      const simReq: SimRequest = {
        provider: 'reports',
        method: (req.method ?? 'GET').toUpperCase(),
        path: u.pathname,
        query: u.searchParams,
        headers: req.headers,
        rawBody: Buffer.concat(chunks),
      };
      let out: SimResponse;
      try {
        out = (receiver.matches(simReq) ? receiver.handle(simReq) : undefined) ??
          receiver.control(simReq) ?? { status: 404, body: { error: 'not found' } };
      } catch (e) {
        out = { status: 500, body: { error: String(e) } };
      }
      const payload = out.body === undefined ? '' : JSON.stringify(out.body);
      res.writeHead(out.status, {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(payload)),
        ...out.headers,
      });
      res.end(payload);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    receiver,
    url,
    reportUrl: `${url}${receiver.path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
