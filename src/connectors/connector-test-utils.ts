import { PinoLogger } from 'nestjs-pino';

import { MetricsService } from '../observability/metrics.service';

/** Test doubles shared by the connector specs (no Postgres, no Redis). */
export function metricsStub() {
  const inc = jest.fn();
  return { metrics: { providerCalls: { inc } } as unknown as MetricsService, inc };
}

export function loggerStub(): PinoLogger {
  return {
    setContext: jest.fn(),
    trace: jest.fn(),
    debug: jest.fn(),
    info: jest.fn(),
    warn: jest.fn(),
    error: jest.fn(),
  } as unknown as PinoLogger;
}

/** The statuses counted by metrics.providerCalls.inc, in order. */
export function countedStatuses(inc: jest.Mock): string[] {
  return inc.mock.calls.map((c: [{ status: string }]) => c[0].status);
}
