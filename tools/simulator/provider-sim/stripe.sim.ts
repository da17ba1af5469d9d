import { createHash, randomBytes } from 'node:crypto';

import { send, stripeDelivery } from '../signed-delivery';
import { SimProviderModule, SimRequest, SimResponse, SimWebhookTarget } from './sim.types';

/**
 * Stripe module of the provider simulator (a test, demo and benchmark aid; never a code path of
 * the hub). Speaks Stripe's v1 wire format closely enough for the official `stripe` SDK: form
 * bodies with bracket nesting, JSON objects with id prefixes, Stripe error bodies, idempotency keys
 * (provider-facts §3.3), an optional rate limit and signed webhooks (§3.1).
 */

export const STRIPE_SIM_API_VERSION = '2026-10-28.endive';

export interface StripeSimOptions {
  /** How long idempotency keys are kept (default 24 h). */
  idempotencyTtlMs?: number;
  /** Invoice numbers are `${prefix}${0001…}` (default `CL-`). */
  invoiceNumberPrefix?: string;
  /** Currency when an invoice is created without one (default `jpy`). */
  defaultCurrency?: string;
  /** Requests per second before 429 (default off). */
  rateLimitPerSecond?: number | null;
  /** Artificial endpoint latency in ms (the idempotency key is "in flight" meanwhile). Default 0. */
  latencyMs?: number;
  /** Webhook delivery retries after the first attempt (default 3). */
  webhookRetries?: number;
  /** First retry backoff in ms, doubled each retry (default 100). */
  webhookBackoffMs?: number;
  /** Per-attempt webhook delivery timeout in ms (default 5000). */
  webhookTimeoutMs?: number;
  /** Emit `invoice.created` too (default true). */
  emitInvoiceCreated?: boolean;
  /** Start with webhook emission paused. */
  webhooksPaused?: boolean;
}

export type Metadata = Record<string, string>;
type InvoiceStatus = 'draft' | 'open' | 'paid' | 'uncollectible' | 'void';

export interface SimCustomer {
  id: string;
  object: 'customer';
  address: null;
  balance: number;
  created: number;
  currency: string | null;
  default_source: null;
  delinquent: boolean;
  description: string | null;
  email: string | null;
  invoice_prefix: string;
  invoice_settings: { custom_fields: null; default_payment_method: null; footer: null };
  livemode: false;
  metadata: Metadata;
  name: string | null;
  phone: string | null;
  preferred_locales: string[];
  shipping: null;
  tax_exempt: 'none';
  test_clock: null;
}

export interface SimTaxRate {
  id: string;
  object: 'tax_rate';
  active: boolean;
  country: string | null;
  created: number;
  description: string | null;
  display_name: string;
  effective_percentage: number;
  inclusive: boolean;
  jurisdiction: string | null;
  livemode: false;
  metadata: Metadata;
  percentage: number;
  state: string | null;
  tax_type: string | null;
}

export interface SimInvoiceItem {
  id: string;
  object: 'invoiceitem';
  amount: number;
  currency: string;
  customer: string;
  date: number;
  description: string | null;
  discountable: boolean;
  discounts: string[];
  invoice: string | null;
  livemode: false;
  metadata: Metadata;
  parent: null;
  period: { start: number; end: number };
  pricing: null;
  proration: boolean;
  quantity: number;
  tax_rates: SimTaxRate[];
  test_clock: null;
}

export interface SimLineTax {
  amount: number;
  tax_behavior: 'inclusive' | 'exclusive';
  tax_rate_details: { tax_rate: string };
  taxability_reason: 'standard_rated';
  taxable_amount: number;
  type: 'tax_rate_details';
}

export interface SimInvoiceLine {
  id: string;
  object: 'line_item';
  amount: number;
  currency: string;
  description: string | null;
  discount_amounts: [];
  discountable: boolean;
  discounts: [];
  invoice: string;
  livemode: false;
  metadata: Metadata;
  parent: {
    type: 'invoice_item_details';
    invoice_item_details: { invoice_item: string; proration: false; subscription: null };
    subscription_item_details: null;
  };
  period: { start: number; end: number };
  pretax_credit_amounts: [];
  pricing: null;
  quantity: number;
  subtotal: number;
  taxes: SimLineTax[];
}

export interface SimInvoice {
  id: string;
  object: 'invoice';
  account_country: string;
  account_name: string;
  amount_due: number;
  amount_overpaid: number;
  amount_paid: number;
  amount_remaining: number;
  amount_shipping: number;
  attempt_count: number;
  attempted: boolean;
  auto_advance: boolean;
  automatic_tax: { enabled: false; liability: null; status: null };
  billing_reason: 'manual';
  collection_method: 'charge_automatically' | 'send_invoice';
  created: number;
  currency: string;
  customer: string;
  customer_email: string | null;
  customer_name: string | null;
  default_tax_rates: SimTaxRate[];
  description: string | null;
  discounts: [];
  due_date: number | null;
  effective_at: number | null;
  footer: string | null;
  hosted_invoice_url: string | null;
  invoice_pdf: string | null;
  lines: {
    object: 'list';
    data: SimInvoiceLine[];
    has_more: false;
    total_count: number;
    url: string;
  };
  livemode: false;
  metadata: Metadata;
  next_payment_attempt: null;
  number: string | null;
  parent: null;
  payment_settings: Record<string, unknown>;
  pending_invoice_items_behavior?: string;
  period_end: number;
  period_start: number;
  starting_balance: number;
  status: InvoiceStatus;
  status_transitions: {
    finalized_at: number | null;
    marked_uncollectible_at: number | null;
    paid_at: number | null;
    voided_at: number | null;
  };
  subtotal: number;
  subtotal_excluding_tax: number;
  /** Legacy field (removed from newer API versions; kept for convenience). */
  tax: number;
  test_clock: null;
  total: number;
  total_discount_amounts: [];
  total_excluding_tax: number;
  total_pretax_credit_amounts: [];
  total_taxes: SimLineTax[];
  /** Legacy shape of total_taxes. */
  total_tax_amounts: { amount: number; inclusive: boolean; tax_rate: string }[];
  webhooks_delivered_at: number | null;
}

export interface SimEvent {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  data: { object: unknown };
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
}

export interface SimWebhookDelivery {
  eventId: string;
  type: string;
  status: 'queued' | 'paused' | 'delivering' | 'delivered' | 'failed' | 'no_target';
  attempts: number;
  lastStatus?: number;
  lastError?: string;
  deliveredAt?: number;
}

export interface OutsideInvoiceInput {
  /** Existing customer id; otherwise a customer is created from email/name. */
  customer?: string;
  email?: string;
  name?: string;
  amount?: number;
  currency?: string;
  description?: string;
  metadata?: Metadata;
  /** Exclusive tax percentage for the line (creates a tax rate). */
  taxPercentage?: number;
  /** 'draft' (default), 'open' (finalized), 'paid', 'void' or 'uncollectible'. */
  status?: InvoiceStatus;
  daysUntilDue?: number;
  /** Emit the webhooks Stripe would send (default true). */
  emit?: boolean;
}

/** An error as Stripe answers it. `saved=false` for parameter validation (not kept under an idempotency key). */
export class StripeSimError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly extra: { code?: string; param?: string } = {},
    readonly saved = true,
  ) {
    super(message);
  }

  toBody() {
    return { error: { type: this.type, message: this.message, ...this.extra } };
  }
}

const invalid = (message: string, param?: string, code = 'parameter_invalid') =>
  new StripeSimError(400, 'invalid_request_error', message, { code, param }, false);
const missing = (param: string) =>
  new StripeSimError(
    400,
    'invalid_request_error',
    `Missing required param: ${param}.`,
    { code: 'parameter_missing', param },
    false,
  );
const noSuch = (kind: string, id: string, param?: string) =>
  new StripeSimError(param ? 400 : 404, 'invalid_request_error', `No such ${kind}: '${id}'`, {
    code: 'resource_missing',
    param: param ?? 'id',
  });
const stateError = (message: string, code?: string) =>
  new StripeSimError(400, 'invalid_request_error', message, code ? { code } : {});

const ZERO_DECIMAL = new Set(
  'bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf'.split(' '),
);

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export function stripeId(prefix: string, length = 24): string {
  const bytes = randomBytes(length);
  let s = '';
  for (let i = 0; i < length; i++) s += ALNUM[bytes[i] % ALNUM.length];
  return `${prefix}${s}`;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());
const clone = <T>(v: T): T => structuredClone(v);

// ---------------------------------------------------------------------------------------------
// Parameter readers (form values are strings on the wire)

type Params = FormObject;

function allowOnly(p: Params, allowed: readonly string[]) {
  for (const k of Object.keys(p)) {
    if (k !== 'expand' && !allowed.includes(k)) {
      throw invalid(`Received unknown parameter: ${k}`, k, 'parameter_unknown');
    }
  }
}

function str(p: Params, name: string, opts: { required?: boolean; max?: number } = {}) {
  const v = p[name];
  if (v === undefined) {
    if (opts.required) throw missing(name);
    return undefined;
  }
  if (typeof v !== 'string') throw invalid(`Invalid string: ${name}`, name);
  if (opts.required && v === '') throw invalid(`You passed an empty string for '${name}'.`, name);
  if (opts.max !== undefined && v.length > opts.max) {
    throw invalid(`Invalid ${name}: must be at most ${opts.max} characters`, name);
  }
  return v;
}

function int(p: Params, name: string, opts: { required?: boolean; min?: number } = {}) {
  const v = str(p, name, { required: opts.required });
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw invalid(`Invalid integer: ${v}`, name, 'parameter_invalid_integer');
  const n = Number(v);
  if (!Number.isSafeInteger(n))
    throw invalid(`Invalid integer: ${v}`, name, 'parameter_invalid_integer');
  if (opts.min !== undefined && n < opts.min) {
    throw invalid(`Invalid ${name}: must be greater than or equal to ${opts.min}`, name);
  }
  return n;
}

function decimal(p: Params, name: string, required = false) {
  const v = str(p, name, { required });
  if (v === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(v)) throw invalid(`Invalid decimal: ${v}`, name);
  return Number(v);
}

function bool(p: Params, name: string, required = false) {
  const v = str(p, name, { required });
  if (v === undefined) return undefined;
  if (v !== 'true' && v !== 'false') throw invalid(`Invalid boolean: ${v}`, name);
  return v === 'true';
}

function oneOf<T extends string>(p: Params, name: string, values: readonly T[]): T | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (!values.includes(v as T)) {
    throw invalid(`Invalid ${name}: must be one of ${values.join(', ')}`, name);
  }
  return v as T;
}

function strArray(p: Params, name: string): string[] | undefined {
  const v = p[name];
  if (v === undefined) return undefined;
  if (v === '') return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw invalid(`Invalid array: ${name}`, name, 'parameter_invalid_array');
  }
  return v as string[];
}

/** Metadata param: '' unsets everything; a key with '' unsets that key (on update). */
function metadataParam(p: Params, name = 'metadata'): Record<string, string> | '' | undefined {
  const v = p[name];
  if (v === undefined) return undefined;
  if (v === '') return '';
  if (typeof v !== 'object' || Array.isArray(v))
    throw invalid('Invalid metadata: must be a hash', name);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw invalid(`Invalid metadata[${k}]: must be a string`, name);
    if (k.length > 40) throw invalid(`Metadata keys can have up to 40 characters: ${k}`, name);
    if (x.length > 500) throw invalid(`Metadata values can have up to 500 characters: ${k}`, name);
    out[k] = x;
  }
  return out;
}

function applyMetadata(
  target: Metadata,
  update: Record<string, string> | '' | undefined,
): Metadata {
  if (update === undefined) return target;
  if (update === '') return {};
  const next = { ...target };
  for (const [k, v] of Object.entries(update)) {
    if (v === '') delete next[k];
    else next[k] = v;
  }
  if (Object.keys(next).length > 50) throw invalid('Metadata can have up to 50 keys', 'metadata');
  return next;
}

function paginate<T extends { id: string }>(newestFirst: T[], p: Params, url: string) {
  const limit = int(p, 'limit', { min: 1 }) ?? 10;
  if (limit > 100) throw invalid('Invalid limit: must be at most 100', 'limit');
  let items = newestFirst;
  const after = str(p, 'starting_after');
  const before = str(p, 'ending_before');
  if (after) {
    const i = items.findIndex((x) => x.id === after);
    if (i < 0) throw noSuch('object', after, 'starting_after');
    items = items.slice(i + 1);
  } else if (before) {
    const i = items.findIndex((x) => x.id === before);
    if (i < 0) throw noSuch('object', before, 'ending_before');
    items = items.slice(Math.max(0, i - limit), i);
    return { object: 'list' as const, data: items, has_more: i - limit > 0, url };
  }
  return {
    object: 'list' as const,
    data: items.slice(0, limit),
    has_more: items.length > limit,
    url,
  };
}

interface SearchClause {
  field: string;
  key?: string;
  value: string;
}

/** Subset of Stripe's search query language: `field:'v'` and `metadata['k']:'v'` joined by AND. */
export function parseSearchQuery(query: string, fields: readonly string[]): SearchClause[] {
  const q = query.trim();
  if (q === '') throw invalid('Search query is empty', 'query');
  if (/\sOR\s/.test(q)) throw invalid('The simulator supports only AND in search queries', 'query');
  return q.split(/\s+AND\s+/).map((part) => {
    const m = /^(?:metadata\[(['"])(.+?)\1\]|([a-z_]+))\s*:\s*(['"])(.*)\4$/.exec(part.trim());
    if (!m)
      throw invalid(`Unsupported search clause: ${part}`, 'query', 'parameter_invalid_string');
    if (m[2] !== undefined) return { field: 'metadata', key: m[2], value: m[5] };
    if (!fields.includes(m[3])) {
      throw invalid(`Field '${m[3]}' is not supported in this search`, 'query');
    }
    return { field: m[3], value: m[5] };
  });
}

function matchesClauses(obj: Record<string, unknown>, clauses: SearchClause[]): boolean {
  return clauses.every((c) => {
    if (c.field === 'metadata') return (obj.metadata as Metadata)[c.key!] === c.value;
    return String(obj[c.field] ?? '') === c.value;
  });
}

// ---------------------------------------------------------------------------------------------

interface IdemRecord {
  hash: string;
  inFlight: boolean;
  requestId: string;
  createdAt: number;
  status?: number;
  body?: unknown;
}

interface Ctx {
  params: Params;
  m: RegExpExecArray;
  requestId: string;
  idempotencyKey: string | null;
}

interface Route {
  method: string;
  re: RegExp;
  fn: (ctx: Ctx) => unknown;
}

interface InvoiceState {
  inv: SimInvoice;
  seq: number;
  daysUntilDue: number | null;
  itemIds: string[];
}

export class StripeSim implements SimProviderModule {
  readonly name = 'stripe' as const;

  private baseUrl = 'http://127.0.0.1';
  private target: SimWebhookTarget | undefined;
  private readonly opts: Required<Omit<StripeSimOptions, 'rateLimitPerSecond' | 'webhooksPaused'>>;

  private customersById = new Map<string, SimCustomer>();
  private taxRatesById = new Map<string, SimTaxRate>();
  private itemsById = new Map<string, SimInvoiceItem>();
  private lineIds = new Map<string, string>();
  private invoicesById = new Map<string, InvoiceState>();
  private eventsById = new Map<string, SimEvent>();
  private eventList: SimEvent[] = [];
  private idem = new Map<string, IdemRecord>();
  private invoiceSeq = 0;
  private numberSeq = 0;

  private rateLimit: number | null;
  /** Arrival times (ms) of the requests admitted in the last second (sliding window). */
  private rateWindow: number[] = [];
  private latencyMs: number;

  private paused: boolean;
  private pausedQueue: { event: SimEvent; delivery: SimWebhookDelivery }[] = [];
  private inflightDeliveries = new Set<Promise<void>>();
  private generation = 0;
  private closed = false;
  /** Every webhook emission and how its delivery went (newest last). */
  webhookDeliveries: SimWebhookDelivery[] = [];

  private readonly routes: Route[];

  constructor(options: StripeSimOptions = {}) {
    this.opts = {
      idempotencyTtlMs: options.idempotencyTtlMs ?? 24 * 3600 * 1000,
      invoiceNumberPrefix: options.invoiceNumberPrefix ?? 'CL-',
      defaultCurrency: options.defaultCurrency ?? 'jpy',
      latencyMs: options.latencyMs ?? 0,
      webhookRetries: options.webhookRetries ?? 3,
      webhookBackoffMs: options.webhookBackoffMs ?? 100,
      webhookTimeoutMs: options.webhookTimeoutMs ?? 5000,
      emitInvoiceCreated: options.emitInvoiceCreated ?? true,
    };
    this.rateLimit = options.rateLimitPerSecond ?? null;
    this.latencyMs = this.opts.latencyMs;
    this.paused = options.webhooksPaused ?? false;
    const r = (method: string, re: RegExp, fn: (ctx: Ctx) => unknown): Route => ({
      method,
      re,
      fn,
    });
    const ID = '([A-Za-z0-9_]+)';
    this.routes = [
      r('POST', /^\/v1\/customers$/, (c) => this.postCustomer(c)),
      r('GET', /^\/v1\/customers$/, (c) => this.listCustomers(c)),
      r('GET', /^\/v1\/customers\/search$/, (c) => this.searchCustomers(c)),
      r('GET', new RegExp(`^/v1/customers/${ID}$`), (c) => this.getCustomer(c.m[1])),
      r('POST', new RegExp(`^/v1/customers/${ID}$`), (c) => this.updateCustomer(c)),
      r('DELETE', new RegExp(`^/v1/customers/${ID}$`), (c) => this.deleteCustomer(c.m[1])),
      r('POST', /^\/v1\/tax_rates$/, (c) => this.postTaxRate(c)),
      r('GET', /^\/v1\/tax_rates$/, (c) => this.listTaxRates(c)),
      r('GET', new RegExp(`^/v1/tax_rates/${ID}$`), (c) => this.getTaxRate(c.m[1])),
      r('POST', new RegExp(`^/v1/tax_rates/${ID}$`), (c) => this.updateTaxRate(c)),
      r('POST', /^\/v1\/invoices$/, (c) => this.postInvoice(c)),
      r('GET', /^\/v1\/invoices$/, (c) => this.listInvoices(c)),
      r('GET', /^\/v1\/invoices\/search$/, (c) => this.searchInvoices(c)),
      r('GET', new RegExp(`^/v1/invoices/${ID}$`), (c) => this.getInvoice(c.m[1])),
      r('POST', new RegExp(`^/v1/invoices/${ID}$`), (c) => this.updateInvoice(c)),
      r('DELETE', new RegExp(`^/v1/invoices/${ID}$`), (c) => this.deleteInvoice(c)),
      r('GET', new RegExp(`^/v1/invoices/${ID}/lines$`), (c) => this.listLines(c)),
      r('POST', new RegExp(`^/v1/invoices/${ID}/finalize$`), (c) =>
        this.finalizeCore(this.state(c.m[1]), c),
      ),
      r('POST', new RegExp(`^/v1/invoices/${ID}/send$`), (c) =>
        this.sendCore(this.state(c.m[1]), c),
      ),
      r('POST', new RegExp(`^/v1/invoices/${ID}/void$`), (c) =>
        this.voidCore(this.state(c.m[1]), c),
      ),
      r('POST', new RegExp(`^/v1/invoices/${ID}/mark_uncollectible$`), (c) =>
        this.uncollectibleCore(this.state(c.m[1]), c),
      ),
      r('POST', new RegExp(`^/v1/invoices/${ID}/pay$`), (c) => this.payCore(this.state(c.m[1]), c)),
      r('POST', /^\/v1\/invoiceitems$/, (c) => this.postInvoiceItem(c)),
      r('GET', /^\/v1\/invoiceitems$/, (c) => this.listInvoiceItems(c)),
      r('GET', new RegExp(`^/v1/invoiceitems/${ID}$`), (c) => this.getInvoiceItem(c.m[1])),
      r('DELETE', new RegExp(`^/v1/invoiceitems/${ID}$`), (c) => this.deleteInvoiceItem(c)),
      r('GET', /^\/v1\/events$/, (c) => this.listEvents(c)),
      r('GET', new RegExp(`^/v1/events/${ID}$`), (c) => this.getEvent(c.m[1])),
    ];
  }

  // -------------------------------------------------------------------------------------------
  // SimProviderModule

  matches(req: SimRequest): boolean {
    return req.path.startsWith('/v1/');
  }

  setBaseUrl(url: string): void {
    this.baseUrl = url.replace(/\/$/, '');
  }

  setTarget(target: SimWebhookTarget | undefined): void {
    this.target = target;
  }

  reset(): void {
    this.customersById.clear();
    this.taxRatesById.clear();
    this.itemsById.clear();
    this.lineIds.clear();
    this.invoicesById.clear();
    this.eventsById.clear();
    this.eventList = [];
    this.idem.clear();
    this.invoiceSeq = 0;
    this.numberSeq = 0;
    this.rateLimit = null;
    this.rateWindow = [];
    this.latencyMs = this.opts.latencyMs;
    this.paused = false;
    this.pausedQueue = [];
    this.webhookDeliveries = [];
    this.generation++;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.generation++;
    await Promise.allSettled([...this.inflightDeliveries]);
  }

  async handle(req: SimRequest): Promise<SimResponse> {
    const requestId = stripeId('req_', 14);
    const headers: Record<string, string> = {
      'request-id': requestId,
      'stripe-version': STRIPE_SIM_API_VERSION,
    };
    const fail = (e: StripeSimError): SimResponse => ({
      status: e.status,
      headers,
      body: e.toBody(),
    });

    const auth = headerOf(req, 'authorization') ?? '';
    const apiKey = /^Bearer\s+((?:sk|rk)_(?:test|live)_\S+)$/.exec(auth)?.[1];
    if (!apiKey) {
      return fail(
        new StripeSimError(
          401,
          'invalid_request_error',
          auth
            ? `Invalid API Key provided: ${auth.replace(/^Bearer\s+/, '').slice(0, 8)}****`
            : 'Invalid API Key provided',
        ),
      );
    }

    if (this.rateLimit !== null) {
      const t = Date.now();
      let drop = 0;
      while (drop < this.rateWindow.length && this.rateWindow[drop] <= t - 1000) drop++;
      if (drop > 0) this.rateWindow.splice(0, drop);
      if (this.rateWindow.length < this.rateLimit) this.rateWindow.push(t);
      else {
        return fail(
          new StripeSimError(429, 'rate_limit_error', 'Request rate limit exceeded', {
            code: 'rate_limit',
          }),
        );
      }
    }

    let params: Params;
    let canonical: string;
    try {
      const raw = req.rawBody.length > 0 ? req.rawBody.toString('utf8') : '';
      const ctype = headerOf(req, 'content-type') ?? '';
      let entries: [string, string][];
      if (req.method === 'GET' || req.method === 'DELETE') {
        entries = [...req.query.entries(), ...new URLSearchParams(raw).entries()];
      } else if (ctype.includes('application/json') && raw.trim() !== '') {
        entries = [...new URLSearchParams(encodeForm(JSON.parse(raw) as Record<string, unknown>))];
      } else {
        entries = [...new URLSearchParams(raw).entries()];
      }
      params = decodeForm(entries);
      canonical = entries
        .map(([k, v]) => `${k}=${v}`)
        .sort()
        .join('&');
    } catch (e) {
      return fail(invalid(e instanceof Error ? e.message : 'Invalid request body'));
    }

    const idempotencyKey =
      req.method === 'POST' ? (headerOf(req, 'idempotency-key') ?? null) : null;
    if (idempotencyKey === null) {
      const r = await this.execute(req, params, requestId, null);
      return { status: r.status, headers: { ...headers, ...r.headers }, body: r.body };
    }
    if (idempotencyKey.length > 255) {
      return fail(invalid('Idempotency-Key can be up to 255 characters', 'idempotency_key'));
    }
    headers['idempotency-key'] = idempotencyKey;
    const storeKey = `${apiKey}\n${idempotencyKey}`;
    const hash = createHash('sha256')
      .update(`${req.method} ${req.path}\n${canonical}`)
      .digest('hex');
    let rec = this.idem.get(storeKey);
    if (rec && !rec.inFlight && Date.now() - rec.createdAt >= this.opts.idempotencyTtlMs) {
      this.idem.delete(storeKey);
      rec = undefined;
    }
    if (rec) {
      if (rec.hash !== hash) {
        return fail(
          new StripeSimError(
            400,
            'idempotency_error',
            `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
          ),
        );
      }
      if (rec.inFlight) {
        return fail(
          new StripeSimError(
            409,
            'idempotency_error',
            'There is currently another in-progress request using this Stripe token (probably a concurrent request with the same Idempotency-Key). Please wait and retry.',
          ),
        );
      }
      return {
        status: rec.status!,
        headers: { ...headers, 'idempotent-replayed': 'true', 'original-request': rec.requestId },
        body: rec.body,
      };
    }
    rec = { hash, inFlight: true, requestId, createdAt: Date.now() };
    this.idem.set(storeKey, rec);
    const r = await this.execute(req, params, requestId, idempotencyKey);
    if (r.saved) {
      rec.inFlight = false;
      rec.status = r.status;
      rec.body = r.body;
    } else if (this.idem.get(storeKey) === rec) {
      this.idem.delete(storeKey);
    }
    return { status: r.status, headers: { ...headers, ...r.headers }, body: r.body };
  }

  private async execute(
    req: SimRequest,
    params: Params,
    requestId: string,
    idempotencyKey: string | null,
  ): Promise<{ status: number; body: unknown; saved: boolean; headers?: Record<string, string> }> {
    let route: Route | undefined;
    let m: RegExpExecArray | null = null;
    let pathKnown = false;
    for (const candidate of this.routes) {
      const match = candidate.re.exec(req.path);
      if (!match) continue;
      pathKnown = true;
      if (candidate.method === req.method) {
        route = candidate;
        m = match;
        break;
      }
    }
    if (!route || !m) {
      const e = new StripeSimError(
        404,
        'invalid_request_error',
        `Unrecognized request URL (${req.method}: ${req.path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
        pathKnown ? { code: 'method_not_allowed' } : {},
        false,
      );
      return { status: e.status, body: e.toBody(), saved: false };
    }
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    try {
      const body = route.fn({ params, m, requestId, idempotencyKey });
      return { status: 200, body: clone(body), saved: true };
    } catch (e) {
      if (e instanceof StripeSimError)
        return { status: e.status, body: e.toBody(), saved: e.saved };
      const message = e instanceof Error ? e.message : String(e);
      return {
        status: 500,
        body: { error: { type: 'api_error', message: `Simulator error: ${message}` } },
        saved: true,
      };
    }
  }

  // -------------------------------------------------------------------------------------------
  // Customers

  private postCustomer(c: Ctx) {
    const p = c.params;
    allowOnly(p, [
      'email',
      'name',
      'description',
      'metadata',
      'phone',
      'preferred_locales',
      'currency',
    ]);
    return this.createCustomer({
      email: str(p, 'email', { max: 512 }),
      name: str(p, 'name', { max: 256 }),
      description: str(p, 'description'),
      phone: str(p, 'phone'),
      metadata: applyMetadata({}, metadataParam(p)),
      preferredLocales: strArray(p, 'preferred_locales'),
    });
  }

  /** Creates a customer directly in state (as if made in Stripe's dashboard). */
  createCustomer(input: {
    email?: string;
    name?: string;
    description?: string;
    phone?: string;
    metadata?: Metadata;
    preferredLocales?: string[];
  }): SimCustomer {
    const id = stripeId('cus_', 14);
    const customer: SimCustomer = {
      id,
      object: 'customer',
      address: null,
      balance: 0,
      created: nowSeconds(),
      currency: null,
      default_source: null,
      delinquent: false,
      description: input.description ?? null,
      email: input.email ?? null,
      invoice_prefix: id.slice(4, 12).toUpperCase(),
      invoice_settings: { custom_fields: null, default_payment_method: null, footer: null },
      livemode: false,
      metadata: input.metadata ?? {},
      name: input.name ?? null,
      phone: input.phone ?? null,
      preferred_locales: input.preferredLocales ?? [],
      shipping: null,
      tax_exempt: 'none',
      test_clock: null,
    };
    this.customersById.set(id, customer);
    return customer;
  }

  /** DELETE /v1/customers/:id: the customer is gone (its invoices stay); later use is "No such customer". */
  deleteCustomer(id: string): { id: string; object: 'customer'; deleted: true } {
    this.getCustomer(id);
    this.customersById.delete(id);
    return { id, object: 'customer', deleted: true };
  }

  private getCustomer(id: string, param?: string): SimCustomer {
    const c = this.customersById.get(id);
    if (!c) throw noSuch('customer', id, param);
    return c;
  }

  private updateCustomer(c: Ctx) {
    const p = c.params;
    allowOnly(p, ['email', 'name', 'description', 'metadata', 'phone', 'preferred_locales']);
    const cus = this.getCustomer(c.m[1]);
    const email = str(p, 'email');
    if (email !== undefined) cus.email = email || null;
    const name = str(p, 'name');
    if (name !== undefined) cus.name = name || null;
    const description = str(p, 'description');
    if (description !== undefined) cus.description = description || null;
    const phone = str(p, 'phone');
    if (phone !== undefined) cus.phone = phone || null;
    cus.metadata = applyMetadata(cus.metadata, metadataParam(p));
    return cus;
  }

  private listCustomers(c: Ctx) {
    const p = c.params;
    allowOnly(p, ['email', 'limit', 'starting_after', 'ending_before', 'created', 'test_clock']);
    const email = str(p, 'email');
    const all = [...this.customersById.values()]
      .filter((x) => email === undefined || x.email === email)
      .reverse();
    return paginate(all, p, '/v1/customers');
  }

  private searchCustomers(c: Ctx) {
    const p = c.params;
    allowOnly(p, ['query', 'limit', 'page']);
    const clauses = parseSearchQuery(str(p, 'query', { required: true })!, [
      'email',
      'name',
      'phone',
    ]);
    const all = [...this.customersById.values()]
      .reverse()
      .filter((x) => matchesClauses(x as unknown as Record<string, unknown>, clauses));
    return this.searchResult(all, p, '/v1/customers/search');
  }

  private searchResult<T>(all: T[], p: Params, url: string) {
    const limit = int(p, 'limit', { min: 1 }) ?? 10;
    if (limit > 100) throw invalid('Invalid limit: must be at most 100', 'limit');
    return {
      object: 'search_result' as const,
      data: all.slice(0, limit),
      has_more: all.length > limit,
      next_page: null,
      total_count: all.length,
      url,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Tax rates

  private postTaxRate(c: Ctx) {
    const p = c.params;
    allowOnly(p, [
      'display_name',
      'percentage',
      'inclusive',
      'active',
      'country',
      'description',
      'jurisdiction',
      'metadata',
      'state',
      'tax_type',
    ]);
    const display_name = str(p, 'display_name', { required: true, max: 50 })!;
    const percentage = decimal(p, 'percentage', true)!;
    if (percentage > 100) throw invalid('Invalid percentage: must be at most 100', 'percentage');
    const inclusive = bool(p, 'inclusive', true)!;
    return this.createTaxRate({
      displayName: display_name,
      percentage,
      inclusive,
      active: bool(p, 'active') ?? true,
      country: str(p, 'country') ?? null,
      description: str(p, 'description') ?? null,
      jurisdiction: str(p, 'jurisdiction') ?? null,
      state: str(p, 'state') ?? null,
      taxType: str(p, 'tax_type') ?? null,
      metadata: applyMetadata({}, metadataParam(p)),
    });
  }

  /** Creates a tax rate directly in state. */
  createTaxRate(input: {
    displayName: string;
    percentage: number;
    inclusive: boolean;
    active?: boolean;
    country?: string | null;
    description?: string | null;
    jurisdiction?: string | null;
    state?: string | null;
    taxType?: string | null;
    metadata?: Metadata;
  }): SimTaxRate {
    const rate: SimTaxRate = {
      id: stripeId('txr_'),
      object: 'tax_rate',
      active: input.active ?? true,
      country: input.country ?? null,
      created: nowSeconds(),
      description: input.description ?? null,
      display_name: input.displayName,
      effective_percentage: input.percentage,
      inclusive: input.inclusive,
      jurisdiction: input.jurisdiction ?? null,
      livemode: false,
      metadata: input.metadata ?? {},
      percentage: input.percentage,
      state: input.state ?? null,
      tax_type: input.taxType ?? null,
    };
    this.taxRatesById.set(rate.id, rate);
    return rate;
  }

  private getTaxRate(id: string, param?: string): SimTaxRate {
    const r = this.taxRatesById.get(id);
    if (!r) throw noSuch('tax_rate', id, param);
    return r;
  }

  private updateTaxRate(c: Ctx) {
    const p = c.params;
    allowOnly(p, [
      'active',
      'country',
      'description',
      'display_name',
      'jurisdiction',
      'metadata',
      'state',
      'tax_type',
    ]);
    const r = this.getTaxRate(c.m[1]);
    const active = bool(p, 'active');
    if (active !== undefined) r.active = active;
    const dn = str(p, 'display_name');
    if (dn) r.display_name = dn;
    const desc = str(p, 'description');
    if (desc !== undefined) r.description = desc || null;
    r.metadata = applyMetadata(r.metadata, metadataParam(p));
    return r;
  }

  private listTaxRates(c: Ctx) {
    const p = c.params;
    allowOnly(p, ['active', 'inclusive', 'limit', 'starting_after', 'ending_before', 'created']);
    const active = bool(p, 'active');
    const inclusive = bool(p, 'inclusive');
    const all = [...this.taxRatesById.values()]
      .filter(
        (r) =>
          (active === undefined || r.active === active) &&
          (inclusive === undefined || r.inclusive === inclusive),
      )
      .reverse();
    return paginate(all, p, '/v1/tax_rates');
  }

  private resolveTaxRates(ids: string[], param: string): SimTaxRate[] {
    return ids.map((id) => {
      const r = this.getTaxRate(id, param);
      if (!r.active) throw invalid(`Tax rate ${id} is not active`, param);
      return r;
    });
  }

  // -------------------------------------------------------------------------------------------
  // Invoices

  private static readonly INVOICE_CREATE_PARAMS = [
    'account_tax_ids',
    'application_fee_amount',
    'auto_advance',
    'automatic_tax',
    'automatically_finalizes_at',
    'collection_method',
    'currency',
    'custom_fields',
    'customer',
    'days_until_due',
    'default_payment_method',
    'default_source',
    'default_tax_rates',
    'description',
    'discounts',
    'due_date',
    'effective_at',
    'footer',
    'from_invoice',
    'issuer',
    'metadata',
    'number',
    'on_behalf_of',
    'payment_settings',
    'pending_invoice_items_behavior',
    'rendering',
    'shipping_cost',
    'shipping_details',
    'statement_descriptor',
    'subscription',
    'transfer_data',
  ] as const;

  private postInvoice(c: Ctx) {
    const p = c.params;
    allowOnly(p, StripeSim.INVOICE_CREATE_PARAMS);
    const customerId = str(p, 'customer', { required: true })!;
    const collection =
      oneOf(p, 'collection_method', ['charge_automatically', 'send_invoice'] as const) ??
      'charge_automatically';
    const daysUntilDue = int(p, 'days_until_due', { min: 0 });
    const dueDate = int(p, 'due_date', { min: 0 });
    if (collection !== 'send_invoice' && daysUntilDue !== undefined) {
      throw invalid(
        "Invalid days_until_due: can only be set when collection_method is 'send_invoice'",
        'days_until_due',
      );
    }
    if (collection !== 'send_invoice' && dueDate !== undefined) {
      throw invalid(
        "Invalid due_date: can only be set when collection_method is 'send_invoice'",
        'due_date',
      );
    }
    if (daysUntilDue !== undefined && dueDate !== undefined) {
      throw invalid('You can only pass one of days_until_due and due_date', 'days_until_due');
    }
    if (collection === 'send_invoice' && daysUntilDue === undefined && dueDate === undefined) {
      throw invalid(
        "Invoices with collection_method 'send_invoice' need days_until_due or due_date",
        'days_until_due',
        'parameter_missing',
      );
    }
    const currency = str(p, 'currency')?.toLowerCase();
    if (currency !== undefined && !/^[a-z]{3}$/.test(currency)) {
      throw invalid(`Invalid currency: ${currency}`, 'currency');
    }
    const pending =
      oneOf(p, 'pending_invoice_items_behavior', ['exclude', 'include'] as const) ?? 'exclude';
    const taxIds = strArray(p, 'default_tax_rates') ?? [];
    const metadata = applyMetadata({}, metadataParam(p));
    const customer = this.getCustomer(customerId, 'customer');
    const taxRates = this.resolveTaxRates(taxIds, 'default_tax_rates');
    const st = this.createInvoiceCore({
      customer,
      collection,
      daysUntilDue: daysUntilDue ?? null,
      dueDate: dueDate ?? null,
      currency: currency ?? this.opts.defaultCurrency,
      autoAdvance: bool(p, 'auto_advance') ?? false,
      description: str(p, 'description') ?? null,
      footer: str(p, 'footer') ?? null,
      metadata,
      taxRates,
      paymentSettings:
        typeof p.payment_settings === 'object'
          ? (p.payment_settings as Record<string, unknown>)
          : {},
      pending,
      ctx: c,
    });
    return st.inv;
  }

  private createInvoiceCore(input: {
    customer: SimCustomer;
    collection: 'charge_automatically' | 'send_invoice';
    daysUntilDue: number | null;
    dueDate: number | null;
    currency: string;
    autoAdvance: boolean;
    description: string | null;
    footer?: string | null;
    metadata: Metadata;
    taxRates: SimTaxRate[];
    paymentSettings?: Record<string, unknown>;
    pending?: 'exclude' | 'include';
    ctx?: Pick<Ctx, 'requestId' | 'idempotencyKey'>;
    emit?: boolean;
  }): InvoiceState {
    const created = nowSeconds();
    const id = stripeId('in_');
    const inv: SimInvoice = {
      id,
      object: 'invoice',
      account_country: 'JP',
      account_name: 'Closeloop Simulator',
      amount_due: 0,
      amount_overpaid: 0,
      amount_paid: 0,
      amount_remaining: 0,
      amount_shipping: 0,
      attempt_count: 0,
      attempted: false,
      auto_advance: input.autoAdvance,
      automatic_tax: { enabled: false, liability: null, status: null },
      billing_reason: 'manual',
      collection_method: input.collection,
      created,
      currency: input.currency,
      customer: input.customer.id,
      customer_email: input.customer.email,
      customer_name: input.customer.name,
      default_tax_rates: input.taxRates,
      description: input.description,
      discounts: [],
      due_date: input.dueDate,
      effective_at: null,
      footer: input.footer ?? null,
      hosted_invoice_url: null,
      invoice_pdf: null,
      lines: {
        object: 'list',
        data: [],
        has_more: false,
        total_count: 0,
        url: `/v1/invoices/${id}/lines`,
      },
      livemode: false,
      metadata: input.metadata,
      next_payment_attempt: null,
      number: null,
      parent: null,
      payment_settings: {
        default_mandate: null,
        payment_method_options: null,
        payment_method_types: null,
        ...(input.paymentSettings ?? {}),
      },
      period_end: created,
      period_start: created,
      starting_balance: 0,
      status: 'draft',
      status_transitions: {
        finalized_at: null,
        marked_uncollectible_at: null,
        paid_at: null,
        voided_at: null,
      },
      subtotal: 0,
      subtotal_excluding_tax: 0,
      tax: 0,
      test_clock: null,
      total: 0,
      total_discount_amounts: [],
      total_excluding_tax: 0,
      total_pretax_credit_amounts: [],
      total_taxes: [],
      total_tax_amounts: [],
      webhooks_delivered_at: null,
    };
    const st: InvoiceState = {
      inv,
      seq: ++this.invoiceSeq,
      daysUntilDue: input.daysUntilDue,
      itemIds: [],
    };
    this.invoicesById.set(id, st);
    if (input.pending === 'include') {
      for (const item of this.itemsById.values()) {
        if (
          item.customer === inv.customer &&
          item.invoice === null &&
          item.currency === inv.currency
        ) {
          item.invoice = id;
          st.itemIds.push(item.id);
        }
      }
      this.recompute(st);
    }
    if (this.opts.emitInvoiceCreated && input.emit !== false)
      this.emit('invoice.created', inv, input.ctx);
    return st;
  }

  private state(id: string, param?: string): InvoiceState {
    const st = this.invoicesById.get(id);
    if (!st) throw noSuch('invoice', id, param);
    return st;
  }

  private getInvoice(id: string): SimInvoice {
    return this.state(id).inv;
  }

  private updateInvoice(c: Ctx) {
    const p = c.params;
    allowOnly(p, [
      'auto_advance',
      'days_until_due',
      'default_tax_rates',
      'description',
      'footer',
      'metadata',
      'due_date',
    ]);
    const st = this.state(c.m[1]);
    const inv = st.inv;
    const draftOnly = ['days_until_due', 'default_tax_rates', 'due_date'].filter(
      (k) => p[k] !== undefined,
    );
    if (draftOnly.length > 0 && inv.status !== 'draft') {
      throw stateError(
        `You can only update ${draftOnly[0]} on draft invoices.`,
        'invoice_not_editable',
      );
    }
    if (inv.status === 'void' || inv.status === 'paid') {
      if (Object.keys(p).some((k) => k !== 'metadata' && k !== 'expand')) {
        throw stateError(
          `This invoice is ${inv.status} and can no longer be edited.`,
          'invoice_not_editable',
        );
      }
    }
    const dud = int(p, 'days_until_due', { min: 0 });
    if (dud !== undefined) {
      if (inv.collection_method !== 'send_invoice') {
        throw invalid(
          "Invalid days_until_due: can only be set when collection_method is 'send_invoice'",
          'days_until_due',
        );
      }
      st.daysUntilDue = dud;
    }
    const taxIds = strArray(p, 'default_tax_rates');
    if (taxIds !== undefined)
      inv.default_tax_rates = this.resolveTaxRates(taxIds, 'default_tax_rates');
    const description = str(p, 'description');
    if (description !== undefined) inv.description = description || null;
    const footer = str(p, 'footer');
    if (footer !== undefined) inv.footer = footer || null;
    const auto = bool(p, 'auto_advance');
    if (auto !== undefined) inv.auto_advance = auto;
    inv.metadata = applyMetadata(inv.metadata, metadataParam(p));
    this.recompute(st);
    return inv;
  }

  private deleteInvoice(c: Ctx) {
    const st = this.state(c.m[1]);
    if (st.inv.status !== 'draft') {
      throw stateError('You can only delete draft invoices.', 'invoice_not_editable');
    }
    for (const ii of st.itemIds) this.itemsById.delete(ii);
    this.invoicesById.delete(st.inv.id);
    return { id: st.inv.id, object: 'invoice', deleted: true };
  }

  private listInvoices(c: Ctx) {
    const p = c.params;
    allowOnly(p, [
      'customer',
      'status',
      'limit',
      'starting_after',
      'ending_before',
      'collection_method',
      'created',
      'due_date',
      'subscription',
    ]);
    const customer = str(p, 'customer');
    const status = oneOf(p, 'status', ['draft', 'open', 'paid', 'uncollectible', 'void'] as const);
    const collection = str(p, 'collection_method');
    const all = this.sortedInvoices().filter(
      (i) =>
        (customer === undefined || i.customer === customer) &&
        (status === undefined || i.status === status) &&
        (collection === undefined || i.collection_method === collection),
    );
    return paginate(all, p, '/v1/invoices');
  }

  private searchInvoices(c: Ctx) {
    const p = c.params;
    allowOnly(p, ['query', 'limit', 'page']);
    const clauses = parseSearchQuery(str(p, 'query', { required: true })!, [
      'customer',
      'status',
      'number',
      'currency',
      'collection_method',
    ]);
    const all = this.sortedInvoices().filter((i) =>
      matchesClauses(i as unknown as Record<string, unknown>, clauses),
    );
    return this.searchResult(all, p, '/v1/invoices/search');
  }

  private listLines(c: Ctx) {
    const st = this.state(c.m[1]);
    allowOnly(c.params, ['limit', 'starting_after', 'ending_before']);
    return paginate(st.inv.lines.data, c.params, `/v1/invoices/${st.inv.id}/lines`);
  }

  /** Newest first. */
  private sortedInvoices(): SimInvoice[] {
    return [...this.invoicesById.values()].sort((a, b) => b.seq - a.seq).map((s) => s.inv);
  }

  private finalizeCore(st: InvoiceState, ctx?: Ctx) {
    if (ctx) allowOnly(ctx.params, ['auto_advance']);
    const inv = st.inv;
    if (inv.status !== 'draft') {
      throw stateError(
        `This invoice is already finalized, you can't re-finalize a non-draft invoice.`,
        'invoice_not_editable',
      );
    }
    const now = nowSeconds();
    // "Until the invoice is finalized, this field will equal customer.email" (and customer_name):
    // finalizing takes the customer's contact as it is at that moment.
    const customer = this.customersById.get(inv.customer);
    if (customer) {
      inv.customer_email = customer.email;
      inv.customer_name = customer.name;
    }
    inv.status = 'open';
    inv.number = `${this.opts.invoiceNumberPrefix}${String(++this.numberSeq).padStart(4, '0')}`;
    inv.hosted_invoice_url = `${this.baseUrl}/_sim/stripe/hosted/${inv.id}`;
    inv.invoice_pdf = `${this.baseUrl}/_sim/stripe/hosted/${inv.id}/pdf`;
    inv.status_transitions.finalized_at = now;
    inv.effective_at = now;
    if (inv.collection_method === 'send_invoice' && st.daysUntilDue !== null) {
      inv.due_date = now + st.daysUntilDue * 86400;
    }
    this.recompute(st);
    this.emit('invoice.finalized', inv, ctx);
    if (inv.amount_due === 0) {
      // Stripe marks zero-amount invoices paid on finalization.
      this.markPaid(st, ctx);
    }
    return inv;
  }

  private sendCore(st: InvoiceState, ctx?: Ctx) {
    const inv = st.inv;
    if (inv.collection_method !== 'send_invoice') {
      throw stateError(
        "You can only manually send an invoice if its collection method is 'send_invoice'.",
      );
    }
    // "Stripe automatically finalizes drafts before sending and attempting payment on invoices"
    // (API reference, Finalize an invoice): a draft is finalized first (invoice.finalized), then sent.
    if (inv.status === 'draft') this.finalizeCore(st);
    if (inv.status !== 'open') {
      throw stateError(
        `You can only send invoices that are open; this invoice is ${inv.status}.`,
        'invoice_not_editable',
      );
    }
    this.emit('invoice.sent', inv, ctx);
    return inv;
  }

  private voidCore(st: InvoiceState, ctx?: Ctx) {
    const inv = st.inv;
    if (inv.status !== 'open' && inv.status !== 'uncollectible') {
      throw stateError(
        inv.status === 'draft'
          ? 'You can only void open invoices; delete draft invoices instead.'
          : `You cannot void an invoice that is ${inv.status}.`,
        'invoice_not_editable',
      );
    }
    inv.status = 'void';
    inv.status_transitions.voided_at = nowSeconds();
    inv.amount_remaining = 0;
    this.emit('invoice.voided', inv, ctx);
    return inv;
  }

  private uncollectibleCore(st: InvoiceState, ctx?: Ctx) {
    const inv = st.inv;
    if (inv.status !== 'open') {
      throw stateError(
        `You can only mark open invoices uncollectible; this invoice is ${inv.status}.`,
        'invoice_not_editable',
      );
    }
    inv.status = 'uncollectible';
    inv.status_transitions.marked_uncollectible_at = nowSeconds();
    this.emit('invoice.marked_uncollectible', inv, ctx);
    return inv;
  }

  private payCore(st: InvoiceState, ctx?: Ctx) {
    if (ctx)
      allowOnly(ctx.params, [
        'paid_out_of_band',
        'payment_method',
        'source',
        'off_session',
        'forgive',
        'mandate',
      ]);
    const inv = st.inv;
    if (inv.status === 'paid') throw stateError('Invoice is already paid', 'invoice_already_paid');
    if (inv.status !== 'open' && inv.status !== 'uncollectible') {
      throw stateError(
        `You can only pay open invoices; this invoice is ${inv.status}.`,
        'invoice_not_editable',
      );
    }
    return this.markPaid(st, ctx);
  }

  private markPaid(st: InvoiceState, ctx?: Pick<Ctx, 'requestId' | 'idempotencyKey'>) {
    const inv = st.inv;
    inv.status = 'paid';
    inv.amount_paid = inv.amount_due;
    inv.amount_remaining = 0;
    inv.attempted = true;
    inv.attempt_count += inv.amount_due > 0 ? 1 : 0;
    inv.status_transitions.paid_at = nowSeconds();
    this.emit('invoice.paid', inv, ctx);
    this.emit('invoice.payment_succeeded', inv, ctx);
    return inv;
  }

  // -------------------------------------------------------------------------------------------
  // Invoice items

  private postInvoiceItem(c: Ctx) {
    const p = c.params;
    allowOnly(p, [
      'customer',
      'amount',
      'currency',
      'description',
      'invoice',
      'tax_rates',
      'metadata',
      'quantity',
      'unit_amount',
      'unit_amount_decimal',
      'price_data',
      'discountable',
      'period',
      'subscription',
      'tax_behavior',
      'tax_code',
      'discounts',
      'pricing',
      'price',
    ]);
    const customerId = str(p, 'customer', { required: true })!;
    let amount = int(p, 'amount');
    const quantity = int(p, 'quantity', { min: 0 }) ?? 1;
    let currency = str(p, 'currency')?.toLowerCase();
    if (amount === undefined) {
      let unit = int(p, 'unit_amount');
      const pd = p.price_data;
      if (unit === undefined && pd && typeof pd === 'object' && !Array.isArray(pd)) {
        unit = int(pd, 'unit_amount');
        currency = currency ?? str(pd, 'currency')?.toLowerCase();
        const product = str(pd, 'product');
        if (!product) throw missing('price_data[product]');
      }
      if (unit === undefined) throw missing('amount');
      amount = unit * quantity;
    }
    if (currency === undefined) throw missing('currency');
    const customer = this.getCustomer(customerId, 'customer');
    const invoiceId = str(p, 'invoice');
    const taxIds = strArray(p, 'tax_rates');
    const taxRates = taxIds === undefined ? [] : this.resolveTaxRates(taxIds, 'tax_rates');
    return this.addItemCore({
      customer,
      invoice: invoiceId === undefined ? undefined : this.state(invoiceId, 'invoice'),
      amount,
      quantity,
      currency,
      description: str(p, 'description') ?? null,
      taxRates,
      metadata: applyMetadata({}, metadataParam(p)),
      discountable: bool(p, 'discountable') ?? true,
    });
  }

  private addItemCore(input: {
    customer: SimCustomer;
    invoice?: InvoiceState;
    amount: number;
    quantity?: number;
    currency: string;
    description: string | null;
    taxRates: SimTaxRate[];
    metadata: Metadata;
    discountable?: boolean;
  }): SimInvoiceItem {
    const st = input.invoice;
    if (st) {
      if (st.inv.customer !== input.customer.id) {
        throw invalid(
          `The invoice ${st.inv.id} belongs to customer ${st.inv.customer}, not ${input.customer.id}.`,
          'invoice',
        );
      }
      if (st.inv.status !== 'draft') {
        throw stateError(
          `You can only add invoice items to draft invoices; invoice ${st.inv.id} is ${st.inv.status}.`,
          'invoice_not_editable',
        );
      }
      if (st.inv.currency !== input.currency) {
        throw invalid(
          `The currency of the invoice item (${input.currency}) must match the invoice's (${st.inv.currency}).`,
          'currency',
        );
      }
      if (st.itemIds.length >= 250)
        throw stateError('An invoice can have at most 250 invoice items.');
    }
    const now = nowSeconds();
    const item: SimInvoiceItem = {
      id: stripeId('ii_'),
      object: 'invoiceitem',
      amount: input.amount,
      currency: input.currency,
      customer: input.customer.id,
      date: now,
      description: input.description,
      discountable: input.discountable ?? true,
      discounts: [],
      invoice: st?.inv.id ?? null,
      livemode: false,
      metadata: input.metadata,
      parent: null,
      period: { start: now, end: now },
      pricing: null,
      proration: false,
      quantity: input.quantity ?? 1,
      tax_rates: input.taxRates,
      test_clock: null,
    };
    this.itemsById.set(item.id, item);
    this.lineIds.set(item.id, stripeId('il_'));
    if (st) {
      st.itemIds.push(item.id);
      this.recompute(st);
    }
    return item;
  }

  private getInvoiceItem(id: string) {
    const item = this.itemsById.get(id);
    if (!item) throw noSuch('invoiceitem', id);
    return item;
  }

  private deleteInvoiceItem(c: Ctx) {
    const item = this.getInvoiceItem(c.m[1]);
    if (item.invoice) {
      const st = this.state(item.invoice);
      if (st.inv.status !== 'draft') {
        throw stateError(
          'You can only delete invoice items attached to draft invoices.',
          'invoice_not_editable',
        );
      }
      st.itemIds = st.itemIds.filter((x) => x !== item.id);
      this.recompute(st);
    }
    this.itemsById.delete(item.id);
    return { id: item.id, object: 'invoiceitem', deleted: true };
  }

  private listInvoiceItems(c: Ctx) {
    const p = c.params;
    allowOnly(p, [
      'customer',
      'invoice',
      'pending',
      'limit',
      'starting_after',
      'ending_before',
      'created',
    ]);
    const customer = str(p, 'customer');
    const invoice = str(p, 'invoice');
    const pending = bool(p, 'pending');
    const all = [...this.itemsById.values()]
      .filter(
        (i) =>
          (customer === undefined || i.customer === customer) &&
          (invoice === undefined || i.invoice === invoice) &&
          (pending === undefined || (i.invoice === null) === pending),
      )
      .reverse();
    return paginate(all, p, '/v1/invoiceitems');
  }

  /** Recomputes lines and totals of an invoice from its items. */
  private recompute(st: InvoiceState): void {
    const inv = st.inv;
    const totals = new Map<string, SimLineTax>();
    let subtotal = 0;
    let exclusiveTax = 0;
    let inclusiveTax = 0;
    inv.lines.data = st.itemIds.map((iid) => {
      const item = this.itemsById.get(iid)!;
      const rates = item.tax_rates.length > 0 ? item.tax_rates : inv.default_tax_rates;
      const taxes: SimLineTax[] = rates.map((r) => {
        const amount = r.inclusive
          ? item.amount - Math.round((item.amount * 100) / (100 + r.percentage))
          : Math.round((item.amount * r.percentage) / 100);
        return {
          amount,
          tax_behavior: r.inclusive ? 'inclusive' : 'exclusive',
          tax_rate_details: { tax_rate: r.id },
          taxability_reason: 'standard_rated',
          taxable_amount: r.inclusive ? item.amount - amount : item.amount,
          type: 'tax_rate_details',
        };
      });
      subtotal += item.amount;
      for (const t of taxes) {
        if (t.tax_behavior === 'inclusive') inclusiveTax += t.amount;
        else exclusiveTax += t.amount;
        const agg = totals.get(t.tax_rate_details.tax_rate);
        if (agg) {
          agg.amount += t.amount;
          agg.taxable_amount += t.taxable_amount;
        } else
          totals.set(t.tax_rate_details.tax_rate, {
            ...t,
            tax_rate_details: { ...t.tax_rate_details },
          });
      }
      const line: SimInvoiceLine = {
        id: this.lineIds.get(iid)!,
        object: 'line_item',
        amount: item.amount,
        currency: item.currency,
        description: item.description,
        discount_amounts: [],
        discountable: item.discountable,
        discounts: [],
        invoice: inv.id,
        livemode: false,
        metadata: item.metadata,
        parent: {
          type: 'invoice_item_details',
          invoice_item_details: { invoice_item: item.id, proration: false, subscription: null },
          subscription_item_details: null,
        },
        period: item.period,
        pretax_credit_amounts: [],
        pricing: null,
        quantity: item.quantity,
        subtotal: item.amount,
        taxes,
      };
      return line;
    });
    inv.lines.total_count = inv.lines.data.length;
    inv.subtotal = subtotal;
    inv.subtotal_excluding_tax = subtotal - inclusiveTax;
    inv.total_excluding_tax = subtotal - inclusiveTax;
    inv.tax = exclusiveTax + inclusiveTax;
    inv.total = subtotal + exclusiveTax;
    inv.total_taxes = [...totals.values()];
    inv.total_tax_amounts = inv.total_taxes.map((t) => ({
      amount: t.amount,
      inclusive: t.tax_behavior === 'inclusive',
      tax_rate: t.tax_rate_details.tax_rate,
    }));
    inv.amount_due = Math.max(0, inv.total - inv.starting_balance);
    inv.amount_remaining =
      inv.status === 'paid' || inv.status === 'void' ? 0 : inv.amount_due - inv.amount_paid;
  }

  // -------------------------------------------------------------------------------------------
  // Events and webhooks

  private listEvents(c: Ctx) {
    const p = c.params;
    allowOnly(p, [
      'type',
      'types',
      'limit',
      'starting_after',
      'ending_before',
      'created',
      'delivery_success',
    ]);
    const type = str(p, 'type');
    const all = this.eventList
      .filter((e) => type === undefined || e.type === type)
      .slice()
      .reverse();
    return paginate(all, p, '/v1/events');
  }

  private getEvent(id: string) {
    const e = this.eventsById.get(id);
    if (!e) throw noSuch('event', id);
    return e;
  }

  /**
   * Records an event and (when a target with a Stripe webhook secret is set) delivers it signed to
   * `${hubUrl}/webhooks/stripe`, asynchronously, retrying non-2xx and connection errors.
   */
  emitEvent(
    type: string,
    object: unknown,
    request: { id: string | null; idempotency_key: string | null } = {
      id: null,
      idempotency_key: null,
    },
  ): SimEvent {
    const event: SimEvent = {
      id: stripeId('evt_'),
      object: 'event',
      api_version: STRIPE_SIM_API_VERSION,
      created: nowSeconds(),
      data: { object: clone(object) },
      livemode: false,
      pending_webhooks: 1,
      request,
      type,
    };
    this.eventsById.set(event.id, event);
    this.eventList.push(event);
    const delivery: SimWebhookDelivery = { eventId: event.id, type, status: 'queued', attempts: 0 };
    this.webhookDeliveries.push(delivery);
    if (!this.target?.stripeWebhookSecret) {
      delivery.status = 'no_target';
      event.pending_webhooks = 0;
    } else if (this.paused) {
      delivery.status = 'paused';
      this.pausedQueue.push({ event, delivery });
    } else {
      this.startDelivery(event, delivery);
    }
    return event;
  }

  private emit(
    type: string,
    inv: SimInvoice,
    ctx?: Pick<Ctx, 'requestId' | 'idempotencyKey'> | null,
  ) {
    this.emitEvent(type, inv, {
      id: ctx?.requestId ?? null,
      idempotency_key: ctx?.idempotencyKey ?? null,
    });
  }

  private startDelivery(event: SimEvent, delivery: SimWebhookDelivery) {
    const generation = this.generation;
    const p = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.deliver(event, delivery, generation))
      .finally(() => this.inflightDeliveries.delete(p));
    this.inflightDeliveries.add(p);
  }

  private async deliver(event: SimEvent, delivery: SimWebhookDelivery, generation: number) {
    delivery.status = 'delivering';
    for (let attempt = 0; attempt <= this.opts.webhookRetries; attempt++) {
      if (this.closed || generation !== this.generation) {
        delivery.status = 'failed';
        delivery.lastError = 'simulator reset or closed';
        return;
      }
      const target = this.target;
      if (!target?.stripeWebhookSecret) {
        delivery.status = 'no_target';
        return;
      }
      delivery.attempts++;
      try {
        const res = await send(
          target.hubUrl.replace(/\/$/, ''),
          stripeDelivery(event, target.stripeWebhookSecret),
          {},
          { timeoutMs: this.opts.webhookTimeoutMs },
        );
        delivery.lastStatus = res.status;
        delivery.lastError = undefined;
        if (res.status >= 200 && res.status < 300) {
          delivery.status = 'delivered';
          delivery.deliveredAt = Date.now();
          event.pending_webhooks = 0;
          return;
        }
      } catch (e) {
        delivery.lastError = e instanceof Error ? e.message : String(e);
      }
      if (attempt < this.opts.webhookRetries)
        await sleep(this.opts.webhookBackoffMs * 2 ** attempt);
    }
    delivery.status = 'failed';
  }

  /** Holds new webhooks back (they are still recorded) until `resumeWebhooks()`. */
  pauseWebhooks(): void {
    this.paused = true;
  }

  /** Sends the held-back webhooks (in emission order) and resumes normal emission. */
  resumeWebhooks(): void {
    this.paused = false;
    const queue = this.pausedQueue;
    this.pausedQueue = [];
    for (const { event, delivery } of queue) this.startDelivery(event, delivery);
  }

  get webhooksPaused(): boolean {
    return this.paused;
  }

  /** Resolves once no webhook delivery is in flight (held-back ones are not waited for). */
  async webhooksIdle(): Promise<void> {
    while (this.inflightDeliveries.size > 0) {
      await Promise.allSettled([...this.inflightDeliveries]);
    }
  }

  /** Counts of webhook deliveries by status. */
  get webhookStats(): Record<SimWebhookDelivery['status'], number> {
    const out = { queued: 0, paused: 0, delivering: 0, delivered: 0, failed: 0, no_target: 0 };
    for (const d of this.webhookDeliveries) out[d.status]++;
    return out;
  }

  /** Every event emitted (oldest first). */
  events(type?: string): SimEvent[] {
    return type === undefined ? [...this.eventList] : this.eventList.filter((e) => e.type === type);
  }

  // -------------------------------------------------------------------------------------------
  // Knobs and in-process accessors

  setRateLimit(perSecond: number | null): void {
    if (perSecond !== null && !(perSecond >= 0)) throw new Error('perSecond must be >= 0 or null');
    this.rateLimit = perSecond;
    this.rateWindow = [];
  }

  get rateLimitPerSecond(): number | null {
    return this.rateLimit;
  }

  setLatency(ms: number): void {
    this.latencyMs = Math.max(0, ms);
  }

  /** Forgets idempotency keys older than `olderThanMs` (default: all completed ones), like Stripe's 24 h pruning. */
  expireIdempotencyKeys(olderThanMs = 0): number {
    const cutoff = Date.now() - olderThanMs;
    let n = 0;
    for (const [k, rec] of this.idem) {
      if (!rec.inFlight && rec.createdAt <= cutoff) {
        this.idem.delete(k);
        n++;
      }
    }
    return n;
  }

  /** Invoices, newest first (live objects: do not mutate). */
  invoices(): SimInvoice[] {
    return this.sortedInvoices();
  }

  invoice(id: string): SimInvoice | undefined {
    return this.invoicesById.get(id)?.inv;
  }

  invoicesByMetadata(key: string, value: string): SimInvoice[] {
    return this.sortedInvoices().filter((i) => i.metadata[key] === value);
  }

  customers(): SimCustomer[] {
    return [...this.customersById.values()];
  }

  customer(id: string): SimCustomer | undefined {
    return this.customersById.get(id);
  }

  taxRates(): SimTaxRate[] {
    return [...this.taxRatesById.values()];
  }

  invoiceItems(): SimInvoiceItem[] {
    return [...this.itemsById.values()];
  }

  /** Simulates the customer paying an open invoice (emits invoice.paid). */
  payInvoice(id: string): SimInvoice {
    return clone(this.payCore(this.state(id)));
  }

  voidInvoice(id: string): SimInvoice {
    return clone(this.voidCore(this.state(id)));
  }

  markUncollectible(id: string): SimInvoice {
    return clone(this.uncollectibleCore(this.state(id)));
  }

  finalizeInvoice(id: string): SimInvoice {
    return clone(this.finalizeCore(this.state(id)));
  }

  /** Simulates a failed payment attempt (emits invoice.payment_failed; the invoice stays open). */
  failPayment(id: string): SimInvoice {
    const st = this.state(id);
    if (st.inv.status !== 'open') throw stateError(`Invoice ${id} is ${st.inv.status}, not open`);
    st.inv.attempted = true;
    st.inv.attempt_count++;
    this.emit('invoice.payment_failed', st.inv);
    return clone(st.inv);
  }

  /** Creates an invoice directly in state, as if someone made it in Stripe's dashboard. */
  createInvoiceOutsideHub(input: OutsideInvoiceInput = {}): SimInvoice {
    const emit = input.emit ?? true;
    const customer = input.customer
      ? this.getCustomer(input.customer, 'customer')
      : this.createCustomer({
          email: input.email ?? 'someone@example.com',
          name: input.name ?? 'Outside customer',
        });
    const currency = (input.currency ?? this.opts.defaultCurrency).toLowerCase();
    const st = this.createInvoiceCore({
      customer,
      collection: 'send_invoice',
      daysUntilDue: input.daysUntilDue ?? 30,
      dueDate: null,
      currency,
      autoAdvance: false,
      description: input.description ?? null,
      metadata: { ...(input.metadata ?? {}) },
      taxRates: [],
      emit,
    });
    const taxRates =
      input.taxPercentage !== undefined
        ? [
            this.createTaxRate({
              displayName: 'Tax',
              percentage: input.taxPercentage,
              inclusive: false,
            }),
          ]
        : [];
    this.addItemCore({
      customer,
      invoice: st,
      amount: input.amount ?? 10000,
      currency,
      description: input.description ?? 'Outside item',
      taxRates,
      metadata: {},
    });
    const status = input.status ?? 'draft';
    const quiet = <T>(fn: () => T): T => {
      if (emit) return fn();
      const before = this.eventList.length;
      const r = fn();
      // Drop the events (and deliveries) made for this outside invoice.
      const dropped = new Set(this.eventList.splice(before).map((e) => e.id));
      for (const id of dropped) this.eventsById.delete(id);
      this.webhookDeliveries = this.webhookDeliveries.filter((d) => !dropped.has(d.eventId));
      this.pausedQueue = this.pausedQueue.filter((q) => !dropped.has(q.event.id));
      return r;
    };
    if (status !== 'draft') {
      quiet(() => {
        this.finalizeCore(st);
        if (status === 'paid' && st.inv.status === 'open') this.payCore(st);
        if (status === 'void') this.voidCore(st);
        if (status === 'uncollectible') this.uncollectibleCore(st);
      });
    }
    return st.inv;
  }

  // -------------------------------------------------------------------------------------------
  // Control API (/_sim/stripe/...)

  async control(req: SimRequest): Promise<SimResponse | undefined> {
    const path = req.path.slice('/_sim/stripe'.length) || '/';
    const body = (): Record<string, unknown> => {
      const raw = req.rawBody.toString('utf8').trim();
      return raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    };
    const ok = (b: unknown): SimResponse => ({ status: 200, body: b });
    try {
      let m: RegExpExecArray | null;
      if (req.method === 'GET' && path === '/invoices') return ok({ data: this.invoices() });
      if (req.method === 'POST' && path === '/invoices') {
        return ok(this.createInvoiceOutsideHub(body() as OutsideInvoiceInput));
      }
      if (req.method === 'GET' && (m = /^\/invoices\/([A-Za-z0-9_]+)$/.exec(path))) {
        const inv = this.invoice(m[1]);
        return inv ? ok(inv) : { status: 404, body: { error: `no invoice ${m[1]}` } };
      }
      if (
        req.method === 'POST' &&
        (m =
          /^\/invoices\/([A-Za-z0-9_]+)\/(pay|void|mark_uncollectible|finalize|payment_failed)$/.exec(
            path,
          ))
      ) {
        const fn = {
          pay: (id: string) => this.payInvoice(id),
          void: (id: string) => this.voidInvoice(id),
          mark_uncollectible: (id: string) => this.markUncollectible(id),
          finalize: (id: string) => this.finalizeInvoice(id),
          payment_failed: (id: string) => this.failPayment(id),
        }[m[2] as 'pay'];
        return ok(fn(m[1]));
      }
      if (req.method === 'GET' && path === '/customers') return ok({ data: this.customers() });
      if (req.method === 'POST' && path === '/rate-limit') {
        const perSecond = body().perSecond;
        this.setRateLimit(perSecond === null || perSecond === undefined ? null : Number(perSecond));
        return ok({ perSecond: this.rateLimit });
      }
      if (req.method === 'POST' && path === '/latency') {
        this.setLatency(Number(body().ms ?? 0));
        return ok({ ms: this.latencyMs });
      }
      if (req.method === 'GET' && path === '/webhooks') {
        return ok({ paused: this.paused, stats: this.webhookStats, data: this.webhookDeliveries });
      }
      if (req.method === 'POST' && path === '/webhooks/pause') {
        this.pauseWebhooks();
        return ok({ paused: true });
      }
      if (req.method === 'POST' && path === '/webhooks/resume') {
        this.resumeWebhooks();
        return ok({ paused: false });
      }
      if (req.method === 'GET' && path === '/events') return ok({ data: this.events() });
      if (req.method === 'POST' && path === '/events') {
        const b = body();
        if (typeof b.type !== 'string') return { status: 400, body: { error: 'type is required' } };
        return ok(this.emitEvent(b.type, b.object ?? {}));
      }
      if (req.method === 'POST' && path === '/idempotency/expire') {
        return ok({ expired: this.expireIdempotencyKeys(Number(body().olderThanMs ?? 0)) });
      }
      if (req.method === 'GET' && (m = /^\/hosted\/([A-Za-z0-9_]+)(\/pdf)?$/.exec(path))) {
        const inv = this.invoice(m[1]);
        if (!inv || inv.status === 'draft') return { status: 404, body: 'Not found' };
        return m[2] ? hostedPdf(inv) : hostedPage(inv);
      }
      return undefined;
    } catch (e) {
      if (e instanceof StripeSimError) return { status: e.status, body: e.toBody() };
      return { status: 400, body: { error: e instanceof Error ? e.message : String(e) } };
    }
  }
}

function headerOf(req: SimRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function formatAmount(amount: number, currency: string): string {
  if (ZERO_DECIMAL.has(currency))
    return `${currency.toUpperCase()} ${amount.toLocaleString('en-US')}`;
  return `${currency.toUpperCase()} ${(amount / 100).toFixed(2)}`;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function hostedPage(inv: SimInvoice): SimResponse {
  const rows = inv.lines.data
    .map(
      (l) =>
        `<tr><td>${escapeHtml(l.description ?? '')}</td><td>${formatAmount(l.amount, l.currency)}</td></tr>`,
    )
    .join('');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>Invoice ${escapeHtml(inv.number ?? inv.id)}</title></head><body>
<h1>Invoice ${escapeHtml(inv.number ?? inv.id)}</h1><p>Status: ${inv.status}</p>
<table>${rows}</table><p>Tax: ${formatAmount(inv.tax, inv.currency)}</p><p>Total: ${formatAmount(inv.total, inv.currency)}</p>
<p>(Stripe simulator — test mode)</p></body></html>`;
  return { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: html };
}

function hostedPdf(inv: SimInvoice): SimResponse {
  // Not a real PDF renderer: a minimal, valid one-page PDF with the invoice number and total.
  const text =
    `Invoice ${inv.number ?? inv.id} total ${formatAmount(inv.total, inv.currency)}`.replace(
      /[()\\]/g,
      '',
    );
  const stream = `BT /F1 14 Tf 50 750 Td (${text}) Tj ET`;
  const objs = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let pdf = '%PDF-1.4\n';
  const offsets: number[] = [];
  objs.forEach((o, i) => {
    offsets.push(pdf.length);
    pdf += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = pdf.length;
  pdf += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) pdf += `${String(off).padStart(10, '0')} 00000 n \n`;
  pdf += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return {
    status: 200,
    headers: { 'content-type': 'application/pdf' },
    body: Buffer.from(pdf, 'latin1'),
  };
}

// ---------------------------------------------------------------------------------------------
// Form decoding
/**
 * Decoder for Stripe's `application/x-www-form-urlencoded` bracket notation
 * (`metadata[deal]=x`, `tax_rates[0]=txr_1`, `expand[]=lines`, `a[b][0][c]=1`) into nested
 * objects and arrays. Values stay strings, as on the wire.
 */
export type FormValue = string | FormValue[] | { [key: string]: FormValue };
export type FormObject = { [key: string]: FormValue };

export class FormDecodeError extends Error {}

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

function splitKey(key: string): string[] {
  const open = key.indexOf('[');
  if (open <= 0) return [key];
  const segments = [key.slice(0, open)];
  let rest = key.slice(open);
  while (rest.length > 0) {
    const m = /^\[([^[\]]*)\]/.exec(rest);
    if (!m) throw new FormDecodeError(`Invalid parameter name: ${key}`);
    segments.push(m[1]);
    rest = rest.slice(m[0].length);
  }
  return segments;
}

const isIndex = (s: string) => s === '' || /^\d+$/.test(s);

export function decodeForm(entries: Iterable<[string, string]>): FormObject {
  const root: FormObject = {};
  for (const [key, value] of entries) {
    const segments = splitKey(key);
    for (const s of segments) {
      if (FORBIDDEN.has(s)) throw new FormDecodeError(`Invalid parameter name: ${key}`);
    }
    let container: FormObject | FormValue[] = root;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      const last = i === segments.length - 1;
      if (Array.isArray(container)) {
        if (!isIndex(seg)) throw new FormDecodeError(`Invalid array index in ${key}`);
        const idx: number = seg === '' ? container.length : Number(seg);
        if (idx > 10_000) throw new FormDecodeError(`Array index too large in ${key}`);
        if (last) {
          container[idx] = value;
        } else {
          const child: FormValue = container[idx] ?? (isIndex(segments[i + 1]) ? [] : {});
          if (typeof child === 'string') throw new FormDecodeError(`Conflicting parameter ${key}`);
          container[idx] = child;
          container = child;
        }
      } else {
        if (last) {
          const existing = container[seg];
          if (existing !== undefined && typeof existing !== 'string') {
            throw new FormDecodeError(`Conflicting parameter ${key}`);
          }
          container[seg] = value;
        } else {
          const child: FormValue = container[seg] ?? (isIndex(segments[i + 1]) ? [] : {});
          if (typeof child === 'string') throw new FormDecodeError(`Conflicting parameter ${key}`);
          container[seg] = child;
          container = child;
        }
      }
    }
  }
  return compact(root) as FormObject;
}

/** Removes holes left by sparse indexes (`a[0]`, `a[2]`). */
function compact(v: FormValue): FormValue {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.filter((x) => x !== undefined).map(compact);
  for (const k of Object.keys(v)) v[k] = compact(v[k]);
  return v;
}

/** Encodes nested params the way stripe-node does (for tests and for building requests). */
export function encodeForm(data: Record<string, unknown>): string {
  const pairs: string[] = [];
  const enc = (key: string, value: unknown) => {
    if (value === undefined) return;
    if (value === null || typeof value !== 'object') {
      pairs.push(
        `${encodeURIComponent(key)}=${encodeURIComponent(value === null ? '' : String(value))}`,
      );
    } else if (Array.isArray(value)) {
      value.forEach((x, i) => enc(`${key}[${i}]`, x));
    } else {
      for (const [k, x] of Object.entries(value)) enc(`${key}[${k}]`, x);
    }
  };
  for (const [k, v] of Object.entries(data)) enc(k, v);
  return pairs.join('&');
}
