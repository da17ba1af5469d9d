import { Module } from '@nestjs/common';

import { BillingModule } from '../billing/billing.module';
import { QueueModule } from '../queue/queue.module';
import { LifecycleService } from './lifecycle.service';

/** The one deal lifecycle (both roles: webhook processing and the admin API drive it). */
@Module({
  imports: [BillingModule, QueueModule],
  providers: [LifecycleService],
  exports: [LifecycleService, BillingModule],
})
export class LifecycleModule {}
