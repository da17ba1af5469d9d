import Stripe from 'stripe';

import { headerValue } from '../../common/header.util';
import { type HeaderBag, SignatureError } from '../../ports/webhook-door.port';

/** CONTRACT §3.3: tolerance 300 s (also the SDK's `DEFAULT_TOLERANCE`) [ST-SIG-SRC]. */
export const STRIPE_TOLERANCE_SECONDS = 300;

/**
 * Stripe `Stripe-Signature: t=<unix s>,v1=<hex>[,v1=<hex>…]` (CONTRACT §3.3, provider-facts §3.1):
 * hex HMAC-SHA256 of `${t}.${rawBody}` with the `whsec_…` secret used verbatim; any `v1` may match
 * (secret rotation), `v0` is ignored. The SDK rejects only too-old timestamps [ST-SIG-SRC]; we
 * also reject those more than the tolerance ahead.
 *
 * Delegates to the SDK's `webhooks.signature.verifyHeader` (stripe@23.1.0 `cjs/Webhooks.js`) so we
 * stay byte-compatible with Stripe; it compares with `platformFunctions.secureCompare`, which in
 * `cjs/platform/NodePlatformFunctions.js` checks lengths first and then uses
 * `crypto.timingSafeEqual` (constant-time). The tolerance is always passed explicitly: since v23,
 * `0` disables the check and an omitted tolerance means the default [ST-CHG]. `receivedAt` (ms)
 * injects the clock.
 *
 * @throws SignatureError `missing_signature`, `bad_signature` or `stale_timestamp`
 * @throws Error when no webhook secret is configured
 */
export function verifyStripeSignature(
  rawBody: Buffer,
  headers: HeaderBag,
  secret: string,
  now: number = Date.now(),
): void {
  if (!secret.trim()) throw new Error('No Stripe webhook secret is configured');
  const header = headerValue(headers, 'stripe-signature');
  if (!header) throw new SignatureError('missing_signature', 'Stripe-Signature header missing');

  const signature = Stripe.webhooks.signature;
  if (!signature) throw new Error('Stripe SDK has no webhook signature helper');
  try {
    signature.verifyHeader(rawBody, header, secret, STRIPE_TOLERANCE_SECONDS, undefined, now);
  } catch (error) {
    throw toSignatureError(error);
  }
  // The SDK bounds only the age, and only of a number: it hashes whatever parseInt made of `t`, so
  // `t=NaN` signed over "NaN.<body>" passes its age check (NaN > 300 is false) and never expires.
  // The stamp it verified must be a number of seconds, and is bounded from the future too, so a
  // captured delivery is never replayable for longer than the tolerance (as Standard Webhooks does).
  const signedAt = signedTimestamp(header);
  if (!Number.isSafeInteger(signedAt)) {
    throw new SignatureError('bad_signature', 'Stripe-Signature timestamp is not a number');
  }
  if (signedAt - Math.floor(now / 1000) > STRIPE_TOLERANCE_SECONDS) {
    throw new SignatureError('stale_timestamp', 'Stripe-Signature timestamp is over 300 s ahead');
  }
}

/**
 * The `t` the SDK verified: its parseHeader (stripe@23 `cjs/Webhooks.js`) keeps the last `t=`
 * entry. NaN unless that entry is decimal digits.
 */
function signedTimestamp(header: string): number {
  let signedAt = NaN;
  for (const item of header.split(',')) {
    const [key, value = ''] = item.split('=');
    if (key === 't') signedAt = /^\d+$/.test(value) ? Number(value) : NaN;
  }
  return signedAt;
}

/** Maps the SDK's error messages (stripe@23.1.0 `cjs/Webhooks.js`) onto our reasons. */
function toSignatureError(error: unknown): SignatureError {
  if (error instanceof Stripe.errors.StripeSignatureVerificationError) {
    if (error.message.startsWith('No stripe-signature header value')) {
      return new SignatureError('missing_signature', 'Stripe-Signature header missing');
    }
    if (error.message.startsWith('Timestamp outside the tolerance zone')) {
      return new SignatureError(
        'stale_timestamp',
        'Stripe-Signature timestamp is older than 300 s',
      );
    }
    if (error.message.startsWith('No signatures found matching')) {
      return new SignatureError('bad_signature', 'No Stripe-Signature v1 entry matches');
    }
  }
  // Header without `t=` or `v1=`, or an empty `v1=` (the SDK's secureCompare throws a plain Error).
  return new SignatureError('bad_signature', 'Malformed Stripe-Signature header');
}
