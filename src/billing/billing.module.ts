import { Module } from '@nestjs/common';

import { QueueModule } from '../queue/queue.module';
import { ReportingModule } from '../reporting/reporting.module';
import { BillingPlanService } from './billing-plan.service';
import { BillingService } from './billing.service';

/** Billing plans and the invoice rows a deal owes (both roles: the admin API uses them too). */
@Module({
  imports: [QueueModule, ReportingModule],
  providers: [BillingService, BillingPlanService],
  exports: [BillingService, BillingPlanService, ReportingModule],
})
export class BillingModule {}
