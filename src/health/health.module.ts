import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';

import { QueueModule } from '../queue/queue.module';
import { HealthController } from './health.controller';
import { MetricsTokenGuard } from './metrics-token.guard';
import { MetricsService } from './metrics.service';
import { RedisProbeService } from './redis-probe.service';

@Module({
  imports: [TerminusModule, QueueModule],
  controllers: [HealthController],
  providers: [MetricsService, MetricsTokenGuard, RedisProbeService],
  exports: [MetricsService],
})
export class HealthModule {}
