import { Module } from '@nestjs/common';

import { AlertsModule } from '../alerts/alerts.module';
import { QueueModule } from '../queue/queue.module';
import { ReportDeliverHandler } from './report-deliver.handler';
import { ReportRefresher } from './report-refresher.service';
import { ReportTimerService } from './report-timer.service';
import { ReportingModule } from './reporting.module';

/** Worker side of reporting: delivery through the referral platform port, the manual queue's deadlines. */
@Module({
  imports: [ReportingModule, QueueModule, AlertsModule],
  providers: [ReportDeliverHandler, ReportRefresher, ReportTimerService],
})
export class ReportingWorkerModule {}
