import { createHmac } from 'node:crypto';

import { decodeBase64, headerValue, safeEqual } from '../../common/header.util';
import { type HeaderBag, SignatureError } from '../../ports/webhook-door.port';

/** HubSpot rejects v3 requests older than 5 minutes; the timestamp is in **milliseconds** [HS-VAL][HS-SDK-SIG]. */
export const HUBSPOT_MAX_AGE_MS = 5 * 60 * 1000;

/**
 * The only percent-escapes HubSpot decodes before signing (case-insensitive hex); every other
 * escape, e.g. `%20`, stays as received [HS-VAL][3P-HS-DECODE].
 */
// prettier-ignore
const DECODED: Readonly<Record<string, string>> = {
  '3A': ':', '2F': '/', '3F': '?', '40': '@', '21': '!', '24': '$',
  '27': "'", '28': '(', '29': ')', '2A': '*', '2C': ',', '3B': ';',
};
const DECODE_PATTERN = /%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi;

/**
 * The `requestUri` HubSpot signed: the public URL it called (PUBLIC_BASE_URL, which may carry a
 * path prefix, plus the path and query as received), with the escapes above decoded in one pass.
 * Behind a proxy the URI must be rebuilt from the public URL, not from the local request [HS-VAL].
 */
export function hubspotRequestUri(publicBaseUrl: string, requestUrl: string): string {
  const base = publicBaseUrl.replace(/\/+$/, '');
  const path = requestUrl.startsWith('/') ? requestUrl : `/${requestUrl}`;
  return `${base}${path}`.replace(DECODE_PATTERN, (_m, hex: string) => DECODED[hex.toUpperCase()]);
}

export interface HubspotSignatureV3Input {
  method: string;
  publicBaseUrl: string;
  /** Path and query exactly as received, e.g. `/webhooks/hubspot?x=%3A`. */
  requestUrl: string;
  rawBody: Buffer | string;
  /** `X-HubSpot-Request-Timestamp` as sent (epoch milliseconds, decimal). */
  timestamp: string;
  clientSecret: string;
}

/**
 * `X-HubSpot-Signature-v3`: base64 HMAC-SHA256, keyed with the app client secret, of
 * `method + requestUri + body + timestamp` (UTF-8, no separators) [HS-VAL][HS-V3-CL].
 * The body is hashed as its raw bytes, which equals HubSpot's UTF-8 string for any valid body.
 * Used by the verifier and by our simulator and tests to sign.
 */
export function hubspotSignatureV3(input: HubspotSignatureV3Input): string {
  const uri = hubspotRequestUri(input.publicBaseUrl, input.requestUrl);
  return createHmac('sha256', input.clientSecret)
    .update(`${input.method.toUpperCase()}${uri}`, 'utf8')
    .update(input.rawBody)
    .update(input.timestamp, 'utf8')
    .digest('base64');
}

export interface VerifyHubspotSignatureV3Params {
  rawBody: Buffer;
  headers: HeaderBag;
  method: string;
  publicBaseUrl: string;
  requestUrl: string;
  clientSecret: string;
  /** Current time in epoch ms (injectable for tests). */
  now?: number;
}

/**
 * HubSpot webhook signature v3 (CONTRACT §3.2, provider-facts §2.1). The signature is checked
 * before the timestamp, so `stale_timestamp` always means "authentic but more than 5 minutes away
 * from now" (either way).
 * Unlike `Signature.isValid` in `@hubspot/api-client`, the comparison is constant-time [HS-SDK-SIG].
 *
 * @throws SignatureError `missing_signature`, `bad_signature` or `stale_timestamp`
 * @throws Error when no client secret is configured
 */
export function verifyHubspotSignatureV3(params: VerifyHubspotSignatureV3Params): void {
  const { headers, clientSecret, now = Date.now() } = params;
  if (!clientSecret) throw new Error('No HubSpot client secret is configured');

  const signature = headerValue(headers, 'x-hubspot-signature-v3');
  const timestamp = headerValue(headers, 'x-hubspot-request-timestamp');
  if (!signature || !timestamp) {
    throw new SignatureError(
      'missing_signature',
      'X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp header missing',
    );
  }
  if (!/^\d{1,16}$/.test(timestamp)) {
    throw new SignatureError(
      'bad_signature',
      'X-HubSpot-Request-Timestamp is not epoch milliseconds',
    );
  }

  const expected = Buffer.from(hubspotSignatureV3({ ...params, timestamp }), 'base64');
  if (!safeEqual(decodeBase64(signature) ?? Buffer.alloc(0), expected)) {
    throw new SignatureError('bad_signature', 'X-HubSpot-Signature-v3 does not match');
  }
  const age = now - Number(timestamp);
  if (age > HUBSPOT_MAX_AGE_MS) {
    throw new SignatureError(
      'stale_timestamp',
      'X-HubSpot-Request-Timestamp is older than 5 minutes',
    );
  }
  // Bounded the other way too (HubSpot's SDK is not): a stamp from the future would keep a
  // captured request replayable for as long as it likes. 5 minutes covers any sane clock skew.
  if (-age > HUBSPOT_MAX_AGE_MS) {
    throw new SignatureError(
      'stale_timestamp',
      'X-HubSpot-Request-Timestamp is more than 5 minutes in the future',
    );
  }
}
