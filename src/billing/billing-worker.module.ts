import { Module } from '@nestjs/common';

import { ObservabilityModule } from '../observability/observability.module';
import { QueueModule } from '../queue/queue.module';
import { BillingInvoiceIssueHandler } from './billing-invoice-issue.handler';
import { BillingModule } from './billing.module';
import { InvoiceIssuer } from './invoice-issuer.service';

/** Worker side of billing: the Stripe invoice job. */
@Module({
  imports: [BillingModule, QueueModule, ObservabilityModule],
  providers: [InvoiceIssuer, BillingInvoiceIssueHandler],
})
export class BillingWorkerModule {}
