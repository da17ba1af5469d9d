import { ExecutionContext, HttpException } from '@nestjs/common';

import { AppConfig } from '../config/app-config';
import { AuthThrottleService } from '../security/auth-throttle.service';
import { MetricsTokenGuard } from './metrics-token.guard';

const TOKEN = 'metrics-token-0123456789';

/** A throttle that never refuses: the guard's own answers (the throttle has its own spec). */
const unthrottled = {
  verify: async (_attempt: unknown, verify: () => unknown) => (await verify()) || undefined,
} as unknown as AuthThrottleService;

function guard(token?: string): MetricsTokenGuard {
  return new MetricsTokenGuard(
    { env: { METRICS_TOKEN: token } } as unknown as AppConfig,
    unthrottled,
  );
}

function request(authorization?: string): ExecutionContext {
  const req = { headers: authorization === undefined ? {} : { authorization } };
  return {
    switchToHttp: () => ({ getRequest: () => req, getResponse: () => ({}) }),
  } as unknown as ExecutionContext;
}

/** The status and error body a refused request gets (fails the test if it is let through). */
async function refusal(g: MetricsTokenGuard, authorization?: string) {
  try {
    await g.canActivate(request(authorization));
  } catch (err) {
    return {
      status: (err as HttpException).getStatus(),
      body: (err as HttpException).getResponse(),
    };
  }
  throw new Error('expected the request to be refused');
}

describe('MetricsTokenGuard', () => {
  it('lets everything through when METRICS_TOKEN is unset', async () => {
    expect(await guard().canActivate(request())).toBe(true);
    expect(await guard().canActivate(request('Bearer anything-at-all'))).toBe(true);
  });

  it('lets the metrics token through (any case of "Bearer")', async () => {
    expect(await guard(TOKEN).canActivate(request(`Bearer ${TOKEN}`))).toBe(true);
    expect(await guard(TOKEN).canActivate(request(`bearer ${TOKEN}`))).toBe(true);
  });

  it('accepts() names the metrics token only, and nothing when none is set', () => {
    expect(guard(TOKEN).accepts(TOKEN)).toBe(true);
    expect(guard(TOKEN).accepts(`${TOKEN}x`)).toBe(false);
    expect(guard().accepts(TOKEN)).toBe(false);
  });

  it.each([
    ['no Authorization header', undefined, 'a bearer token is required'],
    ['another scheme', `Basic ${TOKEN}`, 'a bearer token is required'],
    ['a wrong token', 'Bearer metrics-token-0123456780', 'wrong metrics token'],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, -1)}`, 'wrong metrics token'],
    ['the token and more', `Bearer ${TOKEN}x`, 'wrong metrics token'],
  ])('answers 401 with the error JSON to %s', async (_what, authorization, message) => {
    expect(await refusal(guard(TOKEN), authorization)).toEqual({
      status: 401,
      body: { error: { code: 'UNAUTHENTICATED', message } },
    });
  });
});
