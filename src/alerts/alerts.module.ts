import { Module } from '@nestjs/common';

import { QueueModule } from '../queue/queue.module';
import { AlertService } from './alert.service';

/** Alerts raised once per cause (both roles raise them). */
@Module({
  imports: [QueueModule],
  providers: [AlertService],
  exports: [AlertService],
})
export class AlertsModule {}
