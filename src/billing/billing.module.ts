import { Module } from '@nestjs/common';

import { QueueModule } from '../queue/queue.module';
import { BillingPlanService } from './billing-plan.service';
import { BillingService } from './billing.service';

/** Billing plans and the invoice rows a deal owes (both roles: the admin API uses them too). */
@Module({
  imports: [QueueModule],
  providers: [BillingService, BillingPlanService],
  exports: [BillingService, BillingPlanService],
})
export class BillingModule {}
