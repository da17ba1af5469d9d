import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { Test, TestingModule } from '@nestjs/testing';
import { Job, Queue } from 'bullmq';
import { LoggerModule, PinoLogger } from 'nestjs-pino';
import { Client, Pool } from 'pg';

import { DealQueries } from '../../src/admin/deal-queries';
import { EventsService } from '../../src/admin/events.service';
import { AlertWatchService } from '../../src/alerts/alert-watch.service';
import { AlertService } from '../../src/alerts/alert.service';
import { Clock } from '../../src/common/clock';
import { AppConfig, loadConfig } from '../../src/config/app-config';
import { ConfigModule } from '../../src/config/config.module';
import { ConnectorsModule } from '../../src/connectors/connectors.module';
import { OverviewService } from '../../src/dashboard/overview.service';
import { ObservabilityModule } from '../../src/observability/observability.module';
import { PrismaModule } from '../../src/prisma/prisma.module';
import { PrismaService } from '../../src/prisma/prisma.service';
import { ReportDeliverData } from '../../src/queue/job-data.types';
import { ReportDeliverHandler } from '../../src/reporting/report-deliver.handler';
import { ReportingWorkerModule } from '../../src/reporting/reporting-worker.module';
import { PURGE_SQL } from '../../src/retention/retention.service';
import { startReportReceiver } from '../../tools/simulator/provider-sim/report-receiver';
import { createDeal, createReport } from '../factories';
import { testDb, truncateAll } from '../support/hub';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../support/test-env';

/**
 * The indexes of migration 20261207141319_retention at a realistic size (30,000 events, 39,000 job
 * attempts, 3,000 reports, ANALYZEd; the planner left to choose): every query the dashboard's
 * overview makes — and the events inbox, an event, a deal's events and job attempts, the
 * failing-provider check and each purge batch — is planned without a Seq Scan of webhook_event or
 * job_attempt, and the last success of a connector is one index step even when the newest 6,000
 * attempts failed. The statements are captured from the services themselves (their pg pool).
 */
const SECRET = `whsec_${Buffer.from('closeloop-retention-report-secret').toString('base64')}`;
/** Tables that grow with history (reports are kept for good too). */
const HISTORY = ['webhook_event', 'job_attempt', 'report'];

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  Plans?: PlanNode[];
}
const flatten = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(flatten)];

interface Captured {
  text: string;
  values: unknown[];
}

/** Records every statement sent through the Prisma client's pool while `work` runs. */
async function capture(prisma: PrismaService, work: () => Promise<unknown>): Promise<Captured[]> {
  const pool = prisma.pool as unknown as { query: (...args: unknown[]) => unknown };
  const original = pool.query;
  const seen: Captured[] = [];
  pool.query = function (this: unknown, ...args: unknown[]) {
    const [q, values] = args as [string | { text: string; values?: unknown[] }, unknown[]?];
    seen.push(
      typeof q === 'string'
        ? { text: q, values: values ?? [] }
        : { text: q.text, values: q.values ?? [] },
    );
    return original.apply(this, args);
  };
  try {
    await work();
  } finally {
    pool.query = original;
  }
  return seen;
}

describe('retention indexes', () => {
  let db: Pool;
  let moduleRef: TestingModule;
  let prisma: PrismaService;
  let config: AppConfig;
  let overview: OverviewService;
  let receiver: Awaited<ReturnType<typeof startReportReceiver>>;
  const t0 = new Date(Date.now() - 60_000);
  const at = (ms: number) => new Date(t0.getTime() - ms);
  const MIN = 60_000;
  const DAY = 24 * 60 * MIN;

  const plan = async (q: Captured, analyze = false): Promise<PlanNode[]> => {
    const { rows } = await db.query(
      `EXPLAIN (${analyze ? 'ANALYZE, ' : ''}FORMAT JSON) ${q.text}`,
      q.values,
    );
    return flatten((rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0].Plan);
  };
  /** The history tables a statement reads with a Seq Scan (the test wants none). */
  const seqScans = async (q: Captured) =>
    (await plan(q))
      .filter((n) => n['Node Type'] === 'Seq Scan' && HISTORY.includes(n['Relation Name'] ?? ''))
      .map((n) => `${n['Relation Name']} in: ${q.text.replace(/\s+/g, ' ').slice(0, 160)}`);

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    receiver = await startReportReceiver({ secret: SECRET, path: '/reports' });
    config = loadConfig({
      DATABASE_URL: TEST_DATABASE_URL,
      REDIS_URL: TEST_REDIS_URL,
      LOG_LEVEL: 'silent',
      REFERRAL_REPORT_WEBHOOK_URL: `${receiver.url}/reports`,
      REFERRAL_REPORT_WEBHOOK_SECRET: SECRET,
    });
    moduleRef = await Test.createTestingModule({
      imports: [
        ConfigModule.forRoot(config),
        LoggerModule.forRoot({ pinoHttp: { level: 'silent' } }),
        PrismaModule,
        ObservabilityModule,
        ConnectorsModule,
        ReportingWorkerModule,
      ],
    }).compile();
    prisma = moduleRef.get(PrismaService);
    const queue = { name: 'q', getJobCounts: async () => ({}) } as unknown as Queue;
    overview = new OverviewService(prisma, config, moduleRef.get(Clock), queue, queue, queue);

    // 2,000 deals; 30,000 events over ~500 days; one attempt per event on the webhooks queue.
    await db.query(
      `INSERT INTO deal (id, name, stage, source, currency, updated_at)
       SELECT 'cl_deal_ix_' || g, 'Deal ' || g, 'WON', 'admin', 'jpy', now() FROM generate_series(0, 1999) g`,
    );
    await db.query(
      `INSERT INTO webhook_event (id, provider, provider_event_id, type, status, payload, headers,
                                  correlation_id, received_at, processed_at, deal_id, subject_key)
       SELECT 'evt_ix_' || lpad(g::text, 6, '0'),
              (ARRAY['docusign','hubspot','stripe','milestones','partner-center','generic'])[1 + g % 6],
              'pe_' || g, 'invoice.paid',
              (CASE WHEN g % 50 = 0 THEN 'DEAD' WHEN g % 10 = 0 THEN 'IGNORED' ELSE 'PROCESSED' END)::"EventStatus",
              jsonb_build_object('email', 'user' || g || '@example.com', 'pad', repeat('x', 300)),
              '{"content-type":"application/json"}', 'corr-' || g,
              $1::timestamptz - (30000 - g) * interval '24 minutes', $1, 'cl_deal_ix_' || g % 2000,
              'deal:cl_deal_ix_' || g % 2000
         FROM generate_series(1, 30000) g`,
      [t0],
    );
    await db.query(
      `INSERT INTO job_attempt (event_id, queue, job_name, job_id, attempt, outcome, duration_ms, finished_at, deal_id)
       SELECT 'evt_ix_' || lpad(g::text, 6, '0'), 'webhooks', 'WebhookEventBatch', 'batch-' || g, 1,
              'SUCCEEDED', 3, $1::timestamptz - (30000 - g) * interval '24 minutes', 'cl_deal_ix_' || g % 2000
         FROM generate_series(1, 30000) g`,
      [t0],
    );
    // Outbound jobs: successes long ago, then the newest 6,000 CrmDealSync attempts all failed
    // (every half second over the last 50 minutes); envelopes never succeeded.
    const attempts = (
      job: string,
      queue: string,
      outcome: string,
      n: number,
      from: Date,
      stepMs: number,
    ) =>
      db.query(
        `INSERT INTO job_attempt (queue, job_name, job_id, attempt, outcome, error, duration_ms, finished_at, deal_id)
         SELECT $1, $2, $2 || '-' || g, 1, $3::"JobOutcome",
                CASE WHEN $3 = 'SUCCEEDED' THEN NULL ELSE 'HubSpot answered 429 Too Many Requests' END,
                10, $4::timestamptz + g * make_interval(secs => $5::float8 / 1000), 'cl_deal_ix_' || g % 2000
           FROM generate_series(0, $6::int - 1) g`,
        [queue, job, outcome, from, stepMs, n],
      );
    await attempts('CrmDealSync', 'connectors', 'SUCCEEDED', 500, at(40 * DAY), 3600_000);
    await attempts('CrmDealSync', 'connectors', 'RETRYING', 6000, at(50 * MIN), 500);
    await attempts('BillingInvoiceIssue', 'billing', 'SUCCEEDED', 1000, at(3 * DAY), 255_000);
    await attempts('ContractEnvelopeCreate', 'connectors', 'DEAD', 200, at(2 * DAY), 60_000);
    await attempts('AlertDeliver', 'connectors', 'SUCCEEDED', 100, at(10 * DAY), 60_000);
    // This hour's report deliveries, counted under their report's channel (an unknown report's
    // under the webhook, as before).
    await db.query(
      `INSERT INTO job_attempt (queue, job_name, job_id, attempt, outcome, error, duration_ms, finished_at)
       SELECT 'connectors', 'ReportDeliver', job_id, 1, 'RETRYING', 'platform answered 503', 10, $1
         FROM unnest(ARRAY['report|rep_ix_1', 'report|rep_ix_1', 'report|rep_ix_2',
                           'report|rep_ix_wh', 'report|rep_ix_gone']) AS job_id`,
      [t0],
    );
    // Reports: partner-center delivers every hour; the webhook channel once, 200 days ago; an admin
    // marked a webhook report reported today (not the channel's success), manual ones too.
    await db.query(
      `INSERT INTO report (id, fact_key, deal_id, kind, platform, channel, status, data, fields,
                           occurred_at, delivered_at, channel_succeeded_at, updated_at)
       SELECT 'rep_ix_' || g, 'fact-' || g, 'cl_deal_ix_' || g % 2000, 'won', 'partner-center',
              CASE WHEN g % 3 = 0 THEN 'manual' ELSE 'partner-center' END, 'REPORTED', '{}', '[]', $1,
              $1::timestamptz - g * interval '1 hour',
              CASE WHEN g % 3 <> 0 THEN $1::timestamptz - g * interval '1 hour' END, $1
         FROM generate_series(1, 3000) g`,
      [t0],
    );
    await db.query(
      `INSERT INTO report (id, fact_key, deal_id, kind, platform, channel, status, data, fields,
                           occurred_at, delivered_at, channel_succeeded_at, updated_at)
       VALUES ('rep_ix_wh', 'fact-wh', 'cl_deal_ix_1', 'won', 'generic', 'webhook', 'REPORTED', '{}', '[]', $1, $2, $2, $1),
              ('rep_ix_wh_admin', 'fact-wh-admin', 'cl_deal_ix_2', 'won', 'generic', 'webhook', 'REPORTED', '{}', '[]', $1, $1, NULL, $1)`,
      [t0, at(200 * DAY)],
    );
    await db.query('ANALYZE webhook_event, job_attempt, report, deal');
  });

  afterAll(async () => {
    await moduleRef?.close();
    await receiver?.close();
    await truncateAll(db);
    await db?.end();
  });

  it("answers every connector's last success: past 6,000 newer failures, from a rare report channel, never for one that never succeeded", async () => {
    const { connectors } = await overview.read();
    const last = Object.fromEntries(
      connectors.map((c) => [c.key, c.lastSuccessAt?.toISOString() ?? null]),
    );
    expect(last).toEqual({
      stripe: new Date(at(3 * DAY).getTime() + 999 * 255_000).toISOString(),
      hubspot: new Date(at(40 * DAY).getTime() + 499 * 3600_000).toISOString(),
      docusign: null,
      'partner-center': at(3600_000).toISOString(),
      'report-webhook': at(200 * DAY).toISOString(),
      'alert-webhook': new Date(at(10 * DAY).getTime() + 99 * 60_000).toISOString(),
    });
    // The hour's figures still come from the attempts (HubSpot: the failures of the last hour).
    const hour = Object.fromEntries(
      connectors.map((c) => [c.key, [c.attempts, c.failed, c.rateLimited]]),
    );
    expect(hour).toEqual({
      stripe: [0, 0, 0],
      hubspot: [6000, 6000, 6000],
      docusign: [0, 0, 0],
      'partner-center': [3, 3, 0],
      'report-webhook': [2, 2, 0],
      'alert-webhook': [0, 0, 0],
    });
  });

  it('plans no overview query (nor inbox, event, deal, failing-provider check or purge batch) as a Seq Scan of the history', async () => {
    const events = new EventsService(prisma, {} as never, {} as never);
    const alerts = { raise: async () => false } as unknown as AlertService;
    const logger = await moduleRef.resolve(PinoLogger);
    const watch = new AlertWatchService(prisma, alerts, config, logger, moduleRef.get(Clock));
    const deals = new DealQueries(prisma, config);
    const statements = await capture(prisma, async () => {
      await overview.read();
      await events.list({ limit: 50 });
      await events.list({ provider: 'partner-center', limit: 50 });
      await events.list({ status: 'DEAD', limit: 50 });
      await events.list({ status: 'DEAD', provider: 'milestones', limit: 50 });
      await events.list({ dealId: 'cl_deal_ix_7', limit: 50 });
      await events.get('evt_ix_004242');
      await deals.detail(prisma, 'cl_deal_ix_7');
      await watch.runOnce(new Date());
    });
    const history = statements.filter((q) => /webhook_event|job_attempt|report/.test(q.text));
    expect(history.length).toBeGreaterThanOrEqual(15);
    const cutoff = new Date(Date.now() - 400 * DAY);
    const purge: Captured[] = [
      { text: PURGE_SQL.events, values: [cutoff, '-infinity', 2000] },
      { text: PURGE_SQL.jobNames, values: [] },
      { text: PURGE_SQL.attempts, values: [cutoff, '-infinity', 2000, 'WebhookEventBatch'] },
      { text: PURGE_SQL.sessions, values: ['-infinity', 2000] },
    ];
    const found = (await Promise.all([...history, ...purge].map(seqScans))).flat();
    expect(found).toEqual([]);
  });

  it('finds a last success with one index step: the partial indexes, one row read', async () => {
    const statements = await capture(prisma, () => overview.read());
    const lookups = statements.filter((q) =>
      /ORDER BY (finished_at|channel_succeeded_at) DESC LIMIT 1/.test(q.text),
    );
    expect(lookups).toHaveLength(6);
    for (const q of lookups) {
      const nodes = await plan(q, true);
      const scan = nodes.find((n) => n['Index Name']);
      expect(scan?.['Index Name']).toMatch(
        /^(job_attempt_connector_success_idx|report_channel_succeeded_at_idx)$/,
      );
      expect(scan?.['Actual Rows']).toBeLessThanOrEqual(1);
    }
  });

  it("records a report channel's success when ReportDeliver succeeds, and the overview shows it", async () => {
    const deal = await createDeal(prisma, {
      stage: 'WON',
      referral: { platform: 'generic', id: 'ref-ix' },
    });
    const report = await createReport(prisma, {
      dealId: deal.id,
      kind: 'won',
      platform: 'generic',
      channel: 'webhook',
      status: 'PENDING',
      referralId: 'ref-ix',
    });
    const job = {
      data: { reportId: report.id, dealId: deal.id, correlationId: 'c-ix' },
    } as Job<ReportDeliverData>;
    const before = Date.now();
    await expect(moduleRef.get(ReportDeliverHandler).handle(job)).resolves.toBe('SUCCEEDED');
    const row = await prisma.report.findUniqueOrThrow({ where: { id: report.id } });
    expect(row.status).toBe('REPORTED');
    expect(row.channelSucceededAt!.getTime()).toBeGreaterThanOrEqual(before - 1);
    const { connectors } = await overview.read();
    expect(connectors.find((c) => c.key === 'report-webhook')?.lastSuccessAt).toEqual(
      row.channelSucceededAt,
    );
  });

  it('migration 20261207141319_retention backfills channel_succeeded_at from the attempts the dashboard read before', async () => {
    const dir = path.join(__dirname, '../../prisma/migrations');
    const names = readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    const sql = (name: string) => readFileSync(path.join(dir, name, 'migration.sql'), 'utf8');
    const at = names.indexOf('20261207141319_retention');
    const dbName = `closeloop_migration_ret_${process.pid}_${Date.now()}`;
    const admin = new Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${dbName}`;
    const old = new Client({ connectionString: url.toString() });
    try {
      await old.connect();
      for (const name of names.slice(0, at)) await old.query(sql(name));
      await old.query(
        `INSERT INTO deal (id, name, stage, source, currency, updated_at) VALUES ('d1', 'D', 'WON', 'admin', 'jpy', now());
         INSERT INTO report (id, fact_key, deal_id, kind, platform, channel, status, data, fields, occurred_at, updated_at)
         VALUES ('r1', 'f1', 'd1', 'won', 'generic', 'webhook', 'REPORTED', '{}', '[]', now(), now()),
                ('r2', 'f2', 'd1', 'won', 'generic', 'webhook', 'FAILED', '{}', '[]', now(), now());
         INSERT INTO job_attempt (queue, job_name, job_id, attempt, outcome, duration_ms, finished_at) VALUES
           ('connectors', 'ReportDeliver', 'report|r1', 1, 'RETRYING', 5, '2026-11-01T00:00:00Z'),
           ('connectors', 'ReportDeliver', 'report|r1', 2, 'SUCCEEDED', 5, '2026-11-01T00:05:00Z'),
           ('connectors', 'ReportDeliver', 'report|r2', 1, 'RETRYING', 5, '2026-11-02T00:00:00Z');`,
      );
      await old.query(sql(names[at]));
      const { rows } = await old.query(`SELECT id, channel_succeeded_at FROM report ORDER BY id`);
      expect(rows).toEqual([
        { id: 'r1', channel_succeeded_at: new Date('2026-11-01T00:05:00Z') },
        { id: 'r2', channel_succeeded_at: null },
      ]);
    } finally {
      await old.end();
      await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
      await admin.end();
    }
  });
});
