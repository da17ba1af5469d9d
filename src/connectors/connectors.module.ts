import { Module } from '@nestjs/common';

import { HealthModule } from '../health/health.module';
import { DocusignClient } from './docusign/docusign.client';
import { HubspotClient } from './hubspot/hubspot.client';
import { PartnerCenterClient } from './partner-center/partner-center.client';
import { ReportWebhookClient } from './report-webhook/report-webhook.client';
import { StripeClient } from './stripe/stripe.client';

/**
 * The outbound provider clients (Stripe, HubSpot, DocuSign, Partner Center, the generic report
 * webhook). Each is a process-wide singleton:
 * HubSpot's SDK settings are process-global and Stripe's limiter holds one Redis connection.
 * MetricsService comes from HealthModule (Nest modules are singletons, so importing it here shares
 * the one instance the root module already has). AppConfig comes from the global ConfigModule and
 * PinoLogger from the LoggerModule of the root module.
 */
@Module({
  imports: [HealthModule],
  providers: [
    StripeClient,
    HubspotClient,
    DocusignClient,
    PartnerCenterClient,
    ReportWebhookClient,
  ],
  exports: [StripeClient, HubspotClient, DocusignClient, PartnerCenterClient, ReportWebhookClient],
})
export class ConnectorsModule {}
