import { retryAfterOf } from '../common/errors';

/**
 * Exponential backoff with full jitter: a uniform delay in [0, min(max, base * 2^(n-1))], but never
 * sooner than a provider's Retry-After. `attemptsMade` counts the attempts so far (1 after the first).
 */
export function fullJitterDelay(
  attemptsMade: number,
  err: unknown,
  opts: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, attemptsMade - 1));
  const jittered = Math.floor(random() * ceiling);
  return Math.max(jittered, retryAfterOf(err) ?? 0);
}
