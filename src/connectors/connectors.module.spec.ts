import { Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { LoggerModule } from 'nestjs-pino';

import { loadConfig } from '../config/app-config';
import { ConfigModule } from '../config/config.module';
import { ObservabilityModule } from '../observability/observability.module';
import { MetricsService } from '../observability/metrics.service';
import { AlertChannelPort } from '../ports/alert-channel.port';
import { CrmPort } from '../ports/crm.port';
import { ESignaturePort } from '../ports/e-signature.port';
import { InvoicingPort } from '../ports/invoicing.port';
import { REFERRAL_PLATFORM_ADAPTERS, ReferralPlatformPort } from '../ports/referral-platform.port';
import { AlertWebhookClient } from './alert-webhook/alert-webhook.client';
import { ConnectorsModule } from './connectors.module';
import { HubspotCrmAdapter } from './hubspot/hubspot-crm.adapter';
import { DocusignClient } from './docusign/docusign.client';
import { HubspotClient } from './hubspot/hubspot.client';
import { PartnerCenterClient } from './partner-center/partner-center.client';
import { ReportWebhookClient } from './report-webhook/report-webhook.client';
import { StripeClient } from './stripe/stripe.client';

const metrics = { providerCalls: { inc: jest.fn() } };

@Module({ providers: [{ provide: MetricsService, useValue: metrics }], exports: [MetricsService] })
class FakeObservabilityModule {}

/** ConnectorsModule as the root module imports it, with no provider configured. */
function compileConnectors() {
  return Test.createTestingModule({
    imports: [
      ConfigModule.forRoot(loadConfig({ LOG_LEVEL: 'silent' })),
      LoggerModule.forRoot({ pinoHttp: { level: 'silent' } }),
      ConnectorsModule,
    ],
  })
    .overrideModule(ObservabilityModule)
    .useModule(FakeObservabilityModule)
    .compile();
}

describe('ConnectorsModule', () => {
  it('provides the five clients with the shared MetricsService, without touching Redis', async () => {
    const moduleRef = await compileConnectors();

    const stripe = moduleRef.get(StripeClient);
    expect(stripe).toBeInstanceOf(StripeClient);
    expect(moduleRef.get(HubspotClient)).toBeInstanceOf(HubspotClient);
    expect(moduleRef.get(DocusignClient)).toBeInstanceOf(DocusignClient);
    const partnerCenter = moduleRef.get(PartnerCenterClient);
    expect(partnerCenter).toBeInstanceOf(PartnerCenterClient);
    const reports = moduleRef.get(ReportWebhookClient);
    expect(reports).toBeInstanceOf(ReportWebhookClient);
    await expect(stripe.retrieveInvoice('in_1')).rejects.toThrow('stripe is not configured');
    await expect(partnerCenter.getReferral('r-1')).rejects.toThrow(
      'partner center is not configured: set PARTNER_CENTER_TENANT_ID',
    );
    await expect(
      reports.send({ reportId: 'rep_1', kind: 'won', type: 'referral.report.won', data: {} }),
    ).rejects.toThrow('report webhook is not configured: set REFERRAL_REPORT_WEBHOOK_URL');
    await moduleRef.close();
  });

  it('binds every port to its adapter (one instance per client, the two report channels)', async () => {
    const moduleRef = await compileConnectors();
    const crm = moduleRef.get(CrmPort);
    expect(crm).toBeInstanceOf(HubspotCrmAdapter);
    expect(crm.provider).toBe('hubspot');
    expect(crm.configured()).toBe(false);
    expect(moduleRef.get(InvoicingPort)).toBe(moduleRef.get(StripeClient));
    expect(moduleRef.get(ESignaturePort)).toBe(moduleRef.get(DocusignClient));
    expect(moduleRef.get(AlertChannelPort)).toBe(moduleRef.get(AlertWebhookClient));
    const platforms = moduleRef.get<ReferralPlatformPort[]>(REFERRAL_PLATFORM_ADAPTERS);
    expect(platforms.map((p) => p.channel).sort()).toEqual(['partner-center', 'webhook']);
    await moduleRef.close();
  });
});
