import { PermanentError, TransientError } from '../../common/errors';
import { isTransientStatus, parseRetryAfter } from '../provider-call';
import { Referral } from './partner-center.types';

/**
 * Pure mapping between the hub and Partner Center's REST API (no I/O): referral ids and paths on
 * the way in, referrals and errors (TransientError | PermanentError) on the way out.
 */

const MAX_ERROR_DETAIL = 500;
/** Referral ids are GUIDs; accept any plain token of letters, digits, `-` and `_` (no `/`, `.`, `%`). */
const REFERRAL_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

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

export interface TokenResponse {
  access_token?: unknown;
  expires_in?: unknown;
  refresh_token?: unknown;
  error?: unknown;
  error_description?: unknown;
}

export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
}

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

export function toReferralId(idOrResourceUri: string): string {
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

export function referralPath(id: string): string {
  return `/v1.0/engagements/referrals/${encodeURIComponent(id)}`;
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function parseReferral(result: HttpResult): Referral {
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

export function truncate(text: string, max = MAX_ERROR_DETAIL): string {
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

export function mapTokenError(
  status: number,
  headers: Headers,
  body: TokenResponse,
  text: string,
): Error {
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
