import { redactText } from './redact';
import { isRetriablePrismaError } from './prisma-error';

/**
 * Failure classification for jobs (CONTRACT §7): transient errors are retried with backoff,
 * permanent ones go straight to the dead-letter table.
 */
export class TransientError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransientError';
  }
}

export class PermanentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

export type FailureKind = 'transient' | 'permanent';

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  // Postgres: lock_timeout / statement_timeout / serialization / deadlock / too many connections.
  '55P03',
  '57014',
  '40001',
  '40P01',
  '53300',
]);

interface HttpLike {
  status?: number;
  statusCode?: number;
  code?: unknown;
  headers?: unknown;
  response?: { status?: number; headers?: unknown };
  name?: string;
  type?: string;
  cause?: unknown;
}

/** The HTTP status of a provider SDK error (stripe: statusCode, HubSpot: code, axios: response.status). */
export function httpStatusOf(err: unknown): number | undefined {
  const e = err as HttpLike | null;
  if (!e || typeof e !== 'object') return undefined;
  const candidates = [
    e.statusCode,
    e.status,
    e.response?.status,
    typeof e.code === 'number' ? e.code : undefined,
  ];
  return candidates.find((s): s is number => typeof s === 'number' && s >= 100 && s < 600);
}

function headerOf(headers: unknown, name: string): string | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const v = (headers as { get(n: string): unknown }).get(name);
    return typeof v === 'string' ? v : undefined;
  }
  for (const [k, v] of Object.entries(headers as Record<string, unknown>)) {
    if (k.toLowerCase() === name)
      return Array.isArray(v) ? String(v[0]) : typeof v === 'string' ? v : undefined;
  }
  return undefined;
}

/** Retry-After (seconds or HTTP date) of an error, in milliseconds. */
export function retryAfterOf(err: unknown, now = Date.now()): number | undefined {
  if (err instanceof TransientError && err.retryAfterMs !== undefined) return err.retryAfterMs;
  const e = err as HttpLike | null;
  const raw = headerOf(e?.headers, 'retry-after') ?? headerOf(e?.response?.headers, 'retry-after');
  if (raw === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(raw.trim())) return Math.round(Number(raw) * 1000);
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function classifyError(err: unknown): FailureKind {
  if (err instanceof TransientError) return 'transient';
  if (err instanceof PermanentError) return 'permanent';
  const e = err as HttpLike | null;
  if (e && typeof e === 'object') {
    // Stripe marks retryability explicitly (provider-facts §3.4).
    const shouldRetry = headerOf(e.headers, 'stripe-should-retry');
    if (shouldRetry === 'true') return 'transient';
    if (shouldRetry === 'false') return 'permanent';
    const status = httpStatusOf(err);
    if (status !== undefined) {
      if (status === 408 || status === 409 || status === 425 || status === 429 || status >= 500)
        return 'transient';
      if (status >= 400) return 'permanent';
    }
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return 'transient';
    if (isRetriablePrismaError(err)) return 'transient';
    if (e.name === 'AbortError' || e.name === 'TimeoutError' || e.type === 'StripeConnectionError')
      return 'transient';
    if (e.name === 'ZodError') return 'permanent';
    if (e.cause && e.cause !== err) return classifyError(e.cause);
  }
  // Unknown failures are retried: a bug fixed by a deploy then succeeds; exhaustion dead-letters it.
  return 'transient';
}

/**
 * An error as it is written down (job attempts, dead letters, an event's last error, logs): name and
 * message, secrets and e-mail addresses redacted (common/redact.ts), at most 2,000 characters.
 */
export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return redactText(text.slice(0, 4000)).slice(0, 2000);
}
