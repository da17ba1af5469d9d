import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  type PartnerCenterTestCa,
  type PartnerCenterTestCert,
  createPartnerCenterTestCa,
  createPartnerCenterTestCert,
  writePartnerCenterCaFile,
} from '../partner-center-cert';
import { partnerCenterDelivery } from '../signed-delivery';
import { SimWebhookOutbox, parseJsonBody, postDelivery } from './hubspot.sim';
import type { SimProviderModule, SimRequest, SimResponse, SimWebhookTarget } from './sim.types';

/*
 * Microsoft Partner Center as the hub would see it (provider-facts §4, CONTRACT §3.5/§5): an Entra ID
 * style token endpoint (refresh-token grant), the Referrals API (`/v1.0/engagements/referrals`, JSON
 * Patch updates with eTags and the documented status transitions) and signed `referral-created` /
 * `referral-updated` webhooks whose certificate the simulator serves itself: as Microsoft does, a DER
 * leaf whose issuer is named by its authorityInfoAccess URL (served here too) and chains to a root
 * the hub trusts through PARTNER_CENTER_CA_FILE ({@link PartnerCenterSim.hubEnv}). A test, demo and
 * benchmark aid; never a code path of the hub.
 */

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

export type PartnerCenterReferralStatus = 'None' | 'New' | 'Active' | 'Closed';
export type PartnerCenterReferralSubstatus =
  'None' | 'Pending' | 'Received' | 'Accepted' | 'Won' | 'Lost' | 'Declined' | 'Expired';

export interface PartnerCenterMember {
  firstName: string;
  lastName: string;
  email: string;
  phoneNumber: string;
  contactPreference?: { locale?: string; disableNotifications?: boolean };
}

export interface PartnerCenterAddress {
  addressLine1: string;
  addressLine2?: string | null;
  city: string;
  state?: string | null;
  postalCode: string;
  country: string;
  region?: string | null;
}

/** The key fields of a referral [PC-RES] (provider-facts §4.2). */
export interface PartnerCenterReferral {
  id: string;
  engagementId: string;
  organizationId: string;
  name: string;
  externalReferenceId: string | null;
  createdDateTime: string;
  updatedDateTime: string;
  expirationDateTime?: string | null;
  acceptedDateTime?: string | null;
  status: PartnerCenterReferralStatus;
  substatus: PartnerCenterReferralSubstatus;
  statusReason: string | null;
  type: 'Independent' | 'Shared';
  qualification: 'None' | 'Direct' | 'MarketingQualified' | 'SalesQualified';
  direction: 'Incoming' | 'Outgoing';
  referralSource?: string | null;
  callToAction?: string | null;
  customerProfile: {
    name: string;
    address: PartnerCenterAddress;
    size?: string | null;
    team: PartnerCenterMember[];
    ids?: { duns?: string | null; external?: string | null };
  };
  consent: {
    consentToShareInfoWithOthers: boolean;
    consentToContact: boolean;
    consentToShareReferralWithMicrosoftSellers: boolean;
  };
  details: {
    notes: string | null;
    dealValue: number | null;
    currency: string | null;
    closingDateTime: string | null;
    requirements?: {
      industries?: unknown[];
      products?: unknown[];
      services?: unknown[];
      solutions?: unknown[];
    };
  };
  team: PartnerCenterMember[];
  inviteContext?: Record<string, unknown> | null;
  eTag: string;
}

type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends (infer U)[]
    ? U[]
    : T[K] extends object | null | undefined
      ? DeepPartial<NonNullable<T[K]>> | Extract<T[K], null>
      : T[K];
};

export type PartnerCenterReferralInput = DeepPartial<PartnerCenterReferral>;

export type PartnerCenterEventName = 'referral-created' | 'referral-updated';

/** The thin webhook payload [PC-WHE]. */
export interface PartnerCenterWebhookEvent {
  EventName: PartnerCenterEventName;
  ResourceUri: string;
  ResourceName: 'referral';
  AuditUri: null;
  ResourceChangeUtcDate: string;
}

export interface PartnerCenterPatchOp {
  op: string;
  path: string;
  value?: unknown;
}

/** One `PATCH /v1.0/engagements/referrals/:id` the simulator received (accepted or not). */
export interface SimPartnerCenterPatch {
  seq: number;
  referralId: string;
  /** The JSON Patch document as sent (undefined when the body was not JSON). */
  ops: PartnerCenterPatchOp[] | undefined;
  ifMatch: string | undefined;
  prefer: string | undefined;
  /** Status the simulator answered. */
  status: number;
  /** Error code when rejected (`PreconditionFailed`, `InvalidTransition`, …). */
  error?: string;
  /** eTag before and (when applied) after. */
  eTagBefore?: string;
  eTagAfter?: string;
  /** The referral after the change (applied patches only). */
  after?: PartnerCenterReferral;
  at: string;
}

/** One `POST /v1.0/engagements/referrals` the simulator received (created or refused). */
export interface SimPartnerCenterCreate {
  seq: number;
  /** The body as sent (undefined when it was not JSON). */
  body: Record<string, unknown> | undefined;
  /** Status the simulator answered (201, or 400 with the error). */
  status: number;
  error?: string;
  /** The referral created (201 only). */
  created?: PartnerCenterReferral;
  at: string;
}

export interface PartnerCenterSimOptions {
  /** Tenant in the token URL; undefined accepts any tenant segment. */
  tenantId?: string;
  /** Credentials the token endpoint accepts (defaults below, see {@link PARTNER_CENTER_SIM_DEFAULTS}). */
  clientId?: string;
  clientSecret?: string;
  refreshToken?: string;
  /** `expires_in` of access tokens (default 3600 s). */
  accessTokenTtlSeconds?: number;
  /**
   * Signing certificate (default: a leaf of {@link ca} whose authorityInfoAccess names
   * {@link PARTNER_CENTER_SIM_ISSUER_PATH}, issued once the simulator knows its URL).
   */
  cert?: PartnerCenterTestCert;
  /** The simulator's CA (default a new root and intermediate). */
  ca?: PartnerCenterTestCa;
  /** Directory of the CA file hubEnv() names (default a new temporary directory). */
  certDir?: string;
  /**
   * Encoding of the served certificate (default 'der', what Microsoft's `.cer` serves; 'pem': the
   * leaf and its intermediate in one bundle).
   */
  certEncoding?: 'der' | 'pem';
  /**
   * Path (on the simulator) of the certificate named in `X-MS-Certificate-Url`; default
   * {@link PARTNER_CENTER_SIM_CERT_PATH}. {@link PARTNER_CENTER_SIM_CERT_ALIAS_PATH} is served too.
   */
  certificatePath?: string;
  /** Absolute `X-MS-Certificate-Url` override (e.g. an untrusted host, for negative tests). */
  certificateUrl?: string;
  /** Webhook tries per event (default 5; Partner Center itself makes 10) and linear back-off step (default 50 ms). */
  webhookAttempts?: number;
  webhookRetryDelayMs?: number;
  /** Also emit `referral-updated` when the referral is changed through the API (default false). */
  webhookOnApiUpdate?: boolean;
  /** Clock (default `() => new Date()`). */
  now?: () => Date;
}

export const PARTNER_CENTER_SIM_DEFAULTS = {
  tenantId: 'sim-tenant',
  clientId: '00000000-0000-4000-8000-00000000c105',
  clientSecret: 'sim-partner-center-client-secret',
  refreshToken: 'sim-partner-center-refresh-token',
} as const;

/** Resource / audience of the Partner Center APIs [PC-AUTH]. */
export const PARTNER_CENTER_RESOURCE = 'https://api.partner.microsoft.com';
export const PARTNER_CENTER_CERT_FILE = 'pcnotifications-dispatch.microsoft.com.cer';
export const PARTNER_CENTER_SIM_CERT_PATH = `/_sim/partner-center/cert/${PARTNER_CENTER_CERT_FILE}`;
/** Same certificate outside `/_sim/` (the path Microsoft's blob uses), served by `handle()`. */
export const PARTNER_CENTER_SIM_CERT_ALIAS_PATH = `/cert/${PARTNER_CENTER_CERT_FILE}`;
/** The intermediate that issued the simulator's certificate (DER), named by its AIA extension. */
export const PARTNER_CENTER_SIM_ISSUER_PATH = '/_sim/partner-center/ca/issuer.cer';
/** Where the hub receives Partner Center webhooks (CONTRACT §3.5). */
export const PARTNER_CENTER_WEBHOOK_PATH = '/webhooks/referrals/partner-center';
/** The host Partner Center names in `ResourceUri` (the hub must not call it; CONTRACT §5). */
export const PARTNER_CENTER_RESOURCE_URI_BASE =
  'https://api.partnercenter.microsoft.com/engagements/v1/referrals/';

const REFERRALS_PATH = '/v1.0/engagements/referrals';
/** The partner organization the simulator's credentials belong to (its outgoing referrals). */
export const PARTNER_CENTER_SIM_ORGANIZATION_ID = '7d23e5ca-19dc-4eaa-aac8-5e6b559f0d1d';
const TOKEN_PATH = /^\/([^/]+)\/oauth2\/(v2\.0\/)?token\/?$/;
const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

/** Allowed substatuses per status, and status moves (provider-facts §4.2). */
export const PARTNER_CENTER_SUBSTATUSES: Record<
  PartnerCenterReferralStatus,
  readonly PartnerCenterReferralSubstatus[]
> = {
  None: ['None'],
  New: ['Pending', 'Received'],
  Active: ['Accepted'],
  Closed: ['Won', 'Lost', 'Declined', 'Expired'],
};
export const PARTNER_CENTER_STATUS_MOVES: Record<
  PartnerCenterReferralStatus,
  readonly PartnerCenterReferralStatus[]
> = {
  None: ['None', 'New', 'Active', 'Closed'],
  New: ['New', 'Active', 'Closed'],
  Active: ['Active', 'Closed'],
  Closed: ['Closed'],
};

/** JSON Patch paths the simulator lets a partner change (`/team/-` only with `add`). */
const PATCHABLE_PATHS = new Set([
  '/name',
  '/externalReferenceId',
  '/status',
  '/substatus',
  '/statusReason',
  '/details/notes',
  '/details/dealValue',
  '/details/currency',
  '/details/closingDateTime',
]);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function header(req: SimRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** `{ error: { code, message } }` (the Referrals API documents only "an error message with details"). */
function pcError(status: number, code: string, message: string): SimResponse {
  return { status, headers: JSON_HEADERS, body: { error: { code, message } } };
}

/** Entra ID's error shape (`error`, `error_description` with an AADSTS code, ids). */
function entraError(status: number, error: string, aadsts: string, description: string) {
  const timestamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  const traceId = randomUUID();
  const correlationId = randomUUID();
  return {
    status,
    headers: JSON_HEADERS,
    body: {
      error,
      error_description: `${aadsts}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
      error_codes: [Number(aadsts.replace('AADSTS', ''))],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
    },
  };
}

/** Cosmos-style quoted eTag, as Partner Center returns it. */
function newETag(): string {
  return `"${randomUUID()}"`;
}

/** If-Match comparison: `*` matches; weak prefix and surrounding quotes are ignored. */
function eTagMatches(ifMatch: string, eTag: string): boolean {
  const norm = (v: string) =>
    v
      .trim()
      .replace(/^W\//, '')
      .replace(/^"(.*)"$/, '$1');
  return ifMatch
    .split(',')
    .map((t) => t.trim())
    .some((t) => t === '*' || norm(t) === norm(eTag));
}

function deepMerge(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    const cur = target[k];
    if (isRecord(v) && isRecord(cur)) deepMerge(cur, v);
    else target[k] = clone(v);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------
// The module
// ---------------------------------------------------------------------------------------------

interface IssuedToken {
  expiresAt: number;
  revoked: boolean;
}

export class PartnerCenterSim implements SimProviderModule {
  readonly name = 'partner-center' as const;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly refreshToken: string;
  /** Referral webhooks, one event per delivery, retried and pausable. */
  readonly webhooks: SimWebhookOutbox<PartnerCenterWebhookEvent>;
  /** Every event emitted (also when there was no target), in order. */
  readonly events: PartnerCenterWebhookEvent[] = [];
  /** Every PATCH received, accepted or rejected, in order. */
  readonly patches: SimPartnerCenterPatch[] = [];
  /** Every referral creation (POST) received, accepted or refused, in order. */
  readonly creates: SimPartnerCenterCreate[] = [];

  private readonly now: () => Date;
  private readonly ttlSeconds: number;
  private readonly ca: PartnerCenterTestCa;
  private cert: PartnerCenterTestCert | undefined;
  /** Base URL the simulator's own certificate names in its AIA (undefined: a given certificate). */
  private certIssuedFor: string | undefined;
  private certDirPath: string | undefined;
  private referrals = new Map<string, PartnerCenterReferral>();
  private accessTokens = new Map<string, IssuedToken>();
  private issuedRefreshTokens = new Set<string>();
  private target: SimWebhookTarget | undefined;
  private baseUrl = 'http://127.0.0.1';
  private patchSeq = 0;
  private createSeq = 0;
  private lastChange = { ms: -1, sub: 0 };
  private _tokenRequests = 0;
  private _tokensIssued = 0;
  private _apiRequests = 0;
  private _lastTokenRequest: Record<string, string> | undefined;

  constructor(private readonly options: PartnerCenterSimOptions = {}) {
    this.clientId = options.clientId ?? PARTNER_CENTER_SIM_DEFAULTS.clientId;
    this.clientSecret = options.clientSecret ?? PARTNER_CENTER_SIM_DEFAULTS.clientSecret;
    this.refreshToken = options.refreshToken ?? PARTNER_CENTER_SIM_DEFAULTS.refreshToken;
    this.ttlSeconds = options.accessTokenTtlSeconds ?? 3600;
    this.now = options.now ?? (() => new Date());
    this.ca = options.ca ?? createPartnerCenterTestCa({ intermediate: true });
    this.cert = options.cert;
    this.webhooks = new SimWebhookOutbox<PartnerCenterWebhookEvent>({
      maxBatch: 1,
      attempts: options.webhookAttempts ?? 5,
      retryDelayMs: options.webhookRetryDelayMs,
      send: (events) => this.sendWebhook(events[0]),
    });
  }

  // --------------------------------------------------------------------------- wiring

  get tenantId(): string {
    return this.options.tenantId ?? PARTNER_CENTER_SIM_DEFAULTS.tenantId;
  }

  /** `PARTNER_CENTER_API_BASE` for a hub talking to this simulator. */
  get apiBase(): string {
    return this.baseUrl;
  }

  /** `PARTNER_CENTER_TOKEN_URL` (Entra ID v2.0 endpoint shape). */
  get tokenUrl(): string {
    return `${this.baseUrl}/${this.tenantId}/oauth2/v2.0/token`;
  }

  /** The `X-MS-Certificate-Url` the simulator signs with. */
  get certificateUrl(): string {
    return (
      this.options.certificateUrl ??
      `${this.baseUrl}${this.options.certificatePath ?? PARTNER_CENTER_SIM_CERT_PATH}`
    );
  }

  /** A `PARTNER_CENTER_CERT_URL_PREFIXES` entry that admits {@link certificateUrl} (its directory). */
  get certificateUrlPrefix(): string {
    return this.certificateUrl.replace(/[^/]*$/, '');
  }

  /** The signing certificate (private key included, for tests that forge or compare). */
  get certificate(): PartnerCenterTestCert {
    if (!this.cert || (this.certIssuedFor !== undefined && this.certIssuedFor !== this.baseUrl)) {
      this.cert = this.issueCertificate();
      this.certIssuedFor = this.baseUrl;
    }
    return this.cert;
  }

  /** Replaces the signing certificate (key rotation behind the same URL). */
  setCertificate(cert: PartnerCenterTestCert): void {
    this.cert = cert;
    this.certIssuedFor = undefined;
  }

  /** Where the CA file goes: the `certDir` option, else a temporary directory made once. */
  private get certDir(): string {
    this.certDirPath ??=
      this.options.certDir ?? mkdtempSync(join(tmpdir(), 'closeloop-partner-center-sim-'));
    return this.certDirPath;
  }

  /** A new leaf of the simulator's CA, its issuer named by AIA (for {@link setCertificate}). */
  issueCertificate(): PartnerCenterTestCert {
    return createPartnerCenterTestCert({
      ca: this.ca,
      caIssuersUrl: this.ca.intermediate
        ? `${this.baseUrl}${PARTNER_CENTER_SIM_ISSUER_PATH}`
        : undefined,
    });
  }

  /** The hub's environment for talking to this simulator (CONTRACT §2). */
  hubEnv(): Record<string, string> {
    return {
      PARTNER_CENTER_TENANT_ID: this.tenantId,
      PARTNER_CENTER_CLIENT_ID: this.clientId,
      PARTNER_CENTER_CLIENT_SECRET: this.clientSecret,
      PARTNER_CENTER_REFRESH_TOKEN: this.refreshToken,
      PARTNER_CENTER_API_BASE: this.apiBase,
      PARTNER_CENTER_TOKEN_URL: this.tokenUrl,
      PARTNER_CENTER_CERT_URL_PREFIXES: this.certificateUrlPrefix,
      // The root the signing certificate chains to, written to a file (the only root trusted).
      PARTNER_CENTER_CA_FILE: writePartnerCenterCaFile(this.certificate.caPem, this.certDir),
    };
  }

  /** POST /oauth2 token requests so far (any outcome). */
  get tokenRequests(): number {
    return this._tokenRequests;
  }

  /** Access tokens issued so far. */
  get tokensIssued(): number {
    return this._tokensIssued;
  }

  /** Referrals API requests so far (any outcome, token requests excluded). */
  get apiRequests(): number {
    return this._apiRequests;
  }

  /** Form fields of the last token request (`client_secret` and `refresh_token` masked). */
  get lastTokenRequest(): Record<string, string> | undefined {
    return this._lastTokenRequest;
  }

  /** Makes every access token issued so far invalid (the API then answers 401 until a refresh). */
  expireAccessTokens(): void {
    for (const t of this.accessTokens.values()) t.revoked = true;
  }

  // --------------------------------------------------------------------------- module interface

  matches(req: SimRequest): boolean {
    return (
      req.path === REFERRALS_PATH ||
      req.path.startsWith(`${REFERRALS_PATH}/`) ||
      req.path === PARTNER_CENTER_SIM_CERT_ALIAS_PATH ||
      (req.method.toUpperCase() === 'POST' && TOKEN_PATH.test(req.path))
    );
  }

  setBaseUrl(url: string): void {
    this.baseUrl = url.replace(/\/+$/, '');
  }

  setTarget(target: SimWebhookTarget | undefined): void {
    this.target = target;
  }

  /** Forgets referrals, PATCH records, events, queued webhooks and tokens (credentials and certificate stay). */
  reset(): void {
    this.referrals.clear();
    this.accessTokens.clear();
    this.issuedRefreshTokens.clear();
    this.patches.length = 0;
    this.creates.length = 0;
    this.events.length = 0;
    this.patchSeq = 0;
    this.createSeq = 0;
    this._tokenRequests = 0;
    this._tokensIssued = 0;
    this._apiRequests = 0;
    this._lastTokenRequest = undefined;
    this.webhooks.clear();
  }

  async close(): Promise<void> {
    this.webhooks.pause();
    await this.webhooks.idle();
  }

  /** Resolves once no webhook is in flight. */
  webhooksIdle(): Promise<void> {
    return this.webhooks.idle();
  }

  handle(req: SimRequest): SimResponse {
    const method = req.method.toUpperCase();
    const token = TOKEN_PATH.exec(req.path);
    if (method === 'POST' && token) return this.tokenEndpoint(req, token[1], Boolean(token[2]));
    if (req.path === PARTNER_CENTER_SIM_CERT_ALIAS_PATH) return this.serveCertificate(method);

    this._apiRequests++;
    const auth = this.authenticate(req);
    if (auth) return auth;
    const rest = req.path.slice(REFERRALS_PATH.length).replace(/\/+$/, '');
    if (rest === '') {
      if (method === 'GET') return this.apiList(req);
      if (method === 'POST') return this.apiCreate(req);
      return pcError(405, 'MethodNotAllowed', `${method} is not supported on ${req.path}`);
    }
    const m = /^\/([^/]+)$/.exec(rest);
    if (!m) return pcError(404, 'NotFound', `No route for ${method} ${req.path}`);
    const id = decodeURIComponent(m[1]);
    if (method === 'GET') return this.apiGet(id);
    if (method === 'PATCH') return this.apiPatch(id, req);
    return pcError(405, 'MethodNotAllowed', `${method} is not supported on ${req.path}`);
  }

  /** Control API under `/_sim/partner-center/`. */
  control(req: SimRequest): SimResponse | undefined {
    const path = req.path.replace(/^\/_sim\/partner-center/, '');
    const method = req.method.toUpperCase();
    const ok = (b: unknown = { ok: true }): SimResponse => ({ status: 200, body: b });
    if (path === `/cert/${PARTNER_CENTER_CERT_FILE}`) return this.serveCertificate(method);
    if (`/_sim/partner-center${path}` === PARTNER_CENTER_SIM_ISSUER_PATH) {
      const issuer = this.ca.intermediate;
      if (!issuer) return { status: 404, body: { error: 'no intermediate' } };
      return {
        status: 200,
        headers: { 'content-type': 'application/pkix-cert' },
        body: issuer.certDer,
      };
    }
    const parsed = parseJsonBody(req);
    if (!parsed.ok) return { status: 400, body: { error: 'invalid JSON' } };
    const body = isRecord(parsed.value) ? parsed.value : {};
    let m: RegExpExecArray | null;
    try {
      if (path === '/referrals' && method === 'POST') {
        return { status: 201, body: this.createReferral(body as PartnerCenterReferralInput) };
      }
      if (path === '/referrals' && method === 'GET') return ok({ value: this.listReferrals() });
      if ((m = /^\/referrals\/([^/]+)$/.exec(path))) {
        const id = decodeURIComponent(m[1]);
        if (method === 'GET') {
          const r = this.referral(id);
          return r ? ok(r) : { status: 404, body: { error: `no referral ${id}` } };
        }
        if (method === 'PATCH') {
          return ok(this.updateReferral(id, body as PartnerCenterReferralInput));
        }
      }
      if (path === '/patches' && method === 'GET') {
        const id = req.query.get('referralId') ?? undefined;
        const applied = req.query.get('applied') === 'true';
        return ok({ data: this.patchesFor(id, { appliedOnly: applied }) });
      }
      if (path === '/creates' && method === 'GET') return ok({ data: this.creates });
      if (path === '/events' && method === 'GET') return ok({ data: this.events });
      if (path === '/tokens' && method === 'GET') {
        return ok({ tokenRequests: this.tokenRequests, tokensIssued: this.tokensIssued });
      }
      if (path === '/tokens/expire' && method === 'POST') {
        this.expireAccessTokens();
        return ok();
      }
      if (path === '/config' && method === 'GET') return ok(this.hubEnv());
      if (path === '/webhooks/pause' && method === 'POST') {
        this.webhooks.pause();
        return ok();
      }
      if (path === '/webhooks/resume' && method === 'POST') {
        this.webhooks.resume();
        return ok();
      }
      if (path === '/webhooks' && method === 'GET') {
        return ok({
          paused: this.webhooks.isPaused,
          pending: this.webhooks.pending,
          delivered: this.webhooks.delivered.length,
          dead: this.webhooks.dead.length,
          attempts: this.webhooks.attemptsLog.length,
        });
      }
    } catch (err) {
      return { status: 400, body: { error: (err as Error).message } };
    }
    return undefined;
  }

  // --------------------------------------------------------------------------- seeding API

  /** Creates a referral as Microsoft / another partner would; emits `referral-created`. */
  createReferral(input: PartnerCenterReferralInput = {}): PartnerCenterReferral {
    const at = this.now().toISOString();
    const id = input.id ?? randomUUID();
    if (this.referrals.has(id)) throw new Error(`referral ${id} already exists`);
    const defaults: PartnerCenterReferral = {
      id,
      engagementId: randomUUID(),
      organizationId: randomUUID(),
      name: 'Contoso cloud migration',
      externalReferenceId: null,
      createdDateTime: at,
      updatedDateTime: at,
      expirationDateTime: null,
      acceptedDateTime: null,
      status: 'New',
      substatus: 'Pending',
      statusReason: null,
      type: 'Shared',
      qualification: 'SalesQualified',
      direction: 'Incoming',
      referralSource: 'Microsoft',
      callToAction: 'Accept or decline',
      customerProfile: {
        name: 'Contoso K.K.',
        address: {
          addressLine1: '1-2-3 Marunouchi',
          addressLine2: null,
          city: 'Chiyoda-ku',
          state: 'Tokyo',
          postalCode: '100-0005',
          country: 'JP',
          region: null,
        },
        size: '51to250employees',
        team: [
          {
            firstName: 'Hanako',
            lastName: 'Yamada',
            email: 'hanako.yamada@contoso.example',
            phoneNumber: '+81-3-0000-0000',
          },
        ],
        ids: { duns: null, external: null },
      },
      consent: {
        consentToShareInfoWithOthers: true,
        consentToContact: true,
        consentToShareReferralWithMicrosoftSellers: true,
      },
      details: {
        notes: 'Customer wants to move its on-premises workloads to Azure.',
        dealValue: 300000,
        currency: 'JPY',
        closingDateTime: new Date(Date.parse(at) + 90 * 86_400_000).toISOString(),
        requirements: { industries: [], products: [], services: [], solutions: [] },
      },
      team: [],
      inviteContext: null,
      eTag: newETag(),
    };
    const referral = defaults as unknown as Record<string, unknown>;
    const { eTag: _ignored, ...rest } = input;
    deepMerge(referral, rest as Record<string, unknown>);
    this.referrals.set(id, defaults);
    this.emit('referral-created', id);
    return clone(defaults);
  }

  /** Changes a referral as Microsoft / the customer side would (no transition checks); emits `referral-updated`. */
  updateReferral(id: string, input: PartnerCenterReferralInput): PartnerCenterReferral {
    const referral = this.referrals.get(id);
    if (!referral) throw new Error(`no referral ${id}`);
    const { id: _id, eTag: _eTag, ...rest } = input;
    deepMerge(referral as unknown as Record<string, unknown>, rest as Record<string, unknown>);
    this.touch(referral, input.updatedDateTime);
    this.emit('referral-updated', id);
    return clone(referral);
  }

  /** A copy of the referral, or undefined. */
  referral(id: string): PartnerCenterReferral | undefined {
    const r = this.referrals.get(id);
    return r ? clone(r) : undefined;
  }

  listReferrals(): PartnerCenterReferral[] {
    return [...this.referrals.values()].map(clone);
  }

  /** Recorded PATCHes, optionally for one referral and/or only the applied (2xx) ones. */
  patchesFor(referralId?: string, opts: { appliedOnly?: boolean } = {}): SimPartnerCenterPatch[] {
    return this.patches.filter(
      (p) =>
        (referralId === undefined || p.referralId === referralId) &&
        (!opts.appliedOnly || (p.status >= 200 && p.status < 300)),
    );
  }

  // --------------------------------------------------------------------------- token endpoint

  private tokenEndpoint(req: SimRequest, tenant: string, v2: boolean): SimResponse {
    this._tokenRequests++;
    const form = new URLSearchParams(req.rawBody.toString('utf8'));
    const fields = Object.fromEntries(form.entries());
    this._lastTokenRequest = {
      ...fields,
      ...(fields.client_secret !== undefined ? { client_secret: '***' } : {}),
      ...(fields.refresh_token !== undefined ? { refresh_token: '***' } : {}),
      endpoint: v2 ? 'v2.0' : 'v1',
    };
    const type = header(req, 'content-type') ?? '';
    if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      return entraError(
        400,
        'invalid_request',
        'AADSTS900144',
        "The request body must contain the following parameter: 'grant_type'.",
      );
    }
    if (this.options.tenantId !== undefined && tenant !== this.options.tenantId) {
      return entraError(
        400,
        'invalid_request',
        'AADSTS90002',
        `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
      );
    }
    const grant = form.get('grant_type');
    if (!grant) {
      return entraError(
        400,
        'invalid_request',
        'AADSTS900144',
        "The request body must contain the following parameter: 'grant_type'.",
      );
    }
    if (grant !== 'refresh_token') {
      return entraError(
        400,
        'unsupported_grant_type',
        'AADSTS70003',
        `The app requested an unsupported grant type '${grant}'.`,
      );
    }
    if (form.get('client_id') !== this.clientId) {
      return entraError(
        400,
        'unauthorized_client',
        'AADSTS700016',
        `Application with identifier '${form.get('client_id') ?? ''}' was not found in the directory '${tenant}'.`,
      );
    }
    if (form.get('client_secret') !== this.clientSecret) {
      return entraError(
        400,
        'invalid_grant',
        'AADSTS7000215',
        'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.',
      );
    }
    const refresh = form.get('refresh_token') ?? '';
    if (refresh !== this.refreshToken && !this.issuedRefreshTokens.has(refresh)) {
      return entraError(
        400,
        'invalid_grant',
        'AADSTS70000',
        'Provided grant is invalid or malformed.',
      );
    }
    const resource = form.get('resource');
    const scope = form.get('scope');
    const forPartnerCenter = (v: string | null | undefined) =>
      typeof v === 'string' &&
      v
        .split(/\s+/)
        .some((s) => s === PARTNER_CENTER_RESOURCE || s.startsWith(`${PARTNER_CENTER_RESOURCE}/`));
    if (v2 ? !forPartnerCenter(scope) : !forPartnerCenter(resource) && !forPartnerCenter(scope)) {
      return entraError(
        400,
        'invalid_scope',
        'AADSTS70011',
        `The provided request must include a '${v2 ? 'scope' : 'resource'}' for ${PARTNER_CENTER_RESOURCE}.`,
      );
    }

    const accessToken = `eyJ0eXAiOiJKV1QiLCJzaW0iOiJwYyJ9.${randomBytes(24).toString('base64url')}`;
    const newRefresh = `sim-rt-${randomBytes(18).toString('base64url')}`;
    const nowMs = this.now().getTime();
    this.accessTokens.set(accessToken, {
      expiresAt: nowMs + this.ttlSeconds * 1000,
      revoked: false,
    });
    this.issuedRefreshTokens.add(newRefresh);
    this._tokensIssued++;
    const expiresOn = Math.floor(nowMs / 1000) + this.ttlSeconds;
    // v1 answers numbers as strings (as Entra ID's v1 endpoint does); v2.0 answers numbers.
    const body = v2
      ? {
          token_type: 'Bearer',
          scope: `${PARTNER_CENTER_RESOURCE}/user_impersonation`,
          expires_in: this.ttlSeconds,
          ext_expires_in: this.ttlSeconds,
          access_token: accessToken,
          refresh_token: newRefresh,
        }
      : {
          token_type: 'Bearer',
          scope: 'user_impersonation',
          expires_in: String(this.ttlSeconds),
          ext_expires_in: String(this.ttlSeconds),
          expires_on: String(expiresOn),
          not_before: String(Math.floor(nowMs / 1000)),
          resource: resource ?? PARTNER_CENTER_RESOURCE,
          access_token: accessToken,
          refresh_token: newRefresh,
        };
    return {
      status: 200,
      headers: { ...JSON_HEADERS, 'cache-control': 'no-store, no-cache', pragma: 'no-cache' },
      body,
    };
  }

  private authenticate(req: SimRequest): SimResponse | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header(req, 'authorization') ?? '');
    const token = m ? this.accessTokens.get(m[1]) : undefined;
    const fail = (desc: string): SimResponse => ({
      status: 401,
      headers: {
        ...JSON_HEADERS,
        'www-authenticate': `Bearer error="invalid_token", error_description="${desc}"`,
      },
      body: { error: { code: 'Unauthorized', message: desc } },
    });
    if (!m) return fail('Authorization: Bearer token required');
    if (!token) return fail('The access token is not valid');
    if (token.revoked || this.now().getTime() >= token.expiresAt) {
      return fail('The access token has expired');
    }
    return undefined;
  }

  private serveCertificate(method: string): SimResponse {
    if (method !== 'GET' && method !== 'HEAD') {
      return { status: 405, body: { error: 'GET only' } };
    }
    const pem = this.options.certEncoding === 'pem';
    return {
      status: 200,
      headers: {
        'content-type': pem ? 'application/x-pem-file' : 'application/pkix-cert',
      },
      body: pem ? this.certificate.chainPem : this.certificate.certDer,
    };
  }

  // --------------------------------------------------------------------------- Referrals API

  private withETag(r: PartnerCenterReferral): Record<string, string> {
    return { ...JSON_HEADERS, etag: r.eTag };
  }

  private apiGet(id: string): SimResponse {
    const r = this.referrals.get(id);
    if (!r) return pcError(404, 'NotFound', `Referral ${id} was not found`);
    return { status: 200, headers: this.withETag(r), body: clone(r) };
  }

  /** OData subset: `$filter` (`field eq 'v'` joined by `and`), `$orderby` (one field), `$top`, `$skip`. */
  private apiList(req: SimRequest): SimResponse {
    let items = [...this.referrals.values()];
    const filter = req.query.get('$filter');
    if (filter) {
      const clauses = filter.split(/\s+and\s+/i).map((c) => c.trim());
      const parsed: [string, string][] = [];
      for (const c of clauses) {
        const m = /^(\w+)\s+eq\s+'((?:[^']|'')*)'$/i.exec(c);
        if (!m) return pcError(400, 'BadRequest', `Unsupported $filter clause: ${c}`);
        parsed.push([m[1], m[2].replace(/''/g, "'")]);
      }
      items = items.filter((r) =>
        parsed.every(([f, v]) => String((r as unknown as Record<string, unknown>)[f]) === v),
      );
    }
    const orderby = req.query.get('$orderby');
    if (orderby) {
      const [field, dir] = orderby.trim().split(/\s+/);
      const sign = dir?.toLowerCase() === 'desc' ? -1 : 1;
      items.sort((a, b) => {
        const x = String((a as unknown as Record<string, unknown>)[field] ?? '');
        const y = String((b as unknown as Record<string, unknown>)[field] ?? '');
        return x < y ? -sign : x > y ? sign : 0;
      });
    }
    const skip = Number(req.query.get('$skip') ?? 0) || 0;
    const top = req.query.has('$top') ? Number(req.query.get('$top')) : undefined;
    const page = items.slice(skip, top === undefined ? undefined : skip + top);
    const body: Record<string, unknown> = { value: page.map(clone) };
    if (top !== undefined && skip + top < items.length) {
      const next = new URLSearchParams(req.query);
      next.set('$skip', String(skip + top));
      body['@odata.nextLink'] = `${this.baseUrl}${REFERRALS_PATH}?${next.toString()}`;
    }
    return { status: 200, headers: JSON_HEADERS, body };
  }

  /**
   * `POST /v1.0/engagements/referrals` [PC-CREATE]: the required `type`, `customerProfile`,
   * `consent` and `details` are checked field by field (400 naming each missing one); a created
   * referral is the partner's own outgoing one — Active/Accepted from the start, accepted when
   * created (as Partner Center documents for outgoing referrals) — answered 201 with its eTag.
   */
  private apiCreate(req: SimRequest): SimResponse {
    const parsed = parseJsonBody(req);
    const body = parsed.ok && isRecord(parsed.value) ? parsed.value : undefined;
    const record: SimPartnerCenterCreate = {
      seq: ++this.createSeq,
      body: body ? clone(body) : undefined,
      status: 0,
      at: this.now().toISOString(),
    };
    this.creates.push(record);
    if (!body) {
      record.status = 400;
      record.error = 'BadRequest';
      return pcError(400, 'BadRequest', 'The body must be a referral (a JSON object)');
    }
    const problems = createProblems(body);
    if (problems.length > 0) {
      record.status = 400;
      record.error = 'InvalidInput';
      return {
        status: 400,
        headers: JSON_HEADERS,
        body: {
          error: {
            code: 'InvalidInput',
            message: `The referral is invalid: ${problems.map((p) => p.message).join('; ')}`,
            details: problems,
          },
        },
      };
    }
    const at = this.now().toISOString();
    const profile = body.customerProfile as Record<string, unknown>;
    const consent = body.consent as Record<string, unknown>;
    const details = body.details as Record<string, unknown>;
    const referral: PartnerCenterReferral = {
      id: randomUUID(),
      engagementId: randomUUID(),
      organizationId: PARTNER_CENTER_SIM_ORGANIZATION_ID,
      name: typeof body.name === 'string' && body.name !== '' ? body.name : 'Co-sell opportunity',
      externalReferenceId:
        typeof body.externalReferenceId === 'string' ? body.externalReferenceId : null,
      createdDateTime: at,
      updatedDateTime: at,
      expirationDateTime: null,
      acceptedDateTime: at,
      status: 'Active',
      substatus: 'Accepted',
      statusReason: typeof body.statusReason === 'string' ? body.statusReason : null,
      type: body.type as PartnerCenterReferral['type'],
      qualification:
        (body.qualification as PartnerCenterReferral['qualification'] | undefined) ??
        'SalesQualified',
      direction: 'Outgoing',
      referralSource: null,
      callToAction: null,
      customerProfile: clone(profile) as unknown as PartnerCenterReferral['customerProfile'],
      consent: {
        consentToShareInfoWithOthers: (consent.consentToShareInfoWithOthers ??
          consent.consentToToShareInfoWithOthers) as boolean,
        consentToContact: consent.consentToContact as boolean,
        consentToShareReferralWithMicrosoftSellers:
          consent.consentToShareReferralWithMicrosoftSellers as boolean,
      },
      details: {
        notes: typeof details.notes === 'string' ? details.notes : null,
        dealValue: Number(details.dealValue),
        currency: String(details.currency),
        closingDateTime: String(details.closingDateTime),
        requirements: isRecord(details.requirements)
          ? clone(details.requirements)
          : { industries: [], products: [], services: [], solutions: [] },
      },
      team: Array.isArray(body.team) ? (clone(body.team) as PartnerCenterMember[]) : [],
      inviteContext: isRecord(body.inviteContext) ? clone(body.inviteContext) : null,
      eTag: newETag(),
    };
    if (!Array.isArray(referral.customerProfile.team)) referral.customerProfile.team = [];
    this.referrals.set(referral.id, referral);
    record.status = 201;
    record.created = clone(referral);
    if (this.options.webhookOnApiUpdate) this.emit('referral-created', referral.id);
    return { status: 201, headers: this.withETag(referral), body: clone(referral) };
  }

  private apiPatch(id: string, req: SimRequest): SimResponse {
    const parsed = parseJsonBody(req);
    const ifMatch = header(req, 'if-match');
    const prefer = header(req, 'prefer');
    const record: SimPartnerCenterPatch = {
      seq: ++this.patchSeq,
      referralId: id,
      ops: parsed.ok && Array.isArray(parsed.value) ? clone(parsed.value) : undefined,
      ifMatch,
      prefer,
      status: 0,
      at: this.now().toISOString(),
    };
    this.patches.push(record);
    const reject = (status: number, code: string, message: string): SimResponse => {
      record.status = status;
      record.error = code;
      return pcError(status, code, message);
    };

    const current = this.referrals.get(id);
    if (!current) return reject(404, 'NotFound', `Referral ${id} was not found`);
    record.eTagBefore = current.eTag;
    if (!parsed.ok || !Array.isArray(parsed.value) || parsed.value.length === 0) {
      return reject(400, 'BadRequest', 'The body must be a non-empty JSON Patch array');
    }
    if (ifMatch !== undefined && !eTagMatches(ifMatch, current.eTag)) {
      return reject(
        412,
        'PreconditionFailed',
        `The eTag in If-Match (${ifMatch}) does not match the referral's current eTag`,
      );
    }

    const next = clone(current);
    for (const raw of parsed.value as unknown[]) {
      const error = applyOp(next, raw);
      if (error) return reject(400, 'BadRequest', error);
    }
    const transition = checkTransition(current, next);
    if (transition) return reject(400, 'InvalidTransition', transition);

    if (next.status === 'Active' && current.status !== 'Active' && !next.acceptedDateTime) {
      next.acceptedDateTime = this.now().toISOString();
    }
    this.touch(next);
    this.referrals.set(id, next);
    record.eTagAfter = next.eTag;
    record.after = clone(next);
    if (this.options.webhookOnApiUpdate) this.emit('referral-updated', id);

    const representation = (prefer ?? '')
      .split(',')
      .some((p) => p.trim().toLowerCase() === 'return=representation');
    record.status = representation ? 200 : 204;
    return representation
      ? { status: 200, headers: this.withETag(next), body: clone(next) }
      : { status: 204, headers: { etag: next.eTag } };
  }

  private touch(r: PartnerCenterReferral, updated?: string): void {
    r.eTag = newETag();
    r.updatedDateTime = updated ?? this.now().toISOString();
  }

  // --------------------------------------------------------------------------- webhooks

  /**
   * `ResourceChangeUtcDate` in Partner Center's format (7 fractional digits, `+00:00`), strictly
   * increasing so that two changes in one millisecond keep distinct event identities.
   */
  private changeDate(): string {
    let ms = this.now().getTime();
    let sub = 0;
    if (ms < this.lastChange.ms || (ms === this.lastChange.ms && sub <= this.lastChange.sub)) {
      ms = this.lastChange.ms;
      sub = this.lastChange.sub + 1;
      if (sub > 9999) {
        ms += 1;
        sub = 0;
      }
    }
    this.lastChange = { ms, sub };
    const iso = new Date(ms).toISOString(); // …T09:00:00.123Z
    return `${iso.slice(0, 23)}${String(sub).padStart(4, '0')}+00:00`;
  }

  private emit(name: PartnerCenterEventName, id: string): void {
    const event: PartnerCenterWebhookEvent = {
      EventName: name,
      ResourceUri: `${PARTNER_CENTER_RESOURCE_URI_BASE}${id}`,
      ResourceName: 'referral',
      AuditUri: null,
      ResourceChangeUtcDate: this.changeDate(),
    };
    this.events.push(event);
    if (this.target) this.webhooks.enqueue(event);
  }

  private async sendWebhook(event: PartnerCenterWebhookEvent): Promise<number | 'no-target'> {
    const target = this.target;
    if (!target) return 'no-target';
    const delivery = partnerCenterDelivery(
      event,
      this.certificate.privateKeyPem,
      this.certificateUrl,
    );
    return postDelivery(target.hubUrl, delivery);
  }
}

// ---------------------------------------------------------------------------------------------
// JSON Patch and transitions
// ---------------------------------------------------------------------------------------------

/** Applies one JSON Patch operation in place; answers an error message when it is refused. */
function applyOp(r: PartnerCenterReferral, raw: unknown): string | undefined {
  if (!isRecord(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
    return 'Each operation needs string "op" and "path"';
  }
  const { op, path } = raw;
  if (op !== 'replace' && op !== 'add') {
    return `Operation "${op}" is not supported; only "replace" and "add" are`;
  }
  if (!('value' in raw)) return `Operation on ${path} needs a "value"`;
  const value = raw.value;
  if (path === '/team/-' || path === '/customerProfile/team/-') {
    if (op !== 'add') return `${path} accepts only "add"`;
    if (!isRecord(value)) return `${path} needs a member object`;
    (path === '/team/-' ? r.team : r.customerProfile.team).push(
      clone(value) as unknown as PartnerCenterMember,
    );
    return undefined;
  }
  if (!PATCHABLE_PATHS.has(path)) return `Path ${path} cannot be changed`;
  switch (path) {
    case '/status':
      if (!Object.hasOwn(PARTNER_CENTER_STATUS_MOVES, String(value))) {
        return `Unknown status ${String(value)}`;
      }
      r.status = value as PartnerCenterReferralStatus;
      return undefined;
    case '/substatus':
      if (!Object.values(PARTNER_CENTER_SUBSTATUSES).some((s) => s.includes(value as never))) {
        return `Unknown substatus ${String(value)}`;
      }
      r.substatus = value as PartnerCenterReferralSubstatus;
      return undefined;
    case '/details/dealValue': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
        return `dealValue must be a non-negative decimal, got ${JSON.stringify(value)}`;
      }
      r.details.dealValue = n;
      return undefined;
    }
    case '/details/currency':
      if (typeof value !== 'string' || !/^[A-Za-z]{3}$/.test(value)) {
        return `currency must be an ISO 4217 code, got ${JSON.stringify(value)}`;
      }
      r.details.currency = value;
      return undefined;
    case '/details/closingDateTime':
      if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
        return 'closingDateTime must be an ISO 8601 date-time';
      }
      r.details.closingDateTime = value;
      return undefined;
    default: {
      if (value !== null && typeof value !== 'string') return `${path} must be a string`;
      const [, first, second] = path.split('/');
      const holder = (second ? r[first as keyof PartnerCenterReferral] : r) as Record<
        string,
        unknown
      >;
      holder[second ?? first] = value;
      return undefined;
    }
  }
}

/** The documented moves (provider-facts §4.2); answers an error message for an invalid one. */
function checkTransition(
  before: PartnerCenterReferral,
  after: PartnerCenterReferral,
): string | undefined {
  if (!PARTNER_CENTER_STATUS_MOVES[before.status].includes(after.status)) {
    return `A referral cannot move from ${before.status} to ${after.status}`;
  }
  if (!PARTNER_CENTER_SUBSTATUSES[after.status].includes(after.substatus)) {
    return `Substatus ${after.substatus} is not valid with status ${after.status} (allowed: ${PARTNER_CENTER_SUBSTATUSES[after.status].join(', ')})`;
  }
  return undefined;
}

/** One problem of a referral creation: the field (a JSON path) and what is wrong with it. */
export interface PartnerCenterCreateProblem {
  target: string;
  message: string;
}

/**
 * What Partner Center refuses in a new referral [PC-CREATE] (provider-facts §4.1–4.2): `type`,
 * `customerProfile` (its name and address country, each team member's names and e-mail),
 * `consent` (the three booleans; the documented misspelling `consentToToShareInfoWithOthers` is
 * accepted for the first), `details` (dealValue, currency, closingDateTime).
 */
export function createProblems(body: Record<string, unknown>): PartnerCenterCreateProblem[] {
  const problems: PartnerCenterCreateProblem[] = [];
  const need = (target: string, message: string) => problems.push({ target, message });
  const filled = (v: unknown) => typeof v === 'string' && v.trim() !== '';
  if (body.type !== 'Independent' && body.type !== 'Shared') {
    need('type', 'type is required (Independent or Shared)');
  }
  const profile = body.customerProfile;
  if (!isRecord(profile)) need('customerProfile', 'customerProfile is required');
  else {
    if (!filled(profile.name)) need('customerProfile.name', 'customerProfile.name is required');
    const address = profile.address;
    if (!isRecord(address) || !filled(address.country)) {
      need('customerProfile.address.country', 'customerProfile.address.country is required');
    } else if (!/^[A-Z]{2}$/.test(String(address.country))) {
      need(
        'customerProfile.address.country',
        'customerProfile.address.country must be an ISO 3166 alpha-2 code',
      );
    }
    memberProblems(profile.team, 'customerProfile.team', need);
  }
  memberProblems(body.team, 'team', need);
  const consent = body.consent;
  if (!isRecord(consent)) need('consent', 'consent is required');
  else {
    const shareInfo =
      consent.consentToShareInfoWithOthers ?? consent.consentToToShareInfoWithOthers;
    if (typeof shareInfo !== 'boolean') {
      need(
        'consent.consentToShareInfoWithOthers',
        'consent.consentToShareInfoWithOthers must be a boolean',
      );
    }
    for (const key of ['consentToContact', 'consentToShareReferralWithMicrosoftSellers']) {
      if (typeof consent[key] !== 'boolean')
        need(`consent.${key}`, `consent.${key} must be a boolean`);
    }
  }
  const details = body.details;
  if (!isRecord(details)) need('details', 'details is required');
  else {
    const value =
      typeof details.dealValue === 'string' && details.dealValue.trim() !== ''
        ? Number(details.dealValue)
        : details.dealValue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      need('details.dealValue', 'details.dealValue must be a non-negative decimal');
    }
    if (typeof details.currency !== 'string' || !/^[A-Za-z]{3}$/.test(details.currency)) {
      need('details.currency', 'details.currency must be an ISO 4217 code');
    }
    if (
      typeof details.closingDateTime !== 'string' ||
      Number.isNaN(Date.parse(details.closingDateTime))
    ) {
      need('details.closingDateTime', 'details.closingDateTime must be an ISO 8601 date-time');
    }
  }
  return problems;
}

function memberProblems(
  team: unknown,
  path: string,
  need: (target: string, message: string) => void,
): void {
  if (team === undefined || team === null) return;
  if (!Array.isArray(team)) {
    need(path, `${path} must be an array of members`);
    return;
  }
  team.forEach((m: unknown, i) => {
    const at = `${path}[${i}]`;
    if (!isRecord(m)) return need(at, `${at} must be a member`);
    for (const key of ['firstName', 'lastName']) {
      if (typeof m[key] !== 'string' || (m[key] as string).trim() === '') {
        need(`${at}.${key}`, `${at}.${key} is required`);
      }
    }
    if (typeof m.email !== 'string' || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(m.email)) {
      need(`${at}.email`, `${at}.email must be an e-mail address`);
    }
  });
}

/** Polls until `check` holds (for tests and the demo). */
export async function waitUntil(
  check: () => boolean,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}
