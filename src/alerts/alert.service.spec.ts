import { PinoLogger } from 'nestjs-pino';

import { loadConfig } from '../config/app-config';
import { Prisma } from '../generated/prisma/client';
import { JobName } from '../queue/job-name.enum';
import { OutboxService } from '../queue/outbox/outbox.service';
import { loggerStub } from '../connectors/connector-test-utils';
import { AlertService } from './alert.service';
import { AlertInput } from './alert.types';

const SECRET = `whsec_${Buffer.from('alert-secret-0123456789abcdef').toString('base64')}`;
const WITH_WEBHOOK = {
  ALERT_WEBHOOK_URL: 'https://ops.example/alerts',
  ALERT_WEBHOOK_SECRET: SECRET,
};

const input: AlertInput = {
  kind: 'report.overdue',
  cause: 'report.overdue|rpt_1|2026-12-15T14:59:59.999Z',
  message: 'report rpt_1 is overdue',
  dealId: 'cl_deal_1',
  details: { reportId: 'rpt_1' },
};

/**
 * A transaction whose INSERT … ON CONFLICT answers as Postgres would: the inserted id for a new
 * cause, nothing for one already raised. The SQL itself is exercised in test/integration/alerts.
 */
function setup(env: Record<string, string>, alreadyRaised: boolean) {
  const sql: string[] = [];
  const values: unknown[][] = [];
  const tx = {
    $queryRaw: jest.fn((strings: TemplateStringsArray, ...params: unknown[]) => {
      sql.push(strings.join('?'));
      values.push(params);
      return Promise.resolve(alreadyRaised ? [] : [{ id: params[0] }]);
    }),
  } as unknown as Prisma.TransactionClient;
  const enqueue = jest.fn().mockResolvedValue(undefined);
  const logger = loggerStub();
  const service = new AlertService(
    { enqueue } as unknown as OutboxService,
    loadConfig(env),
    logger as PinoLogger,
  );
  return { service, tx, sql, values, enqueue, warn: logger.warn as jest.Mock };
}

describe('AlertService.raise', () => {
  it('a new cause: inserts once per cause, logs a structured warning and enqueues the delivery', async () => {
    const { service, tx, sql, values, enqueue, warn } = setup(WITH_WEBHOOK, false);

    await expect(service.raise(tx, input, 'req-42')).resolves.toBe(true);

    expect(sql[0]).toMatch(/INSERT INTO alert[\s\S]*ON CONFLICT \(cause\) DO NOTHING/);
    const [id, cause, kind, message, details, dealId] = values[0];
    expect(id).toMatch(/^alr_[0-9a-f-]{36}$/);
    expect([cause, kind, message, dealId]).toEqual([
      input.cause,
      input.kind,
      input.message,
      input.dealId,
    ]);
    expect(JSON.parse(details as string)).toEqual({ reportId: 'rpt_1' });
    expect(warn).toHaveBeenCalledWith(
      {
        alertId: id,
        kind: 'report.overdue',
        cause: input.cause,
        dealId: 'cl_deal_1',
        message: 'report rpt_1 is overdue',
        correlationId: 'req-42',
      },
      'alert raised',
    );
    expect(enqueue).toHaveBeenCalledWith(tx, JobName.AlertDeliver, `alert|${id as string}`, {
      correlationId: 'req-42',
      alertId: id,
    });
  });

  it('a cause already raised: false, no log line, no delivery', async () => {
    const { service, tx, enqueue, warn } = setup(WITH_WEBHOOK, true);
    await expect(service.raise(tx, input)).resolves.toBe(false);
    expect(warn).not.toHaveBeenCalled();
    expect(enqueue).not.toHaveBeenCalled();
  });

  it('without ALERT_WEBHOOK_URL the alert is only logged', async () => {
    const { service, tx, enqueue, warn, values } = setup({}, false);
    await expect(service.raise(tx, { ...input, details: undefined })).resolves.toBe(true);
    expect(values[0][4]).toBeNull();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(enqueue).not.toHaveBeenCalled();
  });

  it('refuses an alert without a cause or of an unknown kind, before writing', async () => {
    const { service, tx, sql } = setup(WITH_WEBHOOK, false);
    await expect(service.raise(tx, { ...input, cause: ' ' })).rejects.toThrow(
      'alert of kind report.overdue has no cause',
    );
    await expect(
      service.raise(tx, { ...input, kind: 'disk.full' as AlertInput['kind'] }),
    ).rejects.toThrow(/unknown alert kind "disk.full"/);
    expect(sql).toEqual([]);
  });
});
