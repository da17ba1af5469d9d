import { Global, Module } from '@nestjs/common';

import { AlertsModule } from '../alerts/alerts.module';
import { BillingModule } from '../billing/billing.module';
import { InvoiceFactsPort } from '../billing/invoice-facts.port';
import { QueueModule } from '../queue/queue.module';
import { ReportingModule } from '../reporting/reporting.module';
import { CrmDealHandler } from './handlers/crm-deal.handler';
import { DealFactHandler } from './handlers/deal-fact.handler';
import { EnvelopeHandler } from './handlers/envelope.handler';
import { InvoiceEventHandler } from './handlers/invoice.handler';
import { LifecycleService } from './lifecycle.service';
import { ReferralService } from './referral.service';
import { SettleService } from './settle.service';

/**
 * The one deal lifecycle and its referrals (both roles: webhook processing and the admin API drive
 * it). Global for one binding only: billing's InvoiceFactsPort is the lifecycle's settle step, so
 * the invoice issuer tells the lifecycle about a confirmed amount without importing it.
 */
@Global()
@Module({
  imports: [BillingModule, ReportingModule, QueueModule, AlertsModule],
  providers: [
    LifecycleService,
    ReferralService,
    SettleService,
    CrmDealHandler,
    EnvelopeHandler,
    DealFactHandler,
    InvoiceEventHandler,
    { provide: InvoiceFactsPort, useExisting: SettleService },
  ],
  exports: [LifecycleService, ReferralService, InvoiceFactsPort, BillingModule, ReportingModule],
})
export class LifecycleModule {}
