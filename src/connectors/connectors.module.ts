import { Global, Module } from '@nestjs/common';

import { ObservabilityModule } from '../observability/observability.module';
import { AlertChannelPort } from '../ports/alert-channel.port';
import { CrmPort } from '../ports/crm.port';
import { ESignaturePort } from '../ports/e-signature.port';
import { InvoicingPort } from '../ports/invoicing.port';
import {
  REFERRAL_PLATFORM_ADAPTERS,
  ReferralPlatformPort,
  ReferralSourcePort,
} from '../ports/referral-platform.port';
import { AlertWebhookClient } from './alert-webhook/alert-webhook.client';
import { DocusignClient } from './docusign/docusign.client';
import { HubspotCrmAdapter } from './hubspot/hubspot-crm.adapter';
import { HubspotClient } from './hubspot/hubspot.client';
import { PartnerCenterReferralSource } from './partner-center/partner-center-referral.source';
import { PartnerCenterReportAdapter } from './partner-center/partner-center-report.adapter';
import { PartnerCenterClient } from './partner-center/partner-center.client';
import { ReportWebhookClient } from './report-webhook/report-webhook.client';
import { WebhookReportAdapter } from './report-webhook/webhook-report.adapter';
import { StripeClient } from './stripe/stripe.client';

const CLIENTS = [
  StripeClient,
  HubspotClient,
  DocusignClient,
  PartnerCenterClient,
  ReportWebhookClient,
  AlertWebhookClient,
];

const ADAPTERS = [
  HubspotCrmAdapter,
  PartnerCenterReferralSource,
  PartnerCenterReportAdapter,
  WebhookReportAdapter,
];

/** Which adapter serves each port (docs/architecture.md, docs/adding-a-provider.md). */
const PORTS = [
  { provide: CrmPort, useExisting: HubspotCrmAdapter },
  { provide: ESignaturePort, useExisting: DocusignClient },
  { provide: InvoicingPort, useExisting: StripeClient },
  { provide: AlertChannelPort, useExisting: AlertWebhookClient },
  { provide: ReferralSourcePort, useExisting: PartnerCenterReferralSource },
  {
    provide: REFERRAL_PLATFORM_ADAPTERS,
    useFactory: (...adapters: ReferralPlatformPort[]) => adapters,
    inject: [PartnerCenterReportAdapter, WebhookReportAdapter],
  },
];

/**
 * The adapters: one folder per provider (Stripe, HubSpot, DocuSign, Partner Center, the generic
 * report webhook, the alert webhook) and the binding of each port to its adapter. Global and
 * imported once by the root module, so the core injects ports and never imports an adapter.
 * Each client is a process-wide singleton: HubSpot's SDK settings are process-global and Stripe's
 * limiter holds one Redis connection. MetricsService comes from ObservabilityModule; AppConfig from
 * the global ConfigModule and PinoLogger from the LoggerModule of the root module.
 */
@Global()
@Module({
  imports: [ObservabilityModule],
  providers: [...CLIENTS, ...ADAPTERS, ...PORTS],
  exports: [...CLIENTS, ...PORTS.map((p) => p.provide)],
})
export class ConnectorsModule {}
