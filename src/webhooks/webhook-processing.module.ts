import { Module } from '@nestjs/common';

import { ConnectorsModule } from '../connectors/connectors.module';
import { HealthModule } from '../health/health.module';
import { LifecycleModule } from '../lifecycle/lifecycle.module';
import { QueueModule } from '../queue/queue.module';
import { WebhookEventHandler } from './webhook-event.handler';
import { WebhookProviders } from './webhook-providers';

/** The worker side of webhooks: the WebhookEventProcess handler, which feeds the lifecycle. */
@Module({
  imports: [HealthModule, QueueModule, LifecycleModule, ConnectorsModule],
  providers: [WebhookEventHandler, WebhookProviders],
})
export class WebhookProcessingModule {}
