import { CachedToken, TokenCache } from './token-cache';

describe('TokenCache', () => {
  let now: number;
  let minted: number;
  let next: () => Promise<CachedToken>;
  const cache = () =>
    new TokenCache(
      () => next(),
      () => now,
    );

  beforeEach(() => {
    now = 1_000;
    minted = 0;
    next = () => Promise.resolve({ value: `t${++minted}`, refreshAt: now + 100 });
  });

  it('mints once and serves the cached token until refreshAt, then mints anew', async () => {
    const tokens = cache();
    expect(await tokens.get()).toBe('t1');
    now += 99;
    expect(await tokens.get()).toBe('t1');
    now += 1;
    expect(await tokens.get()).toBe('t2');
    expect(minted).toBe(2);
  });

  it('concurrent callers share one in-flight request', async () => {
    let release!: () => void;
    next = () =>
      new Promise((resolve) => {
        minted++;
        release = () => resolve({ value: 'shared', refreshAt: now + 100 });
      });
    const tokens = cache();
    const all = Promise.all([tokens.get(), tokens.get(), tokens.get()]);
    release();
    expect(await all).toEqual(['shared', 'shared', 'shared']);
    expect(minted).toBe(1);
  });

  it('a failed request is not cached: every waiter sees the error, the next caller tries again', async () => {
    next = () => Promise.reject(new Error('token endpoint down'));
    const tokens = cache();
    await expect(Promise.all([tokens.get(), tokens.get()])).rejects.toThrow('token endpoint down');
    next = () => Promise.resolve({ value: 'after', refreshAt: now + 100 });
    expect(await tokens.get()).toBe('after');
  });

  it('invalidate drops the token only if it is still the cached one', async () => {
    const tokens = cache();
    expect(await tokens.get()).toBe('t1');
    tokens.invalidate('someone-elses');
    expect(await tokens.get()).toBe('t1');
    tokens.invalidate('t1');
    expect(await tokens.get()).toBe('t2');
  });
});
