import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { LoggerModule } from 'nestjs-pino';

import { ErrorFilter } from '../observability/error.filter';
import { AppConfig } from '../config/app-config';
import { ConfigModule } from '../config/config.module';
import { ConnectorsModule } from '../connectors/connectors.module';
import { HealthModule } from '../health/health.module';
import { loggerOptions } from '../observability/logger-options';
import { ObservabilityModule } from '../observability/observability.module';
import { PrismaModule } from '../prisma/prisma.module';
import { ApiModule } from './api.module';
import { WorkerModule } from './worker.module';

/** The root module for a role: ROLE=api | worker | all (CONTRACT §1). Health and metrics always. */
@Module({})
export class AppModule {
  static forRole(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggerModule.forRoot(loggerOptions(config)),
        PrismaModule,
        ObservabilityModule,
        ConnectorsModule,
        HealthModule,
        ...(config.runsApi ? [ApiModule] : []),
        ...(config.runsWorker ? [WorkerModule] : []),
      ],
      providers: [{ provide: APP_FILTER, useClass: ErrorFilter }],
    };
  }
}
