import { Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { LoggerModule } from 'nestjs-pino';

import { loadConfig } from '../config/app-config';
import { ConfigModule } from '../config/config.module';
import { HealthModule } from '../health/health.module';
import { MetricsService } from '../health/metrics.service';
import { ConnectorsModule } from './connectors.module';
import { DocusignClient } from './docusign/docusign.client';
import { HubspotClient } from './hubspot/hubspot.client';
import { StripeClient } from './stripe/stripe.client';

const metrics = { providerCalls: { inc: jest.fn() } };

@Module({ providers: [{ provide: MetricsService, useValue: metrics }], exports: [MetricsService] })
class FakeHealthModule {}

describe('ConnectorsModule', () => {
  it('provides the three clients with the shared MetricsService, without touching Redis', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ConfigModule.forRoot(loadConfig({ LOG_LEVEL: 'silent' })),
        LoggerModule.forRoot({ pinoHttp: { level: 'silent' } }),
        ConnectorsModule,
      ],
    })
      .overrideModule(HealthModule)
      .useModule(FakeHealthModule)
      .compile();

    const stripe = moduleRef.get(StripeClient);
    expect(stripe).toBeInstanceOf(StripeClient);
    expect(moduleRef.get(HubspotClient)).toBeInstanceOf(HubspotClient);
    expect(moduleRef.get(DocusignClient)).toBeInstanceOf(DocusignClient);
    await expect(stripe.retrieveInvoice('in_1')).rejects.toThrow('stripe is not configured');
    await moduleRef.close();
  });
});
