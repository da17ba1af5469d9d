import { DelayedError, Job, UnrecoverableError } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';

import { PermanentError, TransientError } from '../common/errors';
import { MetricsService } from '../observability/metrics.service';
import { PrismaService } from '../prisma/prisma.service';
import { JobHandlerInterface } from './job-handler.decorator';
import { JobRegistry } from './job-registry';
import { JobRunner } from './job-runner.service';

function setup(handle: () => Promise<'SUCCEEDED'>, opts: { transactionFails?: boolean } = {}) {
  const tx = { jobAttempt: { create: jest.fn() }, deadLetter: { createMany: jest.fn() } };
  const prisma = {
    pool: { query: jest.fn() },
    $transaction: jest.fn(async (fn: (t: typeof tx) => Promise<void>) => {
      if (opts.transactionFails)
        throw Object.assign(new Error('database is down'), { code: 'P1001' });
      return fn(tx);
    }),
  };
  const onFailure = jest.fn();
  const handler: JobHandlerInterface = { handle, onFailure };
  const registry = { get: () => handler } as unknown as JobRegistry;
  const logger = { setContext: jest.fn(), info: jest.fn(), warn: jest.fn(), error: jest.fn() };
  const metrics = { jobFinished: jest.fn() };
  const runner = new JobRunner(
    registry,
    prisma as unknown as PrismaService,
    metrics as unknown as MetricsService,
    logger as unknown as PinoLogger,
  );
  const job = {
    id: 'evt_1',
    name: 'WebhookEventProcess',
    queueName: 'webhooks',
    attemptsMade: 0,
    opts: { attempts: 3 },
    data: { eventId: 'evt_1', correlationId: 'c1' },
    moveToDelayed: jest.fn(),
  };
  return { runner, job, tx, prisma, onFailure, asJob: job as unknown as Job };
}

describe('JobRunner', () => {
  it('records a successful run as one attempt row', async () => {
    const { runner, asJob, prisma } = setup(async () => 'SUCCEEDED');
    await expect(runner.run(asJob, 'tok')).resolves.toBe('SUCCEEDED');
    expect(prisma.pool.query).toHaveBeenCalledWith(
      expect.objectContaining({
        values: [
          'evt_1',
          'webhooks',
          'WebhookEventProcess',
          'evt_1',
          1,
          'SUCCEEDED',
          expect.any(Number),
          null, // an event's job names no deal in its data
        ],
      }),
    );
  });

  it('a transient failure with attempts left is recorded as RETRYING and rethrown for BullMQ to retry', async () => {
    const err = new TransientError('busy');
    const { runner, asJob, tx, onFailure } = setup(async () => Promise.reject(err));
    await expect(runner.run(asJob, 'tok')).rejects.toBe(err);
    expect(tx.jobAttempt.create).toHaveBeenCalledWith({
      data: expect.objectContaining({ outcome: 'RETRYING' }),
    });
    expect(tx.deadLetter.createMany).not.toHaveBeenCalled();
    expect(onFailure).toHaveBeenCalledWith(
      asJob,
      expect.objectContaining({ final: false, reason: 'RETRYING' }),
      tx,
    );
  });

  it('a permanent failure is dead-lettered at once and ends the job', async () => {
    const { runner, asJob, tx } = setup(async () =>
      Promise.reject(new PermanentError('invalid payload')),
    );
    await expect(runner.run(asJob, 'tok')).rejects.toBeInstanceOf(UnrecoverableError);
    expect(tx.deadLetter.createMany).toHaveBeenCalledWith(
      expect.objectContaining({
        data: expect.objectContaining({ reason: 'PERMANENT', jobId: 'evt_1', attempts: 1 }),
      }),
    );
  });

  it('the last transient attempt is dead-lettered as EXHAUSTED', async () => {
    const { runner, job, asJob, tx } = setup(async () =>
      Promise.reject(new TransientError('busy')),
    );
    job.attemptsMade = 2;
    await expect(runner.run(asJob, 'tok')).rejects.toBeInstanceOf(UnrecoverableError);
    expect(tx.deadLetter.createMany).toHaveBeenCalledWith(
      expect.objectContaining({
        data: expect.objectContaining({ reason: 'EXHAUSTED', attempts: 3 }),
      }),
    );
  });

  it('when Postgres cannot take the failure record, the job is delayed without spending an attempt', async () => {
    const { runner, job, asJob } = setup(
      async () => Promise.reject(new PermanentError('invalid payload')),
      {
        transactionFails: true,
      },
    );
    await expect(runner.run(asJob, 'tok')).rejects.toBeInstanceOf(DelayedError);
    expect(job.moveToDelayed).toHaveBeenCalledWith(expect.any(Number), 'tok');
    expect(job.moveToDelayed.mock.calls[0][0]).toBeGreaterThan(Date.now());
  });
});
