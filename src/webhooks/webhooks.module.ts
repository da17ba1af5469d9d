import { Module } from '@nestjs/common';

import { ObservabilityModule } from '../observability/observability.module';
import { WebhookInboxService } from './webhook-inbox.service';
import { WebhookIngressService } from './webhook-ingress.service';
import { WebhookProviders } from './webhook-providers';
import { WebhooksController } from './webhooks.controller';

/** The api side of webhooks: the door. No business logic here. */
@Module({
  imports: [ObservabilityModule],
  controllers: [WebhooksController],
  providers: [WebhookIngressService, WebhookInboxService, WebhookProviders],
})
export class WebhooksModule {}
