import { randomUUID } from 'node:crypto';

import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { toMajorUnits } from '../../domain/money';
import { PermanentError, TransientError } from '../../common/errors';
import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../observability/metrics.service';
import { isTransientStatus, mapUnknownFailure, parseRetryAfter } from '../provider-call';
import { CachedToken, TokenCache } from '../token-cache';
import { JsonPatchOp, PartnerCenterStatusKind, Referral } from './partner-center.types';

const PROVIDER = 'partner-center';

/** Resource (audience) of Partner Center's REST API tokens (provider-facts §4.1). */
export const PARTNER_CENTER_RESOURCE = 'https://api.partner.microsoft.com';

/** The access token is renewed this long before it expires. */
const TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;
/** Used when a token response carries no usable expires_in (Entra ID's usual lifetime). */
const DEFAULT_TOKEN_LIFETIME_S = 3600;
const MAX_ERROR_DETAIL = 500;
/** Referral ids are GUIDs; accept any plain token of letters, digits, `-` and `_` (no `/`, `.`, `%`). */
const REFERRAL_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
const ALLOWED_PATCH_OPS: ReadonlySet<string> = new Set(['replace', 'add']);

/** Partner Center answered 404: the referral does not exist (or the user cannot see it). */
export class PartnerCenterNotFoundError extends PermanentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PartnerCenterNotFoundError';
  }
}

/**
 * Partner Center answered 412: the `If-Match` eTag is stale because the referral changed since it
 * was read. Transient: the caller re-reads the referral and retries with the new eTag.
 */
export class PartnerCenterPreconditionFailedError extends TransientError {
  constructor(message: string, retryAfterMs?: number, options?: { cause?: unknown }) {
    super(message, retryAfterMs, options);
    this.name = 'PartnerCenterPreconditionFailedError';
  }
}

interface Settings {
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  apiBase: string;
  tokenUrl: string;
}

interface TokenResponse {
  access_token?: unknown;
  expires_in?: unknown;
  refresh_token?: unknown;
  error?: unknown;
  error_description?: unknown;
}

interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * The hub's only way to the Partner Center Referrals API (provider-facts §4), over Node's fetch.
 *
 * Auth is App+User (the only kind these endpoints document): the refresh token of a user with the
 * Referrals Admin or Referrals User role, redeemed for an access token with the app's client id and
 * secret (the Secure Application Model; the docs' ROPC sample cannot work with enforced MFA). The
 * access token is cached until 5 minutes before it expires, and concurrent callers share one
 * in-flight refresh. When Entra ID rotates the refresh token, the new one is kept in memory and used
 * for the next refresh (a restart falls back to PARTNER_CENTER_REFRESH_TOKEN, which stays valid
 * until it expires or is revoked).
 *
 * Every call goes to PARTNER_CENTER_API_BASE, never to a host named in a webhook's ResourceUri
 * (CONTRACT §5): only the referral id is taken from a ResourceUri.
 *
 * Errors: TransientError (network, timeouts, 408/409/425/429/5xx honouring Retry-After; 412 as
 * {@link PartnerCenterPreconditionFailedError}) or PermanentError (other 4xx with Partner Center's
 * message, 404 as {@link PartnerCenterNotFoundError}, invalid_grant, unconfigured). A 401 drops the
 * cached token, refreshes once and retries once. The constructor never throws: the module is built
 * in every role, configured or not.
 */
@Injectable()
export class PartnerCenterClient {
  private readonly tokens = new TokenCache(() => this.requestToken());
  /** The refresh token Entra ID returned last (rotation); preferred over the configured one. */
  private rotatedRefreshToken?: string;

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(PartnerCenterClient.name);
  }

  /**
   * GET `${PARTNER_CENTER_API_BASE}/v1.0/engagements/referrals/{id}`. Accepts a referral id or a
   * webhook's ResourceUri, of which only the id is used.
   *
   * @throws PartnerCenterNotFoundError on 404
   */
  async getReferral(idOrResourceUri: string): Promise<Referral> {
    const id = toReferralId(idOrResourceUri);
    const result = await this.request('referrals.get', 'GET', referralPath(id));
    return parseReferral(result);
  }

  /**
   * PATCH the referral with a JSON Patch array (only `replace` and `add`, checked before sending),
   * `If-Match: <eTag>` when given and `Prefer: return=representation`; returns the updated referral
   * (re-read when Partner Center answers without a body).
   *
   * @throws PartnerCenterPreconditionFailedError (transient) on 412: re-read and retry
   */
  async patchReferral(id: string, ops: JsonPatchOp[], eTag?: string): Promise<Referral> {
    const referralId = toReferralId(id);
    assertPatchOps(ops);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      prefer: 'return=representation',
    };
    if (eTag) headers['if-match'] = eTag;
    const result = await this.request('referrals.patch', 'PATCH', referralPath(referralId), {
      body: JSON.stringify(ops),
      headers,
    });
    if (result.text.trim() === '') return this.getReferral(referralId);
    return parseReferral(result);
  }

  // ---------------------------------------------------------------------------------------------

  private settings(): Settings {
    const e = this.config.env;
    const required = [
      'PARTNER_CENTER_TENANT_ID',
      'PARTNER_CENTER_CLIENT_ID',
      'PARTNER_CENTER_CLIENT_SECRET',
      'PARTNER_CENTER_REFRESH_TOKEN',
    ] as const;
    const missing = required.filter((name) => !e[name]);
    if (missing.length > 0) {
      throw new PermanentError(`partner center is not configured: set ${missing.join(', ')}`);
    }
    return {
      clientId: e.PARTNER_CENTER_CLIENT_ID!,
      clientSecret: e.PARTNER_CENTER_CLIENT_SECRET!,
      refreshToken: e.PARTNER_CENTER_REFRESH_TOKEN!,
      apiBase: e.PARTNER_CENTER_API_BASE.replace(/\/+$/, ''),
      tokenUrl:
        e.PARTNER_CENTER_TOKEN_URL ??
        `https://login.microsoftonline.com/${encodeURIComponent(e.PARTNER_CENTER_TENANT_ID!)}/oauth2/token`,
    };
  }

  /** One API call with the cached token; on 401 the token is dropped and the call retried once. */
  private async request(
    op: string,
    method: 'GET' | 'PATCH',
    path: string,
    opts: { body?: string; headers?: Record<string, string> } = {},
  ): Promise<HttpResult> {
    const url = `${this.settings().apiBase}${path}`;
    for (let attempt = 1; ; attempt++) {
      const token = await this.tokens.get();
      const requestId = randomUUID();
      const result = await this.send(op, url, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          'ms-requestid': requestId,
          ...opts.headers,
        },
        body: opts.body,
      });
      if (result.status === 401 && attempt === 1) {
        this.logger.info({ op, requestId }, 'partner-center answered 401: refreshing the token');
        this.tokens.invalidate(token);
        continue;
      }
      if (result.status < 200 || result.status >= 300) {
        throw this.failed(op, mapPartnerCenterError(result.status, result.headers, result.text), {
          requestId,
        });
      }
      return result;
    }
  }

  /** fetch with PROVIDER_TIMEOUT_MS (covering the body), no redirects, metrics per response. */
  private async send(op: string, url: string, init: RequestInit): Promise<HttpResult> {
    let res: Response;
    try {
      res = await fetch(url, {
        ...init,
        redirect: 'error',
        signal: AbortSignal.timeout(this.config.env.PROVIDER_TIMEOUT_MS),
      });
    } catch (err) {
      this.metrics.providerCalls.inc({ provider: PROVIDER, status: 'error' });
      throw this.failed(op, mapUnknownFailure(PROVIDER, err));
    }
    this.metrics.providerCalls.inc({ provider: PROVIDER, status: String(res.status) });
    try {
      // The same timeout signal bounds the body.
      return { status: res.status, headers: res.headers, text: await res.text() };
    } catch (err) {
      throw this.failed(op, mapUnknownFailure(PROVIDER, err));
    }
  }

  private failed(op: string, err: Error, extra: Record<string, unknown> = {}): Error {
    this.logger.warn(
      { op, ...extra, err: err.message, retryAfterMs: (err as TransientError).retryAfterMs },
      'partner-center call failed',
    );
    return err;
  }

  /**
   * Redeems the refresh token. Entra ID's v1 endpoint (`/oauth2/token`) with
   * `resource=https://api.partner.microsoft.com` is the default, because provider-facts §4.1 gives
   * Partner Center's auth as a token for that resource/audience and the Secure Application Model
   * samples redeem partner refresh tokens there; v2 (`/oauth2/v2.0/token`) would need
   * `scope=https://api.partner.microsoft.com/.default offline_access` instead. When
   * PARTNER_CENTER_TOKEN_URL points at a v2 endpoint the v2 form is sent, otherwise the v1 form.
   */
  private async requestToken(): Promise<CachedToken> {
    const s = this.settings();
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: s.clientId,
      client_secret: s.clientSecret,
      refresh_token: this.rotatedRefreshToken ?? s.refreshToken,
    });
    if (/\/oauth2\/v2\.0\/token\/?$/i.test(new URL(s.tokenUrl).pathname)) {
      form.set('scope', `${PARTNER_CENTER_RESOURCE}/.default offline_access`);
    } else {
      form.set('resource', PARTNER_CENTER_RESOURCE);
    }
    const result = await this.send('token', s.tokenUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: form.toString(),
    });
    const body = (parseJson(result.text) ?? {}) as TokenResponse;
    if (result.status < 200 || result.status >= 300) {
      throw this.failed('token', mapTokenError(result.status, result.headers, body, result.text));
    }
    if (typeof body.access_token !== 'string' || body.access_token === '') {
      throw this.failed(
        'token',
        new TransientError('partner-center token response had no access_token'),
      );
    }
    if (typeof body.refresh_token === 'string' && body.refresh_token !== '') {
      this.rotatedRefreshToken = body.refresh_token;
    }
    // v1 sends expires_in as a string ("3599"), v2 as a number.
    const seconds = Number(body.expires_in);
    const lifetimeMs =
      (Number.isFinite(seconds) && seconds > 0 ? seconds : DEFAULT_TOKEN_LIFETIME_S) * 1000;
    const margin = Math.min(TOKEN_REFRESH_MARGIN_MS, lifetimeMs / 2);
    const token = { value: body.access_token, refreshAt: Date.now() + lifetimeMs - margin };
    return token;
  }
}

// -----------------------------------------------------------------------------------------------

/**
 * The referral id of a Partner Center webhook's ResourceUri (its last path segment, e.g.
 * `https://api.partnercenter.microsoft.com/engagements/v1/referrals/{id}`). The host is ignored on
 * purpose: the hub always calls PARTNER_CENTER_API_BASE (CONTRACT §5).
 *
 * @throws PermanentError when the URI does not end in a plausible referral id
 */
export function referralIdFromResourceUri(uri: string): string {
  const shown = JSON.stringify(String(uri).slice(0, 200));
  let segment: string | undefined;
  try {
    // Absolute URIs only (Partner Center sends them so); a trailing "/" or dot segments leave an
    // empty or non-id last segment and are refused rather than guessed at.
    const url = new URL(String(uri));
    if (url.protocol === 'https:' || url.protocol === 'http:') {
      segment = decodeURIComponent(url.pathname.split('/').at(-1) ?? '');
    }
  } catch {
    segment = undefined;
  }
  if (segment === undefined || !REFERRAL_ID.test(segment)) {
    throw new PermanentError(`${shown} does not end in a Partner Center referral id`);
  }
  return segment;
}

function toReferralId(idOrResourceUri: string): string {
  if (typeof idOrResourceUri === 'string' && REFERRAL_ID.test(idOrResourceUri)) {
    return idOrResourceUri;
  }
  if (typeof idOrResourceUri === 'string' && idOrResourceUri.includes('/')) {
    return referralIdFromResourceUri(idOrResourceUri);
  }
  throw new PermanentError(
    `${JSON.stringify(String(idOrResourceUri).slice(0, 200))} is not a Partner Center referral id`,
  );
}

function referralPath(id: string): string {
  return `/v1.0/engagements/referrals/${encodeURIComponent(id)}`;
}

/** Partner Center's PATCH takes only `replace` and `add` (provider-facts §4.1). */
function assertPatchOps(ops: JsonPatchOp[]): void {
  if (!Array.isArray(ops) || ops.length === 0) {
    throw new PermanentError('partner-center PATCH needs at least one JSON Patch operation');
  }
  for (const [index, op] of ops.entries()) {
    const name = (op as { op?: unknown } | null)?.op;
    if (typeof name !== 'string' || !ALLOWED_PATCH_OPS.has(name)) {
      throw new PermanentError(
        `partner-center PATCH op ${index + 1}: "${String(name)}" is not allowed (only replace and add)`,
      );
    }
    if (typeof op.path !== 'string' || !op.path.startsWith('/')) {
      throw new PermanentError(`partner-center PATCH op ${index + 1}: path must be a JSON Pointer`);
    }
    if (!('value' in op) || op.value === undefined) {
      throw new PermanentError(`partner-center PATCH op ${index + 1}: ${name} needs a value`);
    }
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function parseReferral(result: HttpResult): Referral {
  const body = parseJson(result.text);
  if (body === undefined) {
    // An HTML error page from a proxy or a truncated body: worth another try.
    throw new TransientError(
      `partner-center ${result.status}: response is not JSON: ${truncate(result.text)}`,
    );
  }
  if (!body || typeof body !== 'object' || typeof (body as { id?: unknown }).id !== 'string') {
    throw new PermanentError(`partner-center ${result.status}: response is not a referral`);
  }
  const referral = body as Referral;
  if (!referral.eTag) {
    const etag = result.headers.get('etag');
    if (etag) referral.eTag = etag;
  }
  return referral;
}

function truncate(text: string, max = MAX_ERROR_DETAIL): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** Partner Center's error message: `description` / `message` / `error.message`, else the raw body. */
function errorDetail(text: string): string {
  const body = parseJson(text) as
    | {
        code?: unknown;
        description?: unknown;
        message?: unknown;
        error?: { code?: unknown; message?: unknown } | string;
      }
    | undefined;
  if (body && typeof body === 'object') {
    const nested = typeof body.error === 'object' && body.error ? body.error : undefined;
    const message = [body.description, body.message, nested?.message].find(
      (m): m is string => typeof m === 'string' && m !== '',
    );
    const code = [body.code, nested?.code, typeof body.error === 'string' ? body.error : undefined]
      .filter((c) => typeof c === 'string' || typeof c === 'number')
      .map(String)[0];
    if (message) return truncate(code ? `${code}: ${message}` : message);
  }
  return truncate(text) || '(no body)';
}

/** A non-2xx answer of the REST API → TransientError | PermanentError. */
export function mapPartnerCenterError(
  status: number,
  headers: Headers,
  text: string,
  now = Date.now(),
): Error {
  const detail = errorDetail(text);
  const retryAfterMs = parseRetryAfter(headers.get('retry-after') ?? undefined, now);
  if (status === 412) {
    return new PartnerCenterPreconditionFailedError(
      `partner-center 412: the referral changed since it was read (stale eTag); re-read it and retry with the new eTag: ${detail}`,
      retryAfterMs,
    );
  }
  const message = `partner-center ${status}: ${detail}`;
  if (isTransientStatus(status)) return new TransientError(message, retryAfterMs);
  if (status === 404) return new PartnerCenterNotFoundError(message);
  if (status === 401 || status === 403) {
    return new PermanentError(
      `${message} (the user behind PARTNER_CENTER_REFRESH_TOKEN needs the Referrals Admin or Referrals User role)`,
    );
  }
  return new PermanentError(message);
}

function mapTokenError(status: number, headers: Headers, body: TokenResponse, text: string): Error {
  const code = typeof body.error === 'string' ? body.error : undefined;
  // Entra ID descriptions carry "Trace ID: … Correlation ID: …" lines; the first line is the message.
  const description =
    typeof body.error_description === 'string'
      ? truncate(body.error_description.split(/\r?\n/)[0], 300)
      : truncate(text, 300);
  const message = `partner-center token request failed (${status}${code ? ` ${code}` : ''}): ${description}`;
  if (code === 'invalid_grant') {
    return new PermanentError(
      `${message}. The refresh token is expired, revoked or not valid for this app and tenant: ` +
        'renew PARTNER_CENTER_REFRESH_TOKEN (sign in again as a user with the Referrals Admin or Referrals User role)',
    );
  }
  if (isTransientStatus(status) || code === 'temporarily_unavailable') {
    return new TransientError(message, parseRetryAfter(headers.get('retry-after') ?? undefined));
  }
  return new PermanentError(message);
}

// -----------------------------------------------------------------------------------------------

/**
 * The JSON Patch that records a report on a Partner Center referral (CONTRACT §5):
 * - `won` → Closed/Won with `/details/dealValue` and `/details/currency`;
 * - `lost` → Closed/Lost;
 * - `accepted`, `engaged`, `appointment` → Active/Accepted;
 * - `lost_withdrawn` → null: not applicable, Partner Center cannot reopen a closed referral.
 *
 * `dealValue` is an integer in the currency's smallest unit, as every amount in closeloop (the
 * report's `amountExTax`); it is written as Partner Center's decimal in major units, as a string
 * like the documented example (`"10000"`): 300000 JPY → "300000", 100050 USD → "1000.50".
 * `currency` is written as an upper-case ISO 4217 code.
 */
export function statusPatch(
  kind: PartnerCenterStatusKind,
  value: { dealValue?: number; currency?: string } = {},
): JsonPatchOp[] | null {
  switch (kind) {
    case 'won': {
      const { dealValue, currency } = value;
      if (typeof currency !== 'string' || !/^[A-Za-z]{3}$/.test(currency)) {
        throw new PermanentError(
          'a won report needs a 3-letter ISO 4217 currency for Partner Center',
        );
      }
      if (typeof dealValue !== 'number' || !Number.isSafeInteger(dealValue) || dealValue < 0) {
        throw new PermanentError(
          'a won report needs dealValue as a non-negative integer in the currency’s smallest unit',
        );
      }
      return [
        replace('/status', 'Closed'),
        replace('/substatus', 'Won'),
        replace('/details/dealValue', toMajorUnits(dealValue, currency)),
        replace('/details/currency', currency.toUpperCase()),
      ];
    }
    case 'lost':
      return [replace('/status', 'Closed'), replace('/substatus', 'Lost')];
    case 'declined':
      return [replace('/status', 'Closed'), replace('/substatus', 'Declined')];
    case 'accepted':
    case 'engaged':
    case 'appointment':
      return [replace('/status', 'Active'), replace('/substatus', 'Accepted')];
    case 'lost_withdrawn':
      return null;
    default:
      throw new PermanentError(
        `report kind ${JSON.stringify(kind as string)} has no Partner Center status`,
      );
  }
}

function replace(path: string, value: unknown): JsonPatchOp {
  return { op: 'replace', path, value };
}

/** 100050 USD → "1000.50"; 300000 JPY → "300000" (exact digits, no floating point). */
