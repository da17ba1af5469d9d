import {
  standardWebhookHmac as sign,
  standardWebhookKey as secretKey,
} from '../../common/standard-webhooks';
import { decodeBase64, headerValue, safeEqual } from '../../common/header.util';
import { type HeaderBag, SignatureError } from '../../ports/webhook-door.port';

/** The spec's and `standardwebhooks`' tolerance: 5 minutes in **both** directions [SW-SPEC][SW-JS]. */
export const STANDARD_WEBHOOKS_TOLERANCE_SECONDS = 5 * 60;

/**
 * Standard Webhooks v1.0.0 (CONTRACT §3.4/§3.5, provider-facts §5). Headers `webhook-id`,
 * `webhook-timestamp` (integer seconds) and `webhook-signature` (space-delimited `v1,<base64>`
 * entries; `v1a` and other versions are skipped, as in the library) [SW-SPEC][SW-JS]. The signed
 * content is the raw body bytes, so nothing is parsed here. Implemented in-house because the
 * library's `verify` has no injectable clock and always `JSON.parse`s the body. The signature is
 * checked before the timestamp, so `stale_timestamp` means "authentic but outside ±5 minutes".
 *
 * @throws SignatureError `missing_signature`, `bad_signature` or `stale_timestamp`
 * @throws Error when the secret is missing or not `whsec_<base64>`
 */
export function verifyStandardWebhook(
  rawBody: Buffer,
  headers: HeaderBag,
  secret: string,
  now: number = Date.now(),
): void {
  const key = secretKey(secret);
  const id = headerValue(headers, 'webhook-id');
  const timestamp = headerValue(headers, 'webhook-timestamp');
  const signatures = headerValue(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) {
    throw new SignatureError(
      'missing_signature',
      'webhook-id, webhook-timestamp or webhook-signature header missing',
    );
  }
  if (!/^\d{1,12}$/.test(timestamp)) {
    throw new SignatureError('bad_signature', 'webhook-timestamp is not integer seconds');
  }

  const expected = sign(key, id, timestamp, rawBody);
  const matches = signatures
    .split(' ')
    .map((entry) => entry.split(','))
    .some(
      ([version, value]) =>
        version === 'v1' && safeEqual(decodeBase64(value ?? '') ?? Buffer.alloc(0), expected),
    );
  if (!matches) throw new SignatureError('bad_signature', 'No webhook-signature v1 entry matches');

  const age = Math.floor(now / 1000) - Number(timestamp);
  if (Math.abs(age) > STANDARD_WEBHOOKS_TOLERANCE_SECONDS) {
    throw new SignatureError('stale_timestamp', 'webhook-timestamp is more than 5 minutes off');
  }
}
