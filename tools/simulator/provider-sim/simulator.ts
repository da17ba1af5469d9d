import http from 'node:http';
import { AddressInfo } from 'node:net';

import { FaultInjector, FaultRule, defaultFaultBody, describeFault } from './faults';
import { SimRequestLog, now } from './request-log';
import { SimProviderModule, SimRequest, SimResponse, SimWebhookTarget } from './sim.types';
import { StripeSim, StripeSimOptions } from './stripe.sim';

/**
 * The provider simulator: one small HTTP server speaking providers' real wire formats (a test,
 * demo and benchmark aid; never a code path of the hub). Each request is read whole, recorded in
 * the request log, run through fault injection and handed to the first module whose `matches()`
 * is true. `/_sim/...` is the JSON control API (also available in-process on the instance).
 */
export interface ProviderSimulatorOptions {
  /** 0 (default) picks a random free port. */
  port?: number;
  host?: '127.0.0.1';
  target?: SimWebhookTarget;
  /** Extra modules (HubSpot, DocuSign…), tried after the built-in Stripe module. */
  modules?: SimProviderModule[];
  stripe?: StripeSimOptions;
  /** Request log capacity (default 50 000 entries). */
  logCapacity?: number;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

export class ProviderSimulator {
  readonly faults = new FaultInjector();
  readonly requests: SimRequestLog;
  readonly stripe: StripeSim;
  private readonly modules: SimProviderModule[];
  private target: SimWebhookTarget | undefined;
  private server!: http.Server;
  private _port = 0;
  private closing: Promise<void> | undefined;

  private constructor(opts: ProviderSimulatorOptions) {
    this.requests = new SimRequestLog(opts.logCapacity);
    this.stripe = new StripeSim(opts.stripe);
    this.modules = [this.stripe, ...(opts.modules ?? [])];
    this.target = opts.target;
  }

  static async start(opts: ProviderSimulatorOptions = {}): Promise<ProviderSimulator> {
    const sim = new ProviderSimulator(opts);
    await sim.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
    return sim;
  }

  get port(): number {
    return this._port;
  }

  get url(): string {
    return `http://127.0.0.1:${this._port}`;
  }

  /** Where signed webhooks go; undefined stops emission (events are still recorded). */
  setTarget(target: SimWebhookTarget | undefined): void {
    this.target = target;
    for (const m of this.modules) m.setTarget?.(target);
  }

  getTarget(): SimWebhookTarget | undefined {
    return this.target;
  }

  addModule(m: SimProviderModule): void {
    this.modules.push(m);
    m.setBaseUrl?.(this.url);
    m.setTarget?.(this.target);
  }

  module<T extends SimProviderModule = SimProviderModule>(name: string): T | undefined {
    return this.modules.find((m) => m.name === name) as T | undefined;
  }

  /** Forgets all provider state, fault rules and the request log (target and modules stay). */
  reset(): void {
    for (const m of this.modules) m.reset();
    this.faults.clear();
    this.requests.clear();
  }

  /** Adds a fault rule (see FaultInjector). */
  fault(rule: FaultRule): number {
    return this.faults.add(rule);
  }

  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
        this.server.closeAllConnections();
        await Promise.allSettled(this.modules.map(async (m) => m.close?.()));
        await closed;
      })();
    }
    return this.closing;
  }

  // -------------------------------------------------------------------------------------------

  private async listen(port: number, host: string): Promise<void> {
    this.server = http.createServer({ keepAlive: true, noDelay: true }, (req, res) => {
      this.onRequest(req, res).catch((e: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(500, JSON_HEADERS);
          res.end(JSON.stringify({ error: `simulator failure: ${String(e)}` }));
        }
      });
    });
    this.server.keepAliveTimeout = 30_000;
    this.server.headersTimeout = 35_000;
    this.server.requestTimeout = 0;
    this.server.maxHeadersCount = 200;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this._port = (this.server.address() as AddressInfo).port;
    for (const m of this.modules) {
      m.setBaseUrl?.(this.url);
      m.setTarget?.(this.target);
    }
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const at = now();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const simReq: SimRequest = {
      method: (req.method ?? 'GET').toUpperCase(),
      path,
      query: new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1)),
      headers: req.headers,
      rawBody,
    };

    if (path.startsWith('/_sim/')) {
      return write(res, await this.control(simReq));
    }

    const module = this.modules.find((m) => m.matches(simReq));
    simReq.provider = module?.name;
    const idem = req.headers['idempotency-key'];
    const entry = this.requests.record({
      provider: module?.name,
      method: simReq.method,
      path,
      idempotencyKey: Array.isArray(idem) ? idem[0] : idem,
      at,
    });

    const step = this.faults.take(simReq);
    if (step) {
      entry.fault = describeFault(step);
      if (step.delayMs) await delay(step.delayMs);
      if (step.drop === 'before') {
        entry.dropped = 'before';
        this.requests.complete(entry, undefined);
        res.socket?.destroy();
        return;
      }
      if (step.status !== undefined && step.drop !== 'after') {
        const response: SimResponse = {
          status: step.status,
          headers: step.headers,
          body: step.body ?? defaultFaultBody(module?.name, step.status),
        };
        this.requests.complete(entry, step.status);
        return write(res, response);
      }
    }

    let response: SimResponse;
    if (!module) {
      response = {
        status: 404,
        body: { error: `no simulated provider for ${simReq.method} ${path}` },
      };
    } else {
      try {
        response = await module.handle(simReq);
      } catch (e) {
        response = { status: 500, body: { error: `simulator module failure: ${String(e)}` } };
      }
    }

    if (step?.holdMs) await delay(step.holdMs);
    if (step?.drop === 'after') {
      entry.dropped = 'after';
      this.requests.complete(entry, response.status);
      res.socket?.destroy();
      return;
    }
    this.requests.complete(entry, response.status);
    write(res, response);
  }

  // -------------------------------------------------------------------------------------------
  // Control API

  private async control(req: SimRequest): Promise<SimResponse> {
    const ok = (body: unknown): SimResponse => ({ status: 200, body });
    const json = (): unknown => {
      const raw = req.rawBody.toString('utf8').trim();
      return raw === '' ? {} : JSON.parse(raw);
    };
    try {
      const { method, path } = req;
      if (method === 'GET' && path === '/_sim/requests') {
        const data = this.requests.list({
          provider: req.query.get('provider') ?? undefined,
          method: req.query.get('method') ?? undefined,
          pathPrefix: req.query.get('pathPrefix') ?? undefined,
          afterSeq: req.query.has('afterSeq') ? Number(req.query.get('afterSeq')) : undefined,
        });
        return ok({ count: data.length, data });
      }
      if (method === 'POST' && path === '/_sim/faults') {
        const id = this.faults.add(json() as FaultRule);
        return ok({ id });
      }
      if (method === 'GET' && path === '/_sim/faults') return ok({ data: this.faults.list() });
      if (method === 'DELETE' && path === '/_sim/faults') {
        this.faults.clear();
        return ok({ cleared: true });
      }
      if (method === 'POST' && path === '/_sim/reset') {
        this.reset();
        return ok({ reset: true });
      }
      if (method === 'GET' && path === '/_sim/target') return ok({ target: this.target ?? null });
      if (method === 'POST' && path === '/_sim/target') {
        const t = json() as SimWebhookTarget | null;
        this.setTarget(t && typeof t.hubUrl === 'string' ? t : undefined);
        return ok({ target: this.target ?? null });
      }
      if (method === 'GET' && path === '/_sim/health') return ok({ ok: true });
      const m = /^\/_sim\/([a-z-]+)(\/|$)/.exec(path);
      const module = m ? this.modules.find((x) => x.name === m[1]) : undefined;
      const answer = module?.control ? await module.control(req) : undefined;
      return (
        answer ?? { status: 404, body: { error: `unknown control endpoint ${method} ${path}` } }
      );
    } catch (e) {
      return { status: 400, body: { error: e instanceof Error ? e.message : String(e) } };
    }
  }
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function write(res: http.ServerResponse, r: SimResponse): void {
  if (res.destroyed) return;
  let payload: string | Buffer | undefined;
  const headers: Record<string, string> = { ...(r.headers ?? {}) };
  const hasType = Object.keys(headers).some((h) => h.toLowerCase() === 'content-type');
  if (r.body === undefined) payload = undefined;
  else if (typeof r.body === 'string' || Buffer.isBuffer(r.body)) {
    payload = r.body;
    if (!hasType) headers['content-type'] = 'text/plain; charset=utf-8';
  } else {
    payload = JSON.stringify(r.body);
    if (!hasType) headers['content-type'] = 'application/json';
  }
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
  else headers['content-length'] = '0';
  res.writeHead(r.status, headers);
  res.end(payload);
}
