import { Injectable } from '@nestjs/common';
import { Job } from 'bullmq';

import { Prisma } from '../generated/prisma/client';
import {
  JobFailure,
  JobHandler,
  JobHandlerInterface,
  JobOutcomeKind,
} from '../queue/job-handler.decorator';
import { BillingInvoiceIssueData } from '../queue/job-data.types';
import { JobName } from '../queue/job-name.enum';
import { InvoiceIssuer } from './invoice-issuer.service';

@Injectable()
@JobHandler(JobName.BillingInvoiceIssue)
export class BillingInvoiceIssueHandler implements JobHandlerInterface<BillingInvoiceIssueData> {
  constructor(private readonly issuer: InvoiceIssuer) {}

  handle(job: Job<BillingInvoiceIssueData>): Promise<JobOutcomeKind> {
    return this.issuer.issue(job.data.billingKey, job.data.correlationId);
  }

  async onFailure(
    job: Job<BillingInvoiceIssueData>,
    failure: JobFailure,
    tx: Prisma.TransactionClient,
  ): Promise<void> {
    await this.issuer.recordFailure(tx, job.data.billingKey, failure.error, failure.final);
  }
}
