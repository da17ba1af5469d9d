import { createHash } from 'node:crypto';

import { PermanentError, TransientError, classifyError } from '../common/errors';

/** Statuses that mean "try again later" for every provider (CONTRACT §7). */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 425 || status === 429 || status >= 500;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** Case-insensitive header lookup on a plain object, a Headers instance or undefined. */
export function headerValue(headers: unknown, name: string): string | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  const lower = name.toLowerCase();
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const v = (headers as { get(n: string): unknown }).get(lower);
    return typeof v === 'string' ? v : undefined;
  }
  for (const [k, v] of Object.entries(headers as Record<string, unknown>)) {
    if (k.toLowerCase() !== lower) continue;
    if (Array.isArray(v)) return v.length > 0 ? String(v[0]) : undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
  }
  return undefined;
}

/** Retry-After (delta seconds or an HTTP date) in milliseconds. */
export function parseRetryAfter(raw: string | undefined, now = Date.now()): number | undefined {
  if (raw === undefined) return undefined;
  const value = raw.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * A failure that carries no provider status (socket reset, DNS, our own timeout): classified with
 * the shared rules, which treat network errors and unknown failures as transient.
 */
export function mapUnknownFailure(provider: string, err: unknown): Error {
  const message = `${provider} call failed: ${err instanceof Error ? err.message : String(err)}`;
  return classifyError(err) === 'transient'
    ? new TransientError(message, undefined, { cause: err })
    : new PermanentError(message, { cause: err });
}
