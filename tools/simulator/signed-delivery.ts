import { createHmac } from 'node:crypto';

import Stripe from 'stripe';

import { hubspotSignatureV3 } from '../../src/connectors/hubspot/hubspot-signature.verifier';
import { signStandardWebhook } from '../../src/common/standard-webhooks';
import { partnerCenterSignatureHeaders } from './partner-center-cert';

/**
 * Signed webhook deliveries in each provider's real wire format, as the providers send them.
 * A test, demo and benchmark aid (the provider simulator's senders); never a code path of the hub.
 */
export interface Delivery {
  path: string;
  headers: Record<string, string>;
  body: string;
}

const json = { 'content-type': 'application/json' };

/** One X-DocuSign-Signature-N value: base64 HMAC-SHA256 of the raw body bytes with `key` [DS-VAL]. */
export function docusignSignature(key: string, body: Buffer | string): string {
  return createHmac('sha256', key).update(body).digest('base64');
}

/** DocuSign Connect: X-DocuSign-Signature-N = base64 HMAC-SHA256(key, body) per key [DS-VAL]. */
export function docusignDelivery(message: unknown, keys: string[]): Delivery {
  const body = JSON.stringify(message);
  const headers: Record<string, string> = { ...json, 'x-authorization-digest': 'HMACSHA256' };
  keys.forEach((key, i) => {
    headers[`x-docusign-signature-${i + 1}`] = docusignSignature(key, body);
  });
  return { path: '/webhooks/docusign', headers, body };
}

/** HubSpot v3 over the public URL the hub is reached at [HS-VAL]. */
export function hubspotDelivery(
  events: unknown[],
  opts: { clientSecret: string; publicBaseUrl: string; path?: string; timestamp?: number },
): Delivery {
  const body = JSON.stringify(events);
  const path = opts.path ?? '/webhooks/hubspot';
  const timestamp = String(opts.timestamp ?? Date.now());
  const signature = hubspotSignatureV3({
    method: 'POST',
    publicBaseUrl: opts.publicBaseUrl,
    requestUrl: path,
    rawBody: body,
    timestamp,
    clientSecret: opts.clientSecret,
  });
  return {
    path,
    headers: {
      ...json,
      'x-hubspot-signature-v3': signature,
      'x-hubspot-request-timestamp': timestamp,
    },
    body,
  };
}

/** Stripe-Signature t=…,v1=… made by the SDK's own helper [ST-SIG-SRC]. */
export function stripeDelivery(
  event: unknown,
  secret: string,
  timestampSeconds?: number,
): Delivery {
  const body = JSON.stringify(event);
  const header = Stripe.webhooks.generateTestHeaderString({
    payload: body,
    secret,
    timestamp: timestampSeconds,
  });
  return { path: '/webhooks/stripe', headers: { ...json, 'stripe-signature': header }, body };
}

/** Standard Webhooks (milestones, generic referrals) [SW-SPEC]. */
export function standardDelivery(
  path: string,
  message: unknown,
  opts: { secret: string; id: string; timestampSeconds?: number },
): Delivery {
  const body = JSON.stringify(message);
  const ts = opts.timestampSeconds ?? Math.floor(Date.now() / 1000);
  return {
    path,
    headers: {
      ...json,
      'webhook-id': opts.id,
      'webhook-timestamp': String(ts),
      'webhook-signature': signStandardWebhook(opts.secret, opts.id, ts, body),
    },
    body,
  };
}

/** Partner Center: RSA-SHA256 with the certificate at `certificateUrl` [PC-WH]. */
export function partnerCenterDelivery(
  event: unknown,
  privateKeyPem: string,
  certificateUrl: string,
): Delivery {
  const body = JSON.stringify(event);
  return {
    path: '/webhooks/referrals/partner-center',
    headers: { ...json, ...partnerCenterSignatureHeaders(privateKeyPem, body, certificateUrl) },
    body,
  };
}

/** POSTs a delivery to a hub at `baseUrl` (optionally aborting after `timeoutMs`). */
export async function send(
  baseUrl: string,
  d: Delivery,
  extraHeaders: Record<string, string> = {},
  opts: { timeoutMs?: number } = {},
) {
  const res = await fetch(`${baseUrl}${d.path}`, {
    method: 'POST',
    headers: { ...d.headers, ...extraHeaders },
    body: d.body,
    signal: opts.timeoutMs === undefined ? undefined : AbortSignal.timeout(opts.timeoutMs),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body };
}
