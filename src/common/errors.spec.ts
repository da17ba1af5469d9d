import { z } from 'zod';

import {
  PermanentError,
  TransientError,
  classifyError,
  errorMessage,
  httpStatusOf,
  retryAfterOf,
} from './errors';

/** What the Stripe SDK throws (StripeAPIError & co.): statusCode and a headers object. */
const stripeLike = (statusCode: number, headers: Record<string, string> = {}) =>
  Object.assign(new Error(`stripe ${statusCode}`), {
    type: 'StripeAPIError',
    statusCode,
    headers,
  });
/** What @hubspot/api-client throws: ApiException with a numeric `code` and headers. */
const hubspotLike = (code: number, headers: Record<string, string> = {}) =>
  Object.assign(new Error(`HTTP-Code: ${code}`), { code, headers, body: {} });
/** axios / docusign-esign style: the status on `response`. */
const axiosLike = (status: number, headers: Record<string, string> = {}) =>
  Object.assign(new Error(`Request failed with status code ${status}`), {
    response: { status, headers },
  });
const withCode = (code: string) => Object.assign(new Error(code), { code });

describe('classifyError', () => {
  describe('transient (retried with backoff)', () => {
    it.each([429, 500, 502, 503, 504, 408, 409])('HTTP %i in every SDK shape', (status) => {
      expect(classifyError(stripeLike(status))).toBe('transient');
      expect(classifyError(hubspotLike(status))).toBe('transient');
      expect(classifyError(axiosLike(status))).toBe('transient');
      expect(classifyError({ status })).toBe('transient');
    });

    it.each([
      'ECONNRESET',
      'ECONNREFUSED',
      'ETIMEDOUT',
      'ENOTFOUND',
      'EAI_AGAIN',
      'EPIPE',
      'UND_ERR_CONNECT_TIMEOUT',
      'UND_ERR_SOCKET',
    ])('network error code %s', (code) => {
      expect(classifyError(withCode(code))).toBe('transient');
    });

    it('a network error wrapped as the cause of fetch\'s "fetch failed" TypeError', () => {
      const err = new TypeError('fetch failed', { cause: withCode('ECONNREFUSED') });
      expect(classifyError(err)).toBe('transient');
    });

    it('timeouts and aborts', () => {
      const timeout = Object.assign(new Error('timed out'), { name: 'TimeoutError' });
      const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
      expect(classifyError(timeout)).toBe('transient');
      expect(classifyError(abort)).toBe('transient');
    });

    it('Stripe connection errors (no status at all)', () => {
      const err = Object.assign(new Error('An error occurred with our connection to Stripe'), {
        type: 'StripeConnectionError',
      });
      expect(classifyError(err)).toBe('transient');
    });

    it('Prisma P2034 (write conflict / deadlock) and connection errors', () => {
      for (const code of ['P2034', 'P1001', 'P1017']) {
        expect(classifyError(withCode(code))).toBe('transient');
      }
    });

    it('Postgres serialization failure, deadlock and lock timeout', () => {
      for (const code of ['40001', '40P01', '55P03']) {
        expect(classifyError(withCode(code))).toBe('transient');
      }
    });

    it('Stripe-Should-Retry: true wins over a 4xx status', () => {
      expect(classifyError(stripeLike(400, { 'stripe-should-retry': 'true' }))).toBe('transient');
    });

    it('TransientError, whatever it wraps', () => {
      expect(classifyError(new TransientError('busy', 1000, { cause: stripeLike(400) }))).toBe(
        'transient',
      );
    });
  });

  describe('permanent (dead-lettered at once)', () => {
    it.each([400, 401, 403, 404, 422])('HTTP %i in every SDK shape', (status) => {
      expect(classifyError(stripeLike(status))).toBe('permanent');
      expect(classifyError(hubspotLike(status))).toBe('permanent');
      expect(classifyError(axiosLike(status))).toBe('permanent');
    });

    it('Stripe-Should-Retry: false wins over a 5xx status', () => {
      expect(classifyError(stripeLike(500, { 'Stripe-Should-Retry': 'false' }))).toBe('permanent');
    });

    it('PermanentError, even when it wraps a transient cause', () => {
      expect(classifyError(new PermanentError('bad data', { cause: withCode('ECONNRESET') }))).toBe(
        'permanent',
      );
    });

    it('a ZodError (invalid data never becomes valid by retrying)', () => {
      const result = z.object({ a: z.string() }).safeParse({ a: 1 });
      expect(result.success).toBe(false);
      expect(classifyError(result.error)).toBe('permanent');
    });

    it('a permanent error found through the cause chain', () => {
      const err = new Error('wrapped', { cause: hubspotLike(404) });
      expect(classifyError(err)).toBe('permanent');
    });
  });

  it('unknown failures are retried (exhaustion dead-letters them)', () => {
    expect(classifyError(new Error('something odd'))).toBe('transient');
    expect(classifyError('a string')).toBe('transient');
    expect(classifyError(null)).toBe('transient');
  });
});

describe('httpStatusOf', () => {
  it('reads statusCode, status, response.status and a numeric code; ignores string codes', () => {
    expect(httpStatusOf(stripeLike(402))).toBe(402);
    expect(httpStatusOf(hubspotLike(429))).toBe(429);
    expect(httpStatusOf(axiosLike(503))).toBe(503);
    expect(httpStatusOf({ status: 404 })).toBe(404);
    expect(httpStatusOf(withCode('ECONNRESET'))).toBeUndefined();
    expect(httpStatusOf({ code: 7 })).toBeUndefined();
    expect(httpStatusOf(undefined)).toBeUndefined();
  });
});

describe('retryAfterOf', () => {
  const now = Date.parse('2026-11-23T10:00:00Z');

  it('reads Retry-After in seconds (integer or decimal) as milliseconds', () => {
    expect(retryAfterOf(hubspotLike(429, { 'retry-after': '7' }), now)).toBe(7000);
    expect(retryAfterOf(stripeLike(429, { 'Retry-After': '1.5' }), now)).toBe(1500);
    expect(retryAfterOf(axiosLike(503, { 'retry-after': '0' }), now)).toBe(0);
  });

  it('reads Retry-After as an HTTP date, relative to now, never negative', () => {
    const inTenSeconds = new Date(now + 10_000).toUTCString();
    expect(retryAfterOf(axiosLike(429, { 'retry-after': inTenSeconds }), now)).toBe(10_000);
    const past = new Date(now - 60_000).toUTCString();
    expect(retryAfterOf(hubspotLike(429, { 'retry-after': past }), now)).toBe(0);
  });

  it('reads a fetch Headers object', () => {
    const err = { status: 429, headers: new Headers({ 'Retry-After': '3' }) };
    expect(retryAfterOf(err, now)).toBe(3000);
  });

  it("prefers a TransientError's own retryAfterMs", () => {
    expect(retryAfterOf(new TransientError('slow down', 2500), now)).toBe(2500);
  });

  it('is undefined without a usable header', () => {
    expect(retryAfterOf(hubspotLike(429), now)).toBeUndefined();
    expect(retryAfterOf(hubspotLike(429, { 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(retryAfterOf(new Error('x'), now)).toBeUndefined();
    expect(retryAfterOf(null, now)).toBeUndefined();
  });
});

describe('errorMessage', () => {
  it('names the error class and bounds the length', () => {
    expect(errorMessage(new PermanentError('bad'))).toBe('PermanentError: bad');
    expect(errorMessage('x'.repeat(5000))).toHaveLength(2000);
  });
});
