import { Module } from '@nestjs/common';

import { ObservabilityModule } from '../observability/observability.module';
import { LifecycleModule } from '../lifecycle/lifecycle.module';
import { QueueModule } from '../queue/queue.module';
import { EventPipeline } from './event-pipeline.service';
import {
  WebhookEventBatchHandler,
  WebhookEventHandler,
  WebhookLaneDrainHandler,
} from './webhook-event.handler';
import { WebhookProviders } from './webhook-providers';

/**
 * The event pipeline and its three job handlers (batches, lane drains, single events), which feed
 * the lifecycle — worker jobs, and the admin API's dry runs.
 */
@Module({
  imports: [ObservabilityModule, QueueModule, LifecycleModule],
  providers: [
    EventPipeline,
    WebhookEventBatchHandler,
    WebhookLaneDrainHandler,
    WebhookEventHandler,
    WebhookProviders,
  ],
  // The admin API previews replays through the same handler (a dry run, rolled back).
  exports: [WebhookEventHandler],
})
export class WebhookProcessingModule {}
