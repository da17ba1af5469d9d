import { Module } from '@nestjs/common';

import { ConnectorsModule } from '../connectors/connectors.module';
import { ObservabilityModule } from '../observability/observability.module';
import { QueueModule } from '../queue/queue.module';
import { BillingInvoiceIssueHandler } from './billing-invoice-issue.handler';
import { BillingModule } from './billing.module';
import { InvoiceIssuer } from './invoice-issuer.service';

/** Worker side of billing: the Stripe invoice job. */
@Module({
  imports: [BillingModule, QueueModule, ConnectorsModule, ObservabilityModule],
  providers: [InvoiceIssuer, BillingInvoiceIssueHandler],
})
export class BillingWorkerModule {}
