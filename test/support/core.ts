import { Test, TestingModule } from '@nestjs/testing';
import { LoggerModule } from 'nestjs-pino';

import { AlertService } from '../../src/alerts/alert.service';
import { AlertsModule } from '../../src/alerts/alerts.module';
import { BillingPlanService } from '../../src/billing/billing-plan.service';
import { BillingService } from '../../src/billing/billing.service';
import { Clock, ManualClock } from '../../src/common/clock';
import { AppConfig, loadConfig } from '../../src/config/app-config';
import { ConfigModule } from '../../src/config/config.module';
import { ConnectorsModule } from '../../src/connectors/connectors.module';
import { NormalizedEvent } from '../../src/domain/normalized-event';
import { Prisma } from '../../src/generated/prisma/client';
import { LifecycleModule } from '../../src/lifecycle/lifecycle.module';
import { EventOutcome, LifecycleService } from '../../src/lifecycle/lifecycle.service';
import { ObservabilityModule } from '../../src/observability/observability.module';
import { PrismaModule } from '../../src/prisma/prisma.module';
import { PrismaService } from '../../src/prisma/prisma.service';
import { CrmDeal, CrmPort } from '../../src/ports/crm.port';
import { OutboxService } from '../../src/queue/outbox/outbox.service';
import { ReportService } from '../../src/reporting/report.service';
import { deferTimeline, flushTimeline } from '../../src/timeline/timeline';
import { FACTORY_NOW, createWebhookEvent } from '../factories';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './test-env';

/** The hub's clock in core tests: it stands still at FACTORY_NOW until a spec moves it. */
export const CORE_NOW = FACTORY_NOW;

/**
 * The environment of the core tier: no provider credentials (no CRM sync, no envelope jobs), the
 * manual queue for aimitsu and proni, signed report webhooks for every other platform.
 */
export const CORE_ENV: Record<string, string> = {
  DATABASE_URL: TEST_DATABASE_URL,
  REDIS_URL: TEST_REDIS_URL,
  LOG_LEVEL: 'silent',
  BILLING_TIMEZONE: 'Asia/Tokyo',
  REFERRAL_MANUAL_PLATFORMS: 'aimitsu,proni',
  REFERRAL_REPORT_WEBHOOK_URL: 'https://reports.example.test/closeloop',
  REFERRAL_REPORT_WEBHOOK_SECRET: 'whsec_cmVwb3J0LXJlY2VpdmVyLXNlY3JldC0xMjM0NTY=',
};

export interface Core {
  moduleRef: TestingModule;
  config: AppConfig;
  clock: ManualClock;
  prisma: PrismaService;
  lifecycle: LifecycleService;
  billing: BillingService;
  plans: BillingPlanService;
  reports: ReportService;
  alerts: AlertService;
  outbox: OutboxService;
  /**
   * Applies a normalized event as the event pipeline does: an inbox row for it (unless `eventId`
   * names one already: a replay), then `lifecycle.apply` in one transaction whose timeline entries
   * are written at its end. `remote`: the CRM deal as the pipeline's remote read found it (the
   * EventDispatcher reads it through CrmPort before the transaction; null: it no longer exists).
   */
  apply(
    ev: NormalizedEvent,
    opts?: { eventId?: string; remote?: CrmDeal | null },
  ): Promise<EventOutcome & { eventId: string }>;
  /** Runs `fn` in a transaction (the timeline deferred and flushed, as the pipeline does). */
  tx<T>(fn: (tx: Prisma.TransactionClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * The lifecycle, billing and reporting core (LifecycleModule with BillingModule, ReportingModule
 * and AlertsModule, over the root modules the app imports: config, logger, Prisma, metrics, the
 * connectors behind the ports, all without provider credentials) with a standing clock, against
 * the test database: no HTTP server, no worker, no job handlers. The queue producers connect to the test Redis, but nothing here
 * relays the outbox: jobs stay as outbox rows for specs to assert. `crm`: an adapter bound as
 * CrmPort instead of the one ConnectorsModule binds (HubSpot), e.g. test/fake-crm.
 */
export async function startCore(
  opts: { env?: Record<string, string | undefined>; now?: Date; crm?: CrmPort } = {},
): Promise<Core> {
  const config = loadConfig({ ...CORE_ENV, ...opts.env });
  const clock = new ManualClock(opts.now ?? CORE_NOW);
  const builder = Test.createTestingModule({
    imports: [
      ConfigModule.forRoot(config),
      LoggerModule.forRoot({ pinoHttp: { level: 'silent' } }),
      PrismaModule,
      ObservabilityModule,
      ConnectorsModule,
      AlertsModule,
      LifecycleModule,
    ],
  })
    .overrideProvider(Clock)
    .useValue(clock);
  if (opts.crm) builder.overrideProvider(CrmPort).useValue(opts.crm);
  const moduleRef = await builder.compile();
  await moduleRef.init();
  const get = <T>(type: abstract new (...args: never[]) => T): T =>
    moduleRef.get(type, { strict: false });
  const prisma = get(PrismaService);
  const lifecycle = get(LifecycleService);

  const tx = <T>(fn: (tx: Prisma.TransactionClient) => Promise<T>): Promise<T> =>
    prisma.transaction(async (t) => {
      deferTimeline(t);
      const result = await fn(t);
      await flushTimeline(t);
      return result;
    });

  return {
    moduleRef,
    config,
    clock,
    prisma,
    lifecycle,
    billing: get(BillingService),
    plans: get(BillingPlanService),
    reports: get(ReportService),
    alerts: get(AlertService),
    outbox: get(OutboxService),
    tx,
    async apply(ev, o = {}) {
      const eventId = o.eventId ?? (await createWebhookEvent(prisma, { normalized: ev })).id;
      const outcome = await tx((t) =>
        lifecycle.apply(
          t,
          ev,
          { cause: `${ev.source} ${ev.kind}`, correlationId: `corr-${eventId}`, eventId },
          o.remote,
        ),
      );
      return { ...outcome, eventId };
    },
    close: () => moduleRef.close(),
  };
}
