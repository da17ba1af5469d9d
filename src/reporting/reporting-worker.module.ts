import { Module } from '@nestjs/common';

import { ConnectorsModule } from '../connectors/connectors.module';
import { QueueModule } from '../queue/queue.module';
import { PartnerCenterReportAdapter, WebhookReportAdapter } from './report-adapters';
import { ReportDeliverHandler } from './report-deliver.handler';
import { ReportingModule } from './reporting.module';

/** Worker side of reporting: delivery through the platform adapters. */
@Module({
  imports: [ReportingModule, QueueModule, ConnectorsModule],
  providers: [PartnerCenterReportAdapter, WebhookReportAdapter, ReportDeliverHandler],
})
export class ReportingWorkerModule {}
