import { Module } from '@nestjs/common';

import { AlertsModule } from '../alerts/alerts.module';
import { ConnectorsModule } from '../connectors/connectors.module';
import { QueueModule } from '../queue/queue.module';
import { PartnerCenterReportAdapter, WebhookReportAdapter } from './report-adapters';
import { ReportDeliverHandler } from './report-deliver.handler';
import { ReportTimerService } from './report-timer.service';
import { ReportingModule } from './reporting.module';

/** Worker side of reporting: delivery through the platform adapters, the manual queue's deadlines. */
@Module({
  imports: [ReportingModule, QueueModule, ConnectorsModule, AlertsModule],
  providers: [
    PartnerCenterReportAdapter,
    WebhookReportAdapter,
    ReportDeliverHandler,
    ReportTimerService,
  ],
})
export class ReportingWorkerModule {}
