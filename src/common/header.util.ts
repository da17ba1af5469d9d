import { timingSafeEqual } from 'node:crypto';

import { decodeBase64 } from './standard-webhooks';

/** Request headers as Fastify exposes them (names lower-cased). */
export type HeaderBag = Record<string, string | string[] | undefined>;

/**
 * The value of header `name` (case-insensitive), or the first value when it was repeated.
 * Fastify already lower-cases names; the fallback scan only serves hand-built header bags.
 */
export function headerValue(headers: HeaderBag, name: string): string | undefined {
  const wanted = name.toLowerCase();
  let value = headers[wanted];
  if (value === undefined) {
    const key = Object.keys(headers).find((k) => k.toLowerCase() === wanted);
    value = key === undefined ? undefined : headers[key];
  }
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Constant-time equality of two byte strings. `crypto.timingSafeEqual` throws on unequal lengths,
 * so the (public) length is compared first [DS-EX-HMAC][SW-SPEC].
 */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Decodes a base64 signature from a header; `undefined` for anything that is not plain base64. */
export const decodeBase64Signature = decodeBase64;
