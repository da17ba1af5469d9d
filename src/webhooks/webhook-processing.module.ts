import { Module } from '@nestjs/common';

import { HealthModule } from '../health/health.module';
import { SerializationLockService } from '../queue/serialization-lock.service';
import { WebhookEventHandler } from './webhook-event.handler';
import { WebhookProviders } from './webhook-providers';

/** The worker side of webhooks: the WebhookEventProcess handler. */
@Module({
  imports: [HealthModule],
  providers: [WebhookEventHandler, WebhookProviders, SerializationLockService],
})
export class WebhookProcessingModule {}
