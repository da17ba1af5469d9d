import { Module } from '@nestjs/common';

import { QueueModule } from '../queue/queue.module';
import { ContractEnvelopeCreateHandler, ContractService } from './contract.service';
import { CosellService, ReferralCosellCreateHandler } from './cosell.service';
import { CrmDealSyncHandler, CrmSyncService } from './crm-sync.service';
import { LifecycleTimerService } from './lifecycle-timer.service';
import { LifecycleModule } from './lifecycle.module';

/** Worker side of the lifecycle: envelope creation, CRM write-back, co-sell referrals and the timers. */
@Module({
  imports: [LifecycleModule, QueueModule],
  providers: [
    ContractService,
    ContractEnvelopeCreateHandler,
    CrmSyncService,
    CrmDealSyncHandler,
    CosellService,
    ReferralCosellCreateHandler,
    LifecycleTimerService,
  ],
})
export class LifecycleWorkerModule {}
