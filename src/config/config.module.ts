import { DynamicModule, Global, Module } from '@nestjs/common';

import { Clock, ShiftedClock, SystemClock } from '../common/clock';
import { AppConfig } from './app-config';

/**
 * Provides the one AppConfig built by main.ts (or a test) and the hub's Clock (real time, or
 * CLOCK_START's shifted one) to every module.
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [
        { provide: AppConfig, useValue: config },
        {
          provide: Clock,
          useFactory: () =>
            config.env.CLOCK_START ? new ShiftedClock(config.env.CLOCK_START) : new SystemClock(),
        },
      ],
      exports: [AppConfig, Clock],
    };
  }
}
