import { Global, Module } from '@nestjs/common';

import { MetricsService } from './metrics.service';

/**
 * Metrics every layer may count into: global (imported once by the root module, like the config),
 * one MetricsService and registry per process. Below the queue and the connectors; imports nothing
 * of the hub.
 */
@Global()
@Module({
  providers: [MetricsService],
  exports: [MetricsService],
})
export class ObservabilityModule {}
