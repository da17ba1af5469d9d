import { Module } from '@nestjs/common';

import { ObservabilityModule } from '../observability/observability.module';
import { AlertWebhookClient } from './alert-webhook/alert-webhook.client';
import { DocusignClient } from './docusign/docusign.client';
import { HubspotClient } from './hubspot/hubspot.client';
import { PartnerCenterClient } from './partner-center/partner-center.client';
import { ReportWebhookClient } from './report-webhook/report-webhook.client';
import { StripeClient } from './stripe/stripe.client';

const CLIENTS = [
  StripeClient,
  HubspotClient,
  DocusignClient,
  PartnerCenterClient,
  ReportWebhookClient,
  AlertWebhookClient,
];

/**
 * The outbound provider clients (Stripe, HubSpot, DocuSign, Partner Center, the generic report
 * webhook, the alert webhook). Each is a process-wide singleton:
 * HubSpot's SDK settings are process-global and Stripe's limiter holds one Redis connection.
 * MetricsService comes from ObservabilityModule (Nest modules are singletons, so importing it here
 * shares the one instance the root module already has). AppConfig comes from the global ConfigModule and
 * PinoLogger from the LoggerModule of the root module.
 */
@Module({
  imports: [ObservabilityModule],
  providers: CLIENTS,
  exports: CLIENTS,
})
export class ConnectorsModule {}
