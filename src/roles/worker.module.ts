import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';

import { AlertsWorkerModule } from '../alerts/alerts-worker.module';
import { BillingWorkerModule } from '../billing/billing-worker.module';
import { HealthModule } from '../health/health.module';
import { LifecycleWorkerModule } from '../lifecycle/lifecycle-worker.module';
import { JobRegistry } from '../queue/job-registry';
import { JobRunner } from '../queue/job-runner.service';
import { OutboxRelayService } from '../queue/outbox/outbox-relay.service';
import { RecoverySweepService } from '../recovery/recovery-sweep.service';
import { QueueModule } from '../queue/queue.module';
import { ReportingWorkerModule } from '../reporting/reporting-worker.module';
import { RetentionService } from '../retention/retention.service';
import { WorkerService } from '../queue/worker.service';
import { WebhookProcessingModule } from '../webhooks/webhook-processing.module';

/**
 * Worker role: the outbox relay, the BullMQ workers, every job handler, the recovery sweep and the
 * retention purge. No webhook routes.
 */
@Module({
  imports: [
    DiscoveryModule,
    QueueModule,
    HealthModule,
    WebhookProcessingModule,
    LifecycleWorkerModule,
    BillingWorkerModule,
    ReportingWorkerModule,
    AlertsWorkerModule,
  ],
  providers: [
    JobRegistry,
    JobRunner,
    WorkerService,
    OutboxRelayService,
    RecoverySweepService,
    RetentionService,
  ],
})
export class WorkerModule {}
