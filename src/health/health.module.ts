import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';

import { TokensService } from '../admin/tokens.service';
import { AppConfig } from '../config/app-config';
import { ObservabilityModule } from '../observability/observability.module';
import { PrismaService } from '../prisma/prisma.service';
import { QueueModule } from '../queue/queue.module';
import { SecurityModule } from '../security/security.module';
import { HealthController } from './health.controller';
import { MetricsTokenGuard } from './metrics-token.guard';
import { RedisProbeService } from './redis-probe.service';
import { StateGauges } from './state-gauges';

@Module({
  imports: [TerminusModule, QueueModule, ObservabilityModule, SecurityModule],
  controllers: [HealthController],
  providers: [
    StateGauges,
    MetricsTokenGuard,
    RedisProbeService,
    // Admin tokens unlock readiness details in every role (the worker has no AdminModule).
    {
      provide: TokensService,
      inject: [PrismaService, AppConfig],
      useFactory: (prisma: PrismaService, config: AppConfig) =>
        new TokensService(prisma, config.env.ADMIN_TOKEN),
    },
  ],
})
export class HealthModule {}
