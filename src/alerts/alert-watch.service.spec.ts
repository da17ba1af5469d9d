import { PinoLogger } from 'nestjs-pino';

import { SystemClock } from '../common/clock';
import { loadConfig } from '../config/app-config';
import { loggerStub } from '../connectors/connector-test-utils';
import { PrismaService } from '../prisma/prisma.service';
import { AlertService } from './alert.service';
import { AlertWatchService, deadLetterThreshold, utcHourBucket } from './alert-watch.service';
import { AlertInput } from './alert.types';

describe('deadLetterThreshold', () => {
  it.each([
    [0, 0],
    [1, 1],
    [9, 1],
    [10, 10],
    [99, 10],
    [100, 100],
    [999, 100],
    [1000, 1000],
    [25_000, 10_000],
  ])('%i open dead letters reach the threshold %i', (open, threshold) => {
    expect(deadLetterThreshold(open)).toBe(threshold);
  });
});

describe('utcHourBucket', () => {
  it('is the UTC hour, whatever the local time zone says', () => {
    expect(utcHourBucket(new Date('2026-11-23T17:59:59+09:00'))).toBe('2026-11-23T08');
  });
});

describe('AlertWatchService.runOnce', () => {
  const now = new Date('2026-11-23T08:30:00Z');

  /** Prisma with a broken dead_letter table and five failed HubSpot syncs. */
  function setup(raise: (input: AlertInput) => Promise<boolean>) {
    const tx = {};
    const prisma = {
      deadLetter: { count: jest.fn().mockRejectedValue(new Error('relation is locked')) },
      jobAttempt: {
        groupBy: jest.fn().mockResolvedValue([
          { jobName: 'CrmDealSync', _count: { _all: 5 } },
          { jobName: 'ContractEnvelopeCreate', _count: { _all: 9 } },
          { jobName: 'BillingInvoiceIssue', _count: { _all: 4 } },
        ]),
        findFirst: jest
          .fn()
          .mockResolvedValue({ error: 'TransientError: hubspot 503', finishedAt: now }),
      },
      $transaction: jest.fn((work: (t: unknown) => Promise<unknown>) => work(tx)),
    } as unknown as PrismaService;
    const alerts = {
      raise: jest.fn((_tx: unknown, input: AlertInput) => raise(input)),
    } as unknown as AlertService;
    const logger = loggerStub();
    const watch = new AlertWatchService(
      prisma,
      alerts,
      loadConfig({}),
      logger as PinoLogger,
      new SystemClock(),
    );
    return { watch, prisma, alerts, warn: logger.warn as jest.Mock };
  }

  it('one failing check does not stop the others, nor one failing raise the next', async () => {
    const { watch, alerts, warn } = setup((input) =>
      input.cause.includes('|docusign|')
        ? Promise.reject(new Error('lock timeout'))
        : Promise.resolve(true),
    );

    const result = await watch.runOnce(now);

    expect(result).toEqual({
      raised: ['provider.failing|hubspot|2026-11-23T08'],
      failed: ['dead_letters.growing', 'provider.failing'],
    });
    // Below the threshold of 5: BillingInvoiceIssue (4) raised nothing.
    expect((alerts.raise as jest.Mock).mock.calls.map((c) => (c[1] as AlertInput).cause)).toEqual([
      'provider.failing|hubspot|2026-11-23T08',
      'provider.failing|docusign|2026-11-23T08',
    ]);
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({ check: 'dead_letters.growing', err: 'relation is locked' }),
      'alert check failed',
    );
  });

  it('names the provider, the count and the latest error in the message', async () => {
    const { watch, alerts } = setup(() => Promise.resolve(false));
    const result = await watch.runOnce(now);
    expect(result.raised).toEqual([]);
    const hubspot = (alerts.raise as jest.Mock).mock.calls[0][1] as AlertInput;
    expect(hubspot.kind).toBe('provider.failing');
    expect(hubspot.message).toBe(
      'hubspot is failing: 5 failed CrmDealSync attempts in the last 10 minutes; ' +
        'latest: TransientError: hubspot 503',
    );
  });
});
