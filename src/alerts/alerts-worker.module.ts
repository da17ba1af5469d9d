import { Module } from '@nestjs/common';

import { AlertDeliverHandler } from './alert-deliver.handler';
import { AlertWatchService } from './alert-watch.service';
import { AlertsModule } from './alerts.module';

/** Worker side of alerts: the webhook delivery job and the dead-letter / failing-provider checks. */
@Module({
  imports: [AlertsModule],
  providers: [AlertDeliverHandler, AlertWatchService],
})
export class AlertsWorkerModule {}
