import { randomUUID } from 'node:crypto';

import { type Delivery, hubspotDelivery } from '../signed-delivery';
import type { SimProviderModule, SimRequest, SimResponse, SimWebhookTarget } from './sim.types';

/*
 * HubSpot CRM v3 objects as `@hubspot/api-client` 13 calls them, plus HubSpot webhooks v3
 * (provider-facts §2, CONTRACT §3.2). A test, demo and benchmark aid; never a code path of the hub.
 */

// ---------------------------------------------------------------------------------------------
// Webhook outbox (shared with the DocuSign module): async, ordered, retried, pausable.
// ---------------------------------------------------------------------------------------------

export interface OutboxAttempt<T> {
  items: T[];
  /** 0 for the first try. */
  attempt: number;
  /** HTTP status, or 'error' for a connection failure / timeout, or 'no-target'. */
  outcome: number | 'error' | 'no-target';
  at: number;
}

export interface OutboxOptions<T> {
  /** Items per delivery (HubSpot batches up to 100 events; DocuSign SIM sends one message). */
  maxBatch: number;
  /** Total tries per delivery (default 4). */
  attempts?: number;
  /** Wait before retry n is n × this (default 50 ms). */
  retryDelayMs?: number;
  /** Sends one delivery; answers the HTTP status, 'no-target', or throws on a network error. */
  send(items: T[], attempt: number): Promise<number | 'no-target'>;
}

/** Sends queued webhook items one delivery at a time, in order, retrying non-2xx answers. */
export class SimWebhookOutbox<T> {
  private queue: T[] = [];
  private paused = false;
  private running: Promise<void> | undefined;
  private generation = 0;
  /** Every try, in order. */
  readonly attemptsLog: OutboxAttempt<T>[] = [];
  /** Deliveries given up after all tries (or with no target). */
  readonly dead: T[][] = [];
  /** Deliveries answered 2xx. */
  readonly delivered: T[][] = [];

  constructor(private readonly opts: OutboxOptions<T>) {}

  enqueue(item: T): void {
    this.queue.push(item);
    this.kick();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.kick();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Items waiting (not counting a delivery in flight). */
  get pending(): number {
    return this.queue.length;
  }

  /** Resolves once nothing is in flight (queued items stay queued while paused). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Drops the queue and the logs; a delivery in flight is abandoned before its next try. */
  clear(): void {
    this.generation++;
    this.queue = [];
    this.paused = false;
    this.attemptsLog.length = 0;
    this.dead.length = 0;
    this.delivered.length = 0;
  }

  private kick(): void {
    if (this.running || this.paused || this.queue.length === 0) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      this.kick();
    });
  }

  private async drain(): Promise<void> {
    const attempts = Math.max(1, this.opts.attempts ?? 4);
    const delay = this.opts.retryDelayMs ?? 50;
    while (!this.paused && this.queue.length > 0) {
      const generation = this.generation;
      const batch = this.queue.splice(0, Math.max(1, this.opts.maxBatch));
      let ok = false;
      for (let attempt = 0; attempt < attempts && !ok; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, delay * attempt));
        if (generation !== this.generation) return;
        let outcome: OutboxAttempt<T>['outcome'];
        try {
          outcome = await this.opts.send(batch, attempt);
        } catch {
          outcome = 'error';
        }
        if (generation !== this.generation) return;
        this.attemptsLog.push({ items: batch, attempt, outcome, at: Date.now() });
        if (outcome === 'no-target') break;
        ok = typeof outcome === 'number' && outcome >= 200 && outcome < 300;
      }
      (ok ? this.delivered : this.dead).push(batch);
    }
  }
}

/** POSTs a signed delivery to the hub with a timeout (providers give up after a few seconds). */
export async function postDelivery(
  baseUrl: string,
  d: Delivery,
  timeoutMs = 5000,
): Promise<number> {
  const res = await fetch(`${baseUrl.replace(/\/+$/, '')}${d.path}`, {
    method: 'POST',
    headers: d.headers,
    body: d.body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.arrayBuffer();
  return res.status;
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

export function parseJsonBody(req: SimRequest): { ok: true; value: unknown } | { ok: false } {
  if (req.rawBody.length === 0) return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(req.rawBody.toString('utf8')) as unknown };
  } catch {
    return { ok: false };
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bearer(req: SimRequest): string | undefined {
  const h = req.headers.authorization;
  const value = Array.isArray(h) ? h[0] : h;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(value ?? '');
  return m?.[1];
}

/** Query values given repeated (`a=1&a=2`, what the SDK sends) or comma-separated. */
function listParam(query: URLSearchParams, name: string): string[] | undefined {
  const all = query.getAll(name);
  if (all.length === 0) return undefined;
  return all
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
}

// ---------------------------------------------------------------------------------------------
// HubSpot
// ---------------------------------------------------------------------------------------------

export type HubspotObjectType = 'deals' | 'contacts' | 'companies' | 'notes';

const TYPE_ALIASES: Record<string, HubspotObjectType> = {
  deals: 'deals',
  deal: 'deals',
  '0-3': 'deals',
  contacts: 'contacts',
  contact: 'contacts',
  '0-1': 'contacts',
  companies: 'companies',
  company: 'companies',
  '0-2': 'companies',
  notes: 'notes',
  note: 'notes',
  '0-46': 'notes',
};

const SINGULAR: Record<HubspotObjectType, string> = {
  deals: 'deal',
  contacts: 'contact',
  companies: 'company',
  notes: 'note',
};

/** First ids per type (HubSpot ids are numeric strings). */
const ID_BASE: Record<HubspotObjectType, number> = {
  contacts: 51_000_000_000,
  companies: 52_000_000_000,
  deals: 53_000_000_000,
  notes: 54_000_000_000,
};

/** What HubSpot returns when `properties` is not given. */
const DEFAULT_PROPERTIES: Record<HubspotObjectType, string[]> = {
  deals: [
    'amount',
    'closedate',
    'createdate',
    'dealname',
    'dealstage',
    'hs_lastmodifieddate',
    'hs_object_id',
    'pipeline',
  ],
  contacts: ['createdate', 'email', 'firstname', 'hs_object_id', 'lastmodifieddate', 'lastname'],
  companies: ['createdate', 'domain', 'hs_lastmodifieddate', 'hs_object_id', 'name'],
  notes: ['hs_createdate', 'hs_lastmodifieddate', 'hs_object_id'],
};

/** Noteto deal (HUBSPOT_DEFINED) [HS-SDK-ASSOC]. */
export const NOTE_TO_DEAL_ASSOCIATION = 214;

/** Subscription ids of the simulated app's subscriptions. */
export const HUBSPOT_SUBSCRIPTION_IDS = {
  'deal.creation': 1001,
  'deal.propertyChange': 1002,
  'deal.deletion': 1003,
} as const;

export type HubspotSubscriptionType = keyof typeof HUBSPOT_SUBSCRIPTION_IDS;

/** One element of a HubSpot webhooks v3 body [HS-WH]. */
export interface HubspotWebhookEvent {
  eventId: number;
  subscriptionId: number;
  portalId: number;
  appId: number;
  occurredAt: number;
  subscriptionType: HubspotSubscriptionType | string;
  attemptNumber: number;
  objectId: number;
  propertyName?: string;
  propertyValue?: string;
  changeSource: string;
  sourceId?: string;
}

interface StoredObject {
  id: string;
  type: HubspotObjectType;
  properties: Record<string, string | null>;
  createdAt: Date;
  updatedAt: Date;
  archived: boolean;
  archivedAt?: Date;
  assoc: Record<HubspotObjectType, Set<string>>;
}

export interface HubspotSimOptions {
  /** When set, only this private-app token is accepted; otherwise any bearer token. */
  accessToken?: string;
  portalId?: number;
  appId?: number;
  /**
   * Deal properties whose changes emit `deal.propertyChange` (default: the hub's subscriptions,
   * `dealstage` and `closeloop_cosell`).
   */
  subscribedProperties?: string[];
  /** Webhook tries per batch (default 4) and linear back-off step (default 50 ms). */
  webhookAttempts?: number;
  webhookRetryDelayMs?: number;
  /** Clock (default `() => new Date()`). */
  now?: () => Date;
}

export interface CreateDealInput {
  properties?: Record<string, string | number | null | undefined>;
  /** The contact's properties (email, firstname, lastname, phone, …). */
  contact?: {
    email?: string;
    firstname?: string;
    lastname?: string;
    [property: string]: string | undefined;
  };
  /** The company's properties (name, domain, address, city, zip, country, …). */
  company?: { name?: string; domain?: string; [property: string]: string | undefined };
}

export interface SimHubspotNote {
  id: string;
  body: string | null;
  timestamp: string | null;
  properties: Record<string, string | null>;
  createdAt: string;
}

export interface SimHubspotDeal {
  id: string;
  properties: Record<string, string | null>;
  archived: boolean;
  contactIds: string[];
  companyIds: string[];
  createdAt: string;
  updatedAt: string;
}

function correlationId(): string {
  return randomUUID();
}

function hsError(
  status: number,
  category: string,
  message: string,
  extra: Record<string, unknown> = {},
): SimResponse {
  return {
    status,
    headers: { 'content-type': 'application/json;charset=utf-8' },
    body: { status: 'error', message, correlationId: correlationId(), category, ...extra },
  };
}

/**
 * HubSpot's 429 (what the core fault injector can answer for HubSpot routes): the SDK retries
 * `TEN_SECONDLY_ROLLING` after 10 s × attempt; `DAILY` means stop until reset [HS-SDK-RETRY].
 */
export function hubspotRateLimitResponse(
  policy: 'TEN_SECONDLY_ROLLING' | 'DAILY' = 'TEN_SECONDLY_ROLLING',
): SimResponse {
  const ten = policy === 'TEN_SECONDLY_ROLLING';
  return {
    status: 429,
    headers: {
      'content-type': 'application/json;charset=utf-8',
      'X-HubSpot-RateLimit-Daily': '250000',
      'X-HubSpot-RateLimit-Daily-Remaining': ten ? '249000' : '0',
      'X-HubSpot-RateLimit-Interval-Milliseconds': '10000',
      'X-HubSpot-RateLimit-Max': '100',
      'X-HubSpot-RateLimit-Remaining': '0',
      'X-HubSpot-RateLimit-Secondly': '10',
      'X-HubSpot-RateLimit-Secondly-Remaining': '0',
    },
    body: {
      status: 'error',
      message: ten
        ? 'You have reached your ten_secondly_rolling limit.'
        : 'You have reached your daily limit.',
      errorType: 'RATE_LIMIT',
      correlationId: correlationId(),
      policyName: policy,
    },
  };
}

const UNAUTHENTICATED =
  'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview';

export class HubspotSim implements SimProviderModule {
  readonly name = 'hubspot' as const;
  readonly portalId: number;
  readonly appId: number;
  private readonly now: () => Date;
  private readonly subscribed: Set<string>;
  private objects = new Map<string, StoredObject>();
  private counters: Record<HubspotObjectType, number> = {
    deals: 0,
    contacts: 0,
    companies: 0,
    notes: 0,
  };
  private eventCounter = 0;
  private target: SimWebhookTarget | undefined;
  /** HubSpot webhooks v3: arrays of up to 100 events per request [HS-WH]. */
  readonly webhooks: SimWebhookOutbox<HubspotWebhookEvent>;

  constructor(private readonly options: HubspotSimOptions = {}) {
    this.portalId = options.portalId ?? 62515;
    this.appId = options.appId ?? 1160452;
    this.now = options.now ?? (() => new Date());
    this.subscribed = new Set(options.subscribedProperties ?? ['dealstage', 'closeloop_cosell']);
    this.webhooks = new SimWebhookOutbox<HubspotWebhookEvent>({
      maxBatch: 100,
      attempts: options.webhookAttempts,
      retryDelayMs: options.webhookRetryDelayMs,
      send: (events, attempt) => this.sendWebhook(events, attempt),
    });
  }

  // --------------------------------------------------------------------------- module interface

  matches(req: SimRequest): boolean {
    return req.path.startsWith('/crm/');
  }

  reset(): void {
    this.objects.clear();
    this.counters = { deals: 0, contacts: 0, companies: 0, notes: 0 };
    this.eventCounter = 0;
    this.webhooks.clear();
  }

  setTarget(target: SimWebhookTarget | undefined): void {
    this.target = target;
  }

  async close(): Promise<void> {
    this.webhooks.pause();
    await this.webhooks.idle();
  }

  handle(req: SimRequest): SimResponse {
    const token = bearer(req);
    if (!token) return hsError(401, 'INVALID_AUTHENTICATION', UNAUTHENTICATED);
    if (this.options.accessToken && token !== this.options.accessToken) {
      return hsError(
        401,
        'INVALID_AUTHENTICATION',
        'Authentication credentials not found. This API supports both API Key and OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview',
      );
    }
    const m = /^\/crm\/v3\/objects\/([^/]+)(?:\/([^/]+))?\/?$/.exec(req.path);
    const type = m ? TYPE_ALIASES[m[1]] : undefined;
    if (!m || !type) {
      return hsError(404, 'OBJECT_NOT_FOUND', `No route for ${req.method} ${req.path}`);
    }
    const id = m[2] ? decodeURIComponent(m[2]) : undefined;
    const method = req.method.toUpperCase();
    if (id === 'search' && method === 'POST') return this.apiSearch(type, req);
    if (!id && method === 'POST') return this.apiCreate(type, req);
    if (!id && method === 'GET') return this.apiList(type, req);
    if (id && method === 'GET') return this.apiGet(type, id, req);
    if (id && method === 'PATCH') return this.apiUpdate(type, id, req);
    if (id && method === 'DELETE') return this.apiArchive(type, id);
    return hsError(405, 'VALIDATION_ERROR', `${req.method} is not supported on ${req.path}`);
  }

  /** Control API under `/_sim/hubspot/` (for the demo and for tests driving a separate process). */
  async control(req: SimRequest): Promise<SimResponse | undefined> {
    const path = req.path.replace(/^\/_sim\/hubspot/, '');
    const method = req.method.toUpperCase();
    const parsed = parseJsonBody(req);
    if (!parsed.ok) return { status: 400, body: { error: 'invalid JSON' } };
    const body = isRecord(parsed.value) ? parsed.value : {};
    const ok = (b: unknown = { ok: true }): SimResponse => ({ status: 200, body: b });
    let m: RegExpExecArray | null;
    try {
      if (method === 'POST' && path === '/deals') {
        return { status: 201, body: this.createDeal(body as CreateDealInput) };
      }
      if ((m = /^\/deals\/([^/]+)$/.exec(path))) {
        if (method === 'GET') {
          const deal = this.deal(m[1]);
          return deal ? ok(deal) : { status: 404, body: { error: 'no such deal' } };
        }
        if (method === 'PATCH') {
          const props = (isRecord(body.properties) ? body.properties : body) as Record<
            string,
            string
          >;
          this.updateDeal(m[1], props);
          return ok(this.deal(m[1]));
        }
        if (method === 'DELETE') {
          this.deleteDeal(m[1]);
          return ok();
        }
      }
      if (method === 'POST' && (m = /^\/deals\/([^/]+)\/stage$/.exec(path))) {
        this.setStage(m[1], String(body.stage));
        return ok(this.deal(m[1]));
      }
      if (method === 'GET' && (m = /^\/deals\/([^/]+)\/notes$/.exec(path))) {
        return ok(this.notesFor(m[1]));
      }
      if (method === 'POST' && path === '/webhooks/pause') {
        this.webhooks.pause();
        return ok();
      }
      if (method === 'POST' && path === '/webhooks/resume') {
        this.webhooks.resume();
        return ok();
      }
      if (method === 'GET' && path === '/webhooks') {
        return ok({
          paused: this.webhooks.isPaused,
          pending: this.webhooks.pending,
          delivered: this.webhooks.delivered.length,
          dead: this.webhooks.dead.length,
        });
      }
    } catch (err) {
      return { status: 400, body: { error: (err as Error).message } };
    }
    return undefined;
  }

  // --------------------------------------------------------------------------- seeding API

  /** Creates a deal (and optionally a contact and a company associated with it); emits `deal.creation`. */
  createDeal(input: CreateDealInput = {}): {
    dealId: string;
    contactId?: string;
    companyId?: string;
  } {
    const deal = this.insert('deals', {
      pipeline: 'default',
      dealstage: 'appointmentscheduled',
      ...stringProps(input.properties ?? {}),
    });
    let contactId: string | undefined;
    let companyId: string | undefined;
    if (input.contact) {
      contactId = this.createContact(input.contact);
      this.associate(deal.id, contactId);
    }
    if (input.company) {
      companyId = this.createCompany(input.company);
      this.associate(deal.id, companyId);
      if (contactId) this.associate(contactId, companyId);
    }
    this.emitDealEvent('deal.creation', deal.id, 'CRM_UI');
    return { dealId: deal.id, contactId, companyId };
  }

  createContact(props: Record<string, string | undefined>): string {
    return this.insert('contacts', stringProps(props)).id;
  }

  createCompany(props: Record<string, string | undefined>): string {
    return this.insert('companies', stringProps(props)).id;
  }

  /** Associates two existing objects (both directions). */
  associate(fromId: string, toId: string): void {
    const a = this.mustGet(fromId);
    const b = this.mustGet(toId);
    a.assoc[b.type].add(b.id);
    b.assoc[a.type].add(a.id);
  }

  /** Moves the deal to `stage` as a user in HubSpot would (emits `deal.propertyChange`). */
  setStage(dealId: string, stage: string): void {
    this.updateDeal(dealId, { dealstage: stage });
  }

  /** Changes deal properties as a user would; emits `deal.propertyChange` for subscribed properties that changed. */
  updateDeal(
    dealId: string,
    props: Record<string, string | number | null | undefined>,
    changeSource = 'CRM_UI',
  ): void {
    const deal = this.mustGet(dealId, 'deals');
    if (deal.archived) throw new Error(`deal ${dealId} is deleted`);
    this.applyProps(deal, stringProps(props), changeSource);
  }

  /** Archives the deal (emits `deal.deletion`). */
  deleteDeal(dealId: string): void {
    const deal = this.mustGet(dealId, 'deals');
    if (deal.archived) return;
    deal.archived = true;
    deal.archivedAt = this.now();
    this.emitDealEvent('deal.deletion', deal.id, 'CRM_UI');
  }

  deal(dealId: string): SimHubspotDeal | undefined {
    const d = this.objects.get(dealId);
    if (!d || d.type !== 'deals') return undefined;
    return {
      id: d.id,
      properties: { ...d.properties },
      archived: d.archived,
      contactIds: [...d.assoc.contacts],
      companyIds: [...d.assoc.companies],
      createdAt: d.createdAt.toISOString(),
      updatedAt: d.updatedAt.toISOString(),
    };
  }

  deals(): SimHubspotDeal[] {
    return [...this.objects.values()]
      .filter((o) => o.type === 'deals')
      .map((o) => this.deal(o.id) as SimHubspotDeal);
  }

  /** Notes associated with the deal, oldest first. */
  notesFor(dealId: string): SimHubspotNote[] {
    const deal = this.objects.get(dealId);
    if (!deal) return [];
    return [...deal.assoc.notes]
      .map((id) => this.objects.get(id) as StoredObject)
      .sort((a, b) => Number(a.id) - Number(b.id))
      .map((n) => ({
        id: n.id,
        body: n.properties.hs_note_body ?? null,
        timestamp: n.properties.hs_timestamp ?? null,
        properties: { ...n.properties },
        createdAt: n.createdAt.toISOString(),
      }));
  }

  /** Queues an arbitrary (e.g. duplicate or unknown) event; missing fields are filled in. */
  emitEvent(event: Partial<HubspotWebhookEvent> & { objectId: number | string }): void {
    this.webhooks.enqueue({
      eventId: this.nextEventId(),
      subscriptionId: 1,
      portalId: this.portalId,
      appId: this.appId,
      occurredAt: this.now().getTime(),
      subscriptionType: 'deal.propertyChange',
      attemptNumber: 0,
      changeSource: 'CRM_UI',
      ...event,
      objectId: Number(event.objectId),
    });
  }

  pauseWebhooks(): void {
    this.webhooks.pause();
  }

  resumeWebhooks(): void {
    this.webhooks.resume();
  }

  /** Resolves once no webhook delivery is in flight. */
  webhooksIdle(): Promise<void> {
    return this.webhooks.idle();
  }

  // --------------------------------------------------------------------------- REST handlers

  private apiGet(type: HubspotObjectType, id: string, req: SimRequest): SimResponse {
    const obj = this.objects.get(id);
    const wantArchived = req.query.get('archived') === 'true';
    if (!obj || obj.type !== type || obj.archived !== wantArchived) {
      return hsError(404, 'OBJECT_NOT_FOUND', 'resource not found');
    }
    return { status: 200, body: this.render(obj, req.query) };
  }

  private apiList(type: HubspotObjectType, req: SimRequest): SimResponse {
    const limit = Math.min(100, Math.max(1, Number(req.query.get('limit') ?? 10) || 10));
    const after = req.query.get('after');
    const wantArchived = req.query.get('archived') === 'true';
    const all = [...this.objects.values()]
      .filter((o) => o.type === type && o.archived === wantArchived)
      .sort((a, b) => Number(a.id) - Number(b.id));
    const start = after ? all.findIndex((o) => Number(o.id) > Number(after)) : 0;
    const page = start < 0 ? [] : all.slice(start, start + limit);
    const more = start >= 0 && start + limit < all.length;
    return {
      status: 200,
      body: {
        results: page.map((o) => this.render(o, req.query)),
        ...(more
          ? {
              paging: {
                next: {
                  after: page[page.length - 1].id,
                  link: `?after=${page[page.length - 1].id}`,
                },
              },
            }
          : {}),
      },
    };
  }

  /**
   * `POST /crm/v3/objects/{type}/search`, the subset the hub uses: filter groups (OR) of `EQ`
   * filters (AND) on properties, `properties`, `limit`. Real HubSpot indexes new objects for search
   * after a few seconds; the simulator finds them at once.
   */
  private apiSearch(type: HubspotObjectType, req: SimRequest): SimResponse {
    const parsed = parseJsonBody(req);
    if (!parsed.ok || !isRecord(parsed.value)) {
      return hsError(400, 'VALIDATION_ERROR', 'Invalid input JSON on line 1');
    }
    const body = parsed.value;
    const groups = Array.isArray(body.filterGroups) ? body.filterGroups : [];
    const filters = groups.map((g) =>
      isRecord(g) && Array.isArray(g.filters) ? g.filters.filter(isRecord) : [],
    );
    const unsupported = filters.flat().find((f) => f.operator !== 'EQ');
    if (unsupported) {
      return hsError(400, 'VALIDATION_ERROR', `the simulator supports EQ filters only`);
    }
    const limit = Math.min(200, Math.max(1, Number(body.limit ?? 10) || 10));
    const all = [...this.objects.values()]
      .filter((o) => o.type === type && !o.archived)
      .filter(
        (o) =>
          filters.length === 0 ||
          filters.some((group) =>
            group.every((f) => o.properties[String(f.propertyName)] === String(f.value)),
          ),
      )
      .sort((a, b) => Number(a.id) - Number(b.id));
    const query = new URLSearchParams();
    if (Array.isArray(body.properties)) query.set('properties', body.properties.join(','));
    return {
      status: 200,
      body: { total: all.length, results: all.slice(0, limit).map((o) => this.render(o, query)) },
    };
  }

  private apiCreate(type: HubspotObjectType, req: SimRequest): SimResponse {
    const parsed = parseJsonBody(req);
    if (!parsed.ok || !isRecord(parsed.value)) {
      return hsError(400, 'VALIDATION_ERROR', 'Invalid input JSON on line 1');
    }
    const input = parsed.value;
    const props = this.validateProps(input.properties ?? {});
    if (typeof props === 'string') return hsError(400, 'VALIDATION_ERROR', props);
    const associations = this.validateAssociations(type, input.associations);
    if (typeof associations === 'string') return hsError(400, 'VALIDATION_ERROR', associations);
    if (type === 'notes' && !props.hs_timestamp) {
      return hsError(400, 'VALIDATION_ERROR', 'Property values were not valid', {
        errors: [
          {
            message: 'Property "hs_timestamp" is required',
            code: 'REQUIRED_FIELD',
            context: { propertyName: ['hs_timestamp'] },
          },
        ],
      });
    }
    const defaults: Record<string, string> =
      type === 'deals' ? { pipeline: 'default', dealstage: 'appointmentscheduled' } : {};
    const obj = this.insert(type, { ...defaults, ...props });
    for (const toId of associations) this.associate(obj.id, toId);
    if (type === 'deals') this.emitDealEvent('deal.creation', obj.id, 'INTEGRATION');
    return { status: 201, body: this.renderAll(obj) };
  }

  private apiUpdate(type: HubspotObjectType, id: string, req: SimRequest): SimResponse {
    const obj = this.objects.get(id);
    if (!obj || obj.type !== type || obj.archived) {
      return hsError(404, 'OBJECT_NOT_FOUND', 'resource not found');
    }
    const parsed = parseJsonBody(req);
    if (!parsed.ok || !isRecord(parsed.value)) {
      return hsError(400, 'VALIDATION_ERROR', 'Invalid input JSON on line 1');
    }
    const props = this.validateProps(parsed.value.properties ?? {});
    if (typeof props === 'string') return hsError(400, 'VALIDATION_ERROR', props);
    // Changes made through the API (by the hub itself) notify too, like HubSpot does.
    this.applyProps(obj, props, 'INTEGRATION');
    return { status: 200, body: this.renderAll(obj) };
  }

  private apiArchive(type: HubspotObjectType, id: string): SimResponse {
    const obj = this.objects.get(id);
    if (obj && obj.type === type && !obj.archived) {
      obj.archived = true;
      obj.archivedAt = this.now();
      if (type === 'deals') this.emitDealEvent('deal.deletion', obj.id, 'INTEGRATION');
    }
    return { status: 204 };
  }

  private validateProps(raw: unknown): Record<string, string | null> | string {
    if (!isRecord(raw)) return 'Invalid input JSON: "properties" must be an object';
    const out: Record<string, string | null> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (v === null) out[k] = null;
      else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
        out[k] = String(v);
      } else return `Property values were not valid: "${k}" must be a string`;
    }
    return out;
  }

  private validateAssociations(type: HubspotObjectType, raw: unknown): string[] | string {
    if (raw === undefined) return [];
    if (!Array.isArray(raw)) return 'Invalid input JSON: "associations" must be an array';
    const ids: string[] = [];
    for (const a of raw) {
      const to = isRecord(a) && isRecord(a.to) ? String(a.to.id) : undefined;
      const types = isRecord(a) && Array.isArray(a.types) ? (a.types as unknown[]) : [];
      const target = to ? this.objects.get(to) : undefined;
      if (!to || !target || target.archived) {
        return `One or more associations are invalid: ${to ?? '(missing to.id)'} was not found`;
      }
      for (const t of types) {
        if (!isRecord(t) || t.associationCategory !== 'HUBSPOT_DEFINED') continue;
        if (type === 'notes' && target.type === 'deals') {
          if (t.associationTypeId !== NOTE_TO_DEAL_ASSOCIATION) {
            return `One or more associations are invalid: association type ${String(
              t.associationTypeId,
            )} is not valid between note and deal`;
          }
        }
      }
      if (types.length === 0) return 'One or more associations are invalid: no association types';
      ids.push(to);
    }
    return ids;
  }

  // --------------------------------------------------------------------------- internals

  private insert(type: HubspotObjectType, props: Record<string, string | null>): StoredObject {
    const id = String(ID_BASE[type] + ++this.counters[type]);
    const now = this.now();
    const obj: StoredObject = {
      id,
      type,
      properties: props,
      createdAt: now,
      updatedAt: now,
      archived: false,
      assoc: { deals: new Set(), contacts: new Set(), companies: new Set(), notes: new Set() },
    };
    this.objects.set(id, obj);
    return obj;
  }

  private mustGet(id: string, type?: HubspotObjectType): StoredObject {
    const obj = this.objects.get(String(id));
    if (!obj || (type && obj.type !== type)) {
      throw new Error(`no ${type ? SINGULAR[type] : 'object'} ${id}`);
    }
    return obj;
  }

  private applyProps(
    obj: StoredObject,
    props: Record<string, string | null>,
    changeSource: string,
  ): void {
    const changed: string[] = [];
    for (const [k, v] of Object.entries(props)) {
      if ((obj.properties[k] ?? null) !== v) changed.push(k);
      obj.properties[k] = v;
    }
    obj.updatedAt = this.now();
    if (obj.type !== 'deals') return;
    for (const k of changed) {
      if (this.subscribed.has(k)) {
        this.emitDealEvent('deal.propertyChange', obj.id, changeSource, k, props[k] ?? '');
      }
    }
  }

  private systemProps(obj: StoredObject): Record<string, string> {
    const created = obj.createdAt.toISOString();
    const modified = obj.updatedAt.toISOString();
    const out: Record<string, string> = {
      hs_object_id: obj.id,
      createdate: created,
      hs_lastmodifieddate: modified,
    };
    if (obj.type === 'contacts') out.lastmodifieddate = modified;
    if (obj.type === 'notes') out.hs_createdate = created;
    return out;
  }

  private base(obj: StoredObject, properties: Record<string, string | null>) {
    return {
      id: obj.id,
      properties,
      createdAt: obj.createdAt.toISOString(),
      updatedAt: obj.updatedAt.toISOString(),
      archived: obj.archived,
      ...(obj.archivedAt ? { archivedAt: obj.archivedAt.toISOString() } : {}),
    };
  }

  /** GET shape: the requested properties (null when unset) + the system ones, and associations. */
  private render(obj: StoredObject, query: URLSearchParams) {
    const sys = this.systemProps(obj);
    const requested = listParam(query, 'properties') ?? DEFAULT_PROPERTIES[obj.type];
    const properties: Record<string, string | null> = {};
    for (const name of [...requested, 'hs_object_id', 'createdate', 'hs_lastmodifieddate']) {
      if (name === 'hs_lastmodifieddate' && obj.type === 'contacts') {
        properties.lastmodifieddate = sys.lastmodifieddate;
        continue;
      }
      properties[name] = obj.properties[name] ?? sys[name] ?? null;
    }
    const out: Record<string, unknown> = this.base(obj, properties);
    const associations: Record<string, unknown> = {};
    for (const assocName of listParam(query, 'associations') ?? []) {
      const toType = TYPE_ALIASES[assocName];
      if (!toType) continue;
      const results = [...obj.assoc[toType]]
        .filter((id) => !this.objects.get(id)?.archived)
        .map((id) => ({ id, type: `${SINGULAR[obj.type]}_to_${SINGULAR[toType]}` }));
      // HubSpot leaves out association types with no results.
      if (results.length > 0) associations[assocName] = { results };
    }
    if (Object.keys(associations).length > 0) out.associations = associations;
    return out;
  }

  /** POST/PATCH shape: every stored property + the system ones. */
  private renderAll(obj: StoredObject) {
    return this.base(obj, { ...obj.properties, ...this.systemProps(obj) });
  }

  private nextEventId(): number {
    return 100_000 + ++this.eventCounter;
  }

  private emitDealEvent(
    type: HubspotSubscriptionType,
    dealId: string,
    changeSource: string,
    propertyName?: string,
    propertyValue?: string,
  ): void {
    if (!this.target) return;
    this.webhooks.enqueue({
      eventId: this.nextEventId(),
      subscriptionId: HUBSPOT_SUBSCRIPTION_IDS[type],
      portalId: this.portalId,
      appId: this.appId,
      occurredAt: this.now().getTime(),
      subscriptionType: type,
      attemptNumber: 0,
      objectId: Number(dealId),
      ...(propertyName !== undefined ? { propertyName, propertyValue } : {}),
      changeSource,
    });
  }

  private async sendWebhook(
    events: HubspotWebhookEvent[],
    attempt: number,
  ): Promise<number | 'no-target'> {
    const target = this.target;
    if (!target) return 'no-target';
    const body = events.map((e) => ({ ...e, attemptNumber: e.attemptNumber + attempt }));
    let delivery: Delivery;
    if (target.hubspotClientSecret) {
      delivery = hubspotDelivery(body, {
        clientSecret: target.hubspotClientSecret,
        publicBaseUrl: target.publicBaseUrl ?? target.hubUrl,
      });
    } else {
      // No secret configured: sent unsigned (the hub must refuse it).
      delivery = {
        path: '/webhooks/hubspot',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      };
    }
    return postDelivery(target.hubUrl, delivery);
  }
}

function stringProps(
  props: Record<string, string | number | null | undefined>,
): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined) continue;
    out[k] = v === null ? null : String(v);
  }
  return out;
}
