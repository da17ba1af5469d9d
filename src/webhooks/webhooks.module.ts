import { Module } from '@nestjs/common';

import { HealthModule } from '../health/health.module';
import { WebhookInboxService } from './webhook-inbox.service';
import { WebhookIngressService } from './webhook-ingress.service';
import { WebhookProviders } from './webhook-providers';
import { WebhooksController } from './webhooks.controller';

/** The api side of webhooks: the door. No business logic here. */
@Module({
  imports: [HealthModule],
  controllers: [WebhooksController],
  providers: [WebhookIngressService, WebhookInboxService, WebhookProviders],
})
export class WebhooksModule {}
