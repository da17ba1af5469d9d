import { TransientError } from '../common/errors';
import { fullJitterDelay } from './backoff';

const opts = { baseMs: 1000, maxMs: 60_000 };
const fixed = (r: number) => () => r;

describe('fullJitterDelay (exponential backoff, full jitter)', () => {
  it('draws uniformly from [0, base * 2^(n-1)): the random value scales the ceiling', () => {
    expect(fullJitterDelay(1, undefined, opts, fixed(0))).toBe(0);
    expect(fullJitterDelay(1, undefined, opts, fixed(0.5))).toBe(500);
    expect(fullJitterDelay(2, undefined, opts, fixed(0.5))).toBe(1000);
    expect(fullJitterDelay(3, undefined, opts, fixed(0.5))).toBe(2000);
    expect(fullJitterDelay(4, undefined, opts, fixed(0.999999))).toBe(7999);
  });

  it('stays within [0, ceiling) for every attempt and random value', () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** (attempt - 1));
      for (const r of [0, 0.1, 0.37, 0.5, 0.9, 0.999999]) {
        const d = fullJitterDelay(attempt, undefined, opts, fixed(r));
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(ceiling);
        expect(Number.isInteger(d)).toBe(true);
      }
    }
  });

  it('is capped at maxMs however many attempts were made', () => {
    expect(fullJitterDelay(7, undefined, opts, fixed(0.999999))).toBe(59_999);
    expect(fullJitterDelay(30, undefined, opts, fixed(0.999999))).toBe(59_999);
    expect(fullJitterDelay(1000, undefined, opts, fixed(0.5))).toBe(30_000);
  });

  it('really jitters: different random draws give different delays', () => {
    const delays = new Set(
      [0.05, 0.25, 0.45, 0.65, 0.85].map((r) => fullJitterDelay(5, undefined, opts, fixed(r))),
    );
    expect(delays.size).toBe(5);
  });

  it('never retries sooner than Retry-After, even when the jittered delay is smaller', () => {
    const rateLimited = Object.assign(new Error('429'), {
      statusCode: 429,
      headers: { 'retry-after': '30' },
    });
    expect(fullJitterDelay(1, rateLimited, opts, fixed(0.5))).toBe(30_000);
    // Retry-After is a floor, not a cap: a longer jittered delay stands.
    expect(fullJitterDelay(1, new TransientError('slow', 100), opts, fixed(0.5))).toBe(500);
    // A floor above maxMs is still honoured (the provider said so).
    expect(fullJitterDelay(1, new TransientError('slow', 120_000), opts, fixed(0))).toBe(120_000);
  });

  it('uses Math.random by default', () => {
    const spy = jest.spyOn(Math, 'random').mockReturnValue(0.25);
    try {
      expect(fullJitterDelay(3, undefined, opts)).toBe(1000);
      expect(spy).toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});
