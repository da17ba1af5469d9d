import { timingSafeEqual } from 'node:crypto';

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

/** Decodes plain base64 (a signature from a header, a secret); `undefined` for anything else. */
export function decodeBase64(value: string): Buffer | undefined {
  const trimmed = value.trim();
  return /^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : undefined;
}
