import { Module } from '@nestjs/common';

import { QueueModule } from '../queue/queue.module';
import { BillingPlanService } from './billing-plan.service';
import { BillingService } from './billing.service';

/**
 * Billing plans and the invoice rows a deal owes (both roles: the admin API uses them too).
 * Billing records facts only; what follows from them (reports, CRM sync) is the lifecycle's.
 */
@Module({
  imports: [QueueModule],
  providers: [BillingService, BillingPlanService],
  exports: [BillingService, BillingPlanService],
})
export class BillingModule {}
