import { createHmac } from 'node:crypto';

import { decodeBase64 } from './header.util';

/**
 * Standard Webhooks v1.0.0 signing (provider-facts §5) [SW-SPEC][SW-JS]: shared by the inbound
 * doors (src/webhooks/signatures/standard-webhooks-signature.verifier.ts verifies) and the outbound
 * signed webhooks (the report and alert channels sign), so it sits below both.
 */

const SECRET_PREFIX = 'whsec_';

/** HMAC key: base64-decode the part after `whsec_` (the prefix is optional, as in the library) [SW-SPEC][SW-JS]. */
export function standardWebhookKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = decodeBase64(encoded);
  if (!key) throw new Error('Standard Webhooks secret must be whsec_ followed by base64');
  return key;
}

/** HMAC-SHA256 of `${id}.${timestamp}.${body}`. */
export function standardWebhookHmac(
  key: Buffer,
  id: string,
  timestamp: string,
  body: Buffer | string,
): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`, 'utf8').update(body).digest();
}

/**
 * `webhook-signature` entry for a message: `v1,<base64 HMAC-SHA256 of "${id}.${ts}.${body}">`.
 * Same output as `new Webhook(secret).sign(id, new Date(ts * 1000), body)` of `standardwebhooks`.
 */
export function signStandardWebhook(
  secret: string,
  id: string,
  timestampSeconds: number,
  body: Buffer | string,
): string {
  const ts = String(Math.floor(timestampSeconds));
  return `v1,${standardWebhookHmac(standardWebhookKey(secret), id, ts, body).toString('base64')}`;
}
