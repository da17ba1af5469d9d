import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';

import { ObservabilityModule } from '../observability/observability.module';
import { QueueModule } from '../queue/queue.module';
import { HealthController } from './health.controller';
import { MetricsTokenGuard } from './metrics-token.guard';
import { RedisProbeService } from './redis-probe.service';
import { StateGauges } from './state-gauges';

@Module({
  imports: [TerminusModule, QueueModule, ObservabilityModule],
  controllers: [HealthController],
  providers: [StateGauges, MetricsTokenGuard, RedisProbeService],
})
export class HealthModule {}
