import { Test, TestingModule } from '@nestjs/testing';
import { Job } from 'bullmq';
import { LoggerModule, PinoLogger } from 'nestjs-pino';
import { Pool } from 'pg';

import { AlertDeliverHandler } from '../../src/alerts/alert-deliver.handler';
import { AlertWatchService } from '../../src/alerts/alert-watch.service';
import { AlertService } from '../../src/alerts/alert.service';
import { AlertInput } from '../../src/alerts/alert.types';
import { AlertsWorkerModule } from '../../src/alerts/alerts-worker.module';
import { PermanentError, TransientError } from '../../src/common/errors';
import { loadConfig } from '../../src/config/app-config';
import { ConfigModule } from '../../src/config/config.module';
import { PrismaModule } from '../../src/prisma/prisma.module';
import { PrismaService } from '../../src/prisma/prisma.service';
import { AlertDeliverData } from '../../src/queue/job-data.types';
import { ConnectorsModule } from '../../src/connectors/connectors.module';
import { OutboxService } from '../../src/queue/outbox/outbox.service';
import {
  StartedReportReceiver,
  startReportReceiver,
} from '../../tools/simulator/provider-sim/report-receiver';
import { count, stopAll } from '../support/failures';
import { startHub, testDb, waitFor } from '../support/hub';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../support/test-env';

/**
 * Alerts against the real Postgres (and the Redis the queue producers connect to): the worker's
 * AlertsWorkerModule is booted on its own, the delivery goes to a local Standard Webhooks receiver
 * that verifies signatures and dedupes on webhook-id.
 */

const SECRET = `whsec_${Buffer.from('closeloop-alerts-test-secret-0123').toString('base64')}`;
const ALERT_PATH = '/ops/alerts';

const overdue: AlertInput = {
  kind: 'report.overdue',
  cause: 'report.overdue|rpt_1|2026-12-15T14:59:59.999Z',
  message: 'the won report of deal cl_deal_1 is overdue',
  dealId: 'cl_deal_1',
  details: { reportId: 'rpt_1', dueAt: '2026-12-15T14:59:59.999Z' },
};

describe('alerts', () => {
  let db: Pool;
  let receiver: StartedReportReceiver;
  let moduleRef: TestingModule;
  let prisma: PrismaService;
  let alerts: AlertService;
  let watch: AlertWatchService;
  let deliver: AlertDeliverHandler;

  beforeAll(async () => {
    db = testDb();
    receiver = await startReportReceiver({ secret: SECRET, path: ALERT_PATH });
    const config = loadConfig({
      DATABASE_URL: TEST_DATABASE_URL,
      REDIS_URL: TEST_REDIS_URL,
      LOG_LEVEL: 'silent',
      ALERT_WEBHOOK_URL: `${receiver.url}${ALERT_PATH}`,
      ALERT_WEBHOOK_SECRET: SECRET,
    });
    moduleRef = await Test.createTestingModule({
      imports: [
        ConfigModule.forRoot(config),
        LoggerModule.forRoot({ pinoHttp: { level: 'silent' } }),
        PrismaModule,
        // The adapters (the alert channel port among them), as the root module imports them.
        ConnectorsModule,
        AlertsWorkerModule,
      ],
    }).compile();
    prisma = moduleRef.get(PrismaService);
    alerts = moduleRef.get(AlertService);
    watch = moduleRef.get(AlertWatchService);
    deliver = moduleRef.get(AlertDeliverHandler);
  });

  beforeEach(async () => {
    await db.query('TRUNCATE alert, outbox, dead_letter, job_attempt RESTART IDENTITY');
    receiver.receiver.reset();
  });

  afterAll(async () => {
    await moduleRef?.close();
    await receiver?.close();
    await db?.end();
  });

  const raise = (input: AlertInput, service = alerts) =>
    prisma.$transaction((tx) => service.raise(tx, input, 'corr-alerts-test'));

  const alertRows = async () =>
    (
      await db.query<{ id: string; cause: string; kind: string; delivered_at: Date | null }>(
        'SELECT id, cause, kind, delivered_at FROM alert ORDER BY created_at, id',
      )
    ).rows;

  describe('AlertService.raise', () => {
    it('raising the same cause twice writes one alert and one delivery job', async () => {
      await expect(raise(overdue)).resolves.toBe(true);
      await expect(raise({ ...overdue, message: 'checked again' })).resolves.toBe(false);

      const rows = await alertRows();
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ cause: overdue.cause, kind: 'report.overdue' });
      const jobs = await db.query<{
        job_name: string;
        job_id: string;
        queue: string;
        data: unknown;
      }>('SELECT job_name, job_id, queue, data FROM outbox');
      expect(jobs.rows).toEqual([
        {
          job_name: 'AlertDeliver',
          job_id: `alert|${rows[0].id}`,
          queue: 'connectors',
          data: { correlationId: 'corr-alerts-test', alertId: rows[0].id },
        },
      ]);
    });

    it('two workers raising one cause at once: exactly one of them alerts', async () => {
      const results = await Promise.all([raise(overdue), raise(overdue), raise(overdue)]);
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await count(db, 'SELECT count(*) FROM alert')).toBe(1);
      expect(await count(db, 'SELECT count(*) FROM outbox')).toBe(1);
    });

    it('an alert raised in a transaction that rolls back leaves neither row nor job, and can be raised again', async () => {
      await expect(
        prisma.$transaction(async (tx) => {
          await alerts.raise(tx, overdue);
          throw new Error('the caller failed');
        }),
      ).rejects.toThrow('the caller failed');
      expect(await count(db, 'SELECT count(*) FROM alert')).toBe(0);
      expect(await count(db, 'SELECT count(*) FROM outbox')).toBe(0);
      await expect(raise(overdue)).resolves.toBe(true);
    });

    it('without ALERT_WEBHOOK_URL the alert is recorded but no delivery is enqueued', async () => {
      const logOnly = new AlertService(
        moduleRef.get(OutboxService),
        loadConfig({}),
        await moduleRef.resolve(PinoLogger),
      );
      await expect(raise(overdue, logOnly)).resolves.toBe(true);
      expect(await count(db, 'SELECT count(*) FROM alert')).toBe(1);
      expect(await count(db, 'SELECT count(*) FROM outbox')).toBe(0);
    });
  });

  describe('AlertWatchService', () => {
    let seq = 0;
    async function deadLetters(n: number, status = 'OPEN'): Promise<string[]> {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const id = `dl_test_${String(++seq).padStart(4, '0')}`;
        await db.query(
          `INSERT INTO dead_letter (id, queue, job_name, job_id, data, reason, error, attempts, status, created_at)
           VALUES ($1, 'billing', 'BillingInvoiceIssue', $1, '{}', 'EXHAUSTED', 'TransientError: stripe 503', 12,
                   $2::"DeadLetterStatus", now() - make_interval(secs => $3::int))`,
          [id, status, 10_000 - seq],
        );
        ids.push(id);
      }
      return ids;
    }

    async function failures(
      jobName: string,
      n: number,
      at: Date,
      outcome = 'RETRYING',
      error?: string,
    ) {
      for (let i = 0; i < n; i++) {
        await db.query(
          `INSERT INTO job_attempt (queue, job_name, job_id, attempt, outcome, error, duration_ms, finished_at)
           VALUES ('connectors', $1, $2, $3, $4::"JobOutcome", $5, 10, $6)`,
          [
            jobName,
            `${jobName}|job`,
            i + 1,
            outcome,
            error ?? `TransientError: ${jobName} call ${i + 1}`,
            at,
          ],
        );
      }
    }

    it('one open dead letter alerts once; checking again does not alert again', async () => {
      const [first] = await deadLetters(1);
      const now = new Date();

      const pass1 = await watch.runOnce(now);
      expect(pass1).toEqual({ raised: [`dead_letters.growing|>=1|${first}`], failed: [] });
      const pass2 = await watch.runOnce(now);
      expect(pass2).toEqual({ raised: [], failed: [] });

      const rows = await alertRows();
      expect(rows.map((r) => r.cause)).toEqual([`dead_letters.growing|>=1|${first}`]);
      const { rows: full } = await db.query<{ message: string; details: Record<string, unknown> }>(
        'SELECT message, details FROM alert',
      );
      expect(full[0].message).toMatch(
        /^1 open dead letter \(≥ 1\); the oldest, dl_test_\d+ \(BillingInvoiceIssue\)/,
      );
      expect(full[0].details).toMatchObject({ open: 1, threshold: 1, oldestId: first });
      // Delivered like any alert: one outbox job.
      expect(await count(db, "SELECT count(*) FROM outbox WHERE job_name = 'AlertDeliver'")).toBe(
        1,
      );
    });

    it('a backlog reaching 10 raises the >=10 alert once; cleared and refilled it alerts again', async () => {
      const [first] = await deadLetters(1);
      await watch.runOnce(new Date());
      await deadLetters(8);
      // 9 open: still the >=1 threshold, already raised.
      expect((await watch.runOnce(new Date())).raised).toEqual([]);
      await deadLetters(1);
      expect((await watch.runOnce(new Date())).raised).toEqual([
        `dead_letters.growing|>=10|${first}`,
      ]);
      expect((await watch.runOnce(new Date())).raised).toEqual([]);
      // Resolved (replayed) rows do not count.
      await deadLetters(5, 'REPLAYED');
      expect((await watch.runOnce(new Date())).raised).toEqual([]);

      await db.query(`UPDATE dead_letter SET status = 'DISCARDED', resolved_at = now()`);
      expect((await watch.runOnce(new Date())).raised).toEqual([]);
      const [fresh] = await deadLetters(1);
      expect((await watch.runOnce(new Date())).raised).toEqual([
        `dead_letters.growing|>=1|${fresh}`,
      ]);
      expect(await count(db, 'SELECT count(*) FROM alert')).toBe(3);
    });

    it('five failed attempts of one provider in ten minutes alert once per hour bucket', async () => {
      const now = new Date('2026-11-23T08:30:00.000Z');
      const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000);
      // None of these is an alert: too few, too old, not a provider job, the alert webhook itself,
      // or attempts that did not fail.
      await failures('BillingInvoiceIssue', 4, minutesAgo(1));
      await failures('CrmDealSync', 5, minutesAgo(11));
      await failures('WebhookEventProcess', 6, minutesAgo(1));
      await failures('AlertDeliver', 6, minutesAgo(1), 'DEAD');
      await failures('ReportDeliver', 6, minutesAgo(1), 'SUCCEEDED');
      expect(await watch.runOnce(now)).toEqual({ raised: [], failed: [] });

      await failures('ContractEnvelopeCreate', 4, minutesAgo(5));
      await failures(
        'ContractEnvelopeCreate',
        1,
        minutesAgo(2),
        'DEAD',
        'PermanentError: template gone',
      );
      const pass = await watch.runOnce(now);
      expect(pass).toEqual({ raised: ['provider.failing|docusign|2026-11-23T08'], failed: [] });
      const { rows } = await db.query<{ message: string; kind: string }>(
        'SELECT kind, message FROM alert',
      );
      expect(rows).toEqual([
        {
          kind: 'provider.failing',
          message:
            'docusign is failing: 5 failed ContractEnvelopeCreate attempts in the last 10 minutes; ' +
            'latest: PermanentError: template gone',
        },
      ]);

      // Still failing a minute later: the same cause, no second alert…
      await failures('ContractEnvelopeCreate', 2, minutesAgo(0));
      expect((await watch.runOnce(new Date(now.getTime() + 60_000))).raised).toEqual([]);
      // …and the next hour, if it keeps failing, alerts again.
      const nextHour = new Date('2026-11-23T09:01:00.000Z');
      await failures('ContractEnvelopeCreate', 5, new Date(nextHour.getTime() - 30_000));
      expect((await watch.runOnce(nextHour)).raised).toEqual([
        'provider.failing|docusign|2026-11-23T09',
      ]);
    });
  });

  describe('AlertDeliverHandler', () => {
    const job = (alertId: string) =>
      ({ data: { alertId, correlationId: 'corr-alerts-test' } }) as Job<AlertDeliverData>;

    async function raised(): Promise<string> {
      await raise(overdue);
      const [row] = await alertRows();
      return row.id;
    }

    it('500 then 200: delivered once, signed, with the same webhook-id; then skipped', async () => {
      const alertId = await raised();
      receiver.receiver.setFaults({ statuses: [500] });

      await expect(deliver.handle(job(alertId))).rejects.toBeInstanceOf(TransientError);
      expect((await alertRows())[0].delivered_at).toBeNull();

      await expect(deliver.handle(job(alertId))).resolves.toBe('SUCCEEDED');
      expect((await alertRows())[0].delivered_at).toBeInstanceOf(Date);

      expect(receiver.receiver.attempts.map((a) => [a.webhookId, a.status, a.outcome])).toEqual([
        [alertId, 500, 'fault'],
        [alertId, 200, 'stored'],
      ]);
      const [stored] = receiver.receiver.reports();
      expect(stored.type).toBe('alert.report.overdue');
      expect(stored.data).toEqual({
        alertId,
        kind: 'report.overdue',
        cause: overdue.cause,
        message: overdue.message,
        dealId: 'cl_deal_1',
        details: overdue.details,
        raisedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) as unknown,
      });

      // A redelivered job (at-least-once) sends nothing more.
      await expect(deliver.handle(job(alertId))).resolves.toBe('SKIPPED');
      expect(receiver.receiver.attempts).toHaveLength(2);
    });

    it('a 400 is a PermanentError and the alert stays undelivered', async () => {
      const alertId = await raised();
      receiver.receiver.setFaults({ always: 400 });

      const err = await deliver.handle(job(alertId)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as Error).message).toBe('alert webhook 400: {"error":"injected 400"}');
      expect((await alertRows())[0].delivered_at).toBeNull();
      expect(receiver.receiver.reports()).toEqual([]);
    });

    it('an alert that no longer exists is ignored without a request', async () => {
      await expect(deliver.handle(job('alr_gone'))).resolves.toBe('IGNORED');
      expect(receiver.receiver.attempts).toEqual([]);
    });
  });

  describe('a hub process', () => {
    it('alerts a dead letter end to end: watch → outbox → worker → signed webhook, retried after a 503', async () => {
      // The hub's watch also alerts on reports past their deadline and referrals running out: rows
      // other suites left in the shared test database must not add alerts to this one.
      await db.query('TRUNCATE report, referral');
      await db.query(
        `INSERT INTO dead_letter (id, queue, job_name, job_id, data, reason, error, attempts)
         VALUES ('dl_e2e', 'billing', 'BillingInvoiceIssue', 'dl_e2e', '{}', 'PERMANENT',
                 'PermanentError: stripe 400 No such customer', 1)`,
      );
      receiver.receiver.setFaults({ statuses: [503] });
      const hub = await startHub({
        ALERT_WEBHOOK_URL: `${receiver.url}${ALERT_PATH}`,
        ALERT_WEBHOOK_SECRET: SECRET,
        LIFECYCLE_TIMER_MS: '100',
      });
      try {
        await receiver.receiver.waitFor(1, { timeoutMs: 20_000 });
        const [stored] = receiver.receiver.reports();
        expect(stored.type).toBe('alert.dead_letters.growing');
        expect(stored.data).toMatchObject({ cause: 'dead_letters.growing|>=1|dl_e2e' });
        await waitFor(async () => (await alertRows())[0]?.delivered_at, {
          what: 'deliveredAt',
        });
        // Many passes of the watch later: still one alert, delivered once (after one 503).
        await new Promise((r) => setTimeout(r, 500));
        expect(await alertRows()).toHaveLength(1);
        expect(receiver.receiver.attempts.map((a) => [a.webhookId, a.status])).toEqual([
          [stored.id, 503],
          [stored.id, 200],
        ]);
      } finally {
        await stopAll(hub);
      }
    });
  });
});
