import { Global, Module } from '@nestjs/common';

import { AppConfig } from '../config/app-config';
import { ObservabilityModule } from '../observability/observability.module';
import { AlertChannelPort } from '../ports/alert-channel.port';
import { CrmPort } from '../ports/crm.port';
import { ESignaturePort } from '../ports/e-signature.port';
import { InvoicingPort } from '../ports/invoicing.port';
import { WEBHOOK_DOOR_ADAPTERS } from '../ports/webhook-door.port';
import {
  OutboundReferralPort,
  REFERRAL_PLATFORM_ADAPTERS,
  ReferralPlatformPort,
  ReferralSourcePort,
} from '../ports/referral-platform.port';
import { AlertWebhookClient } from './alert-webhook/alert-webhook.client';
import { DocusignClient } from './docusign/docusign.client';
import { DocusignWebhook } from './docusign/docusign.webhook';
import { HubspotCrmAdapter } from './hubspot/hubspot-crm.adapter';
import { HubspotClient } from './hubspot/hubspot.client';
import { HubspotWebhook } from './hubspot/hubspot.webhook';
import { PartnerCenterCosellAdapter } from './partner-center/partner-center-cosell.adapter';
import { PartnerCenterReferralSource } from './partner-center/partner-center-referral.source';
import { PartnerCenterReportAdapter } from './partner-center/partner-center-report.adapter';
import { PartnerCenterClient } from './partner-center/partner-center.client';
import { PartnerCenterWebhook } from './partner-center/partner-center.webhook';
import { ReportWebhookClient } from './report-webhook/report-webhook.client';
import { WebhookReportAdapter } from './report-webhook/webhook-report.adapter';
import { StripeClient } from './stripe/stripe.client';
import { StripeWebhook } from './stripe/stripe.webhook';

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
  PartnerCenterCosellAdapter,
  WebhookReportAdapter,
];

/** Which adapter serves each port (docs/architecture.md, docs/adding-a-provider.md). */
const PORTS = [
  { provide: CrmPort, useExisting: HubspotCrmAdapter },
  { provide: ESignaturePort, useExisting: DocusignClient },
  { provide: InvoicingPort, useExisting: StripeClient },
  { provide: AlertChannelPort, useExisting: AlertWebhookClient },
  { provide: ReferralSourcePort, useExisting: PartnerCenterReferralSource },
  { provide: OutboundReferralPort, useExisting: PartnerCenterCosellAdapter },
  {
    // The providers' webhook doors (verify, identify, normalize), read by src/webhooks.
    provide: WEBHOOK_DOOR_ADAPTERS,
    useFactory: (config: AppConfig) => [
      new DocusignWebhook(config),
      new HubspotWebhook(config),
      new StripeWebhook(config),
      new PartnerCenterWebhook(config),
    ],
    inject: [AppConfig],
  },
  {
    provide: REFERRAL_PLATFORM_ADAPTERS,
    useFactory: (...adapters: ReferralPlatformPort[]) => adapters,
    inject: [PartnerCenterReportAdapter, WebhookReportAdapter],
  },
];

/**
 * The adapters: one folder per provider (Stripe, HubSpot, DocuSign, Partner Center, the generic
 * report webhook, the alert webhook) with its client, its webhook door and signature verifier
 * where it has one, and the binding of each port to its adapter. Global and
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
