import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';

import { HealthModule } from '../health/health.module';
import { JobRegistry } from '../queue/job-registry';
import { JobRunner } from '../queue/job-runner.service';
import { OutboxRelayService } from '../queue/outbox/outbox-relay.service';
import { QueueModule } from '../queue/queue.module';
import { WorkerService } from '../queue/worker.service';
import { WebhookProcessingModule } from '../webhooks/webhook-processing.module';

/** Worker role: the outbox relay, the BullMQ workers and every job handler. No webhook routes. */
@Module({
  imports: [DiscoveryModule, QueueModule, HealthModule, WebhookProcessingModule],
  providers: [JobRegistry, JobRunner, WorkerService, OutboxRelayService],
})
export class WorkerModule {}
