import { createHmac } from 'node:crypto';

import { decodeBase64, safeEqual } from '../../common/header.util';
import { type HeaderBag, SignatureError } from '../../ports/webhook-door.port';

/** `X-DocuSign-Signature-1`, `-2`, … — one header per active Connect HMAC key [DS-VAL]. */
const SIGNATURE_HEADER = /^x-docusign-signature-\d+$/i;

/**
 * DocuSign Connect HMAC (CONTRACT §3.1, provider-facts §1.2): base64 HMAC-SHA256 of the **raw body
 * bytes** [DS-VAL][DS-EX-HMAC]. The delivery is authentic when any signature header matches a digest
 * computed with any configured key. Connect messages carry no signed timestamp, so there is no
 * replay window here; duplicates are handled by the inbox's unique event identity.
 *
 * @throws SignatureError `missing_signature` (no signature header) or `bad_signature` (no match)
 * @throws Error when no key is configured (a configuration bug, not the sender's fault)
 */
export function verifyDocusignSignature(rawBody: Buffer, headers: HeaderBag, keys: string[]): void {
  const usableKeys = keys.filter((key) => key.length > 0);
  if (usableKeys.length === 0) throw new Error('No DocuSign Connect HMAC key is configured');

  const received: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (!SIGNATURE_HEADER.test(name) || value === undefined) continue;
    received.push(...(Array.isArray(value) ? value : [value]).filter((v) => v.trim() !== ''));
  }
  if (received.length === 0) {
    throw new SignatureError('missing_signature', 'No X-DocuSign-Signature-N header');
  }

  // Compare digests, not strings, as DocuSign's Node sample does [DS-EX-HMAC]; non-base64 never matches.
  const signatures = received.map((v) => decodeBase64(v) ?? Buffer.alloc(0));
  for (const key of usableKeys) {
    const expected = createHmac('sha256', key).update(rawBody).digest();
    if (signatures.some((signature) => safeEqual(signature, expected))) return;
  }
  throw new SignatureError(
    'bad_signature',
    'No X-DocuSign-Signature-N header matches a configured key',
  );
}
