import { Module } from '@nestjs/common';

import { ConnectorsModule } from '../connectors/connectors.module';
import { HealthModule } from '../health/health.module';
import { LifecycleModule } from '../lifecycle/lifecycle.module';
import { QueueModule } from '../queue/queue.module';
import { WebhookEventHandler } from './webhook-event.handler';
import { WebhookProviders } from './webhook-providers';

/** The WebhookEventProcess handler, which feeds the lifecycle (worker jobs, and the admin API's dry runs). */
@Module({
  imports: [HealthModule, QueueModule, LifecycleModule, ConnectorsModule],
  providers: [WebhookEventHandler, WebhookProviders],
  // The admin API previews replays through the same handler (a dry run, rolled back).
  exports: [WebhookEventHandler],
})
export class WebhookProcessingModule {}
