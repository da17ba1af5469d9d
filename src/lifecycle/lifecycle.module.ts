import { Module } from '@nestjs/common';

import { AlertsModule } from '../alerts/alerts.module';
import { BillingModule } from '../billing/billing.module';
import { QueueModule } from '../queue/queue.module';
import { LifecycleService } from './lifecycle.service';
import { ReferralService } from './referral.service';

/** The one deal lifecycle and its referrals (both roles: webhook processing and the admin API drive it). */
@Module({
  imports: [BillingModule, QueueModule, AlertsModule],
  providers: [LifecycleService, ReferralService],
  exports: [LifecycleService, ReferralService, BillingModule],
})
export class LifecycleModule {}
