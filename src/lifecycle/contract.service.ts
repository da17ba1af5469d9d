import { Injectable } from '@nestjs/common';
import { providerFor } from '../config/providers';
import { Job } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';

import { Clock } from '../common/clock';
import { percentOf, formatMoney, taxOf } from '../domain/money';
import { localDate } from '../domain/calendar';
import { contractedAmount } from '../domain/contracted-amount';
import { PermanentError } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { Contract, Prisma } from '../generated/prisma/client';
import { dbAmount } from '../prisma/db-amount';
import { ESignaturePort, EnvelopeView } from '../ports/e-signature.port';
import { PrismaService } from '../prisma/prisma.service';
import {
  JobFailure,
  JobHandler,
  JobHandlerInterface,
  JobOutcomeKind,
} from '../queue/job-handler.decorator';
import { ContractEnvelopeCreateData } from '../queue/job-data.types';
import { JobName } from '../queue/job-name.enum';
import { SerializationLockService } from '../queue/serialization-lock.service';
import { addTimeline } from '../timeline/timeline';

/** The e-signature tool's name in messages (the provider registry). */
const E_SIGNATURE = providerFor('e-signature').label;

/**
 * Creates the deal's one DocuSign envelope (CONTRACT §4: contractsent → envelope from the
 * template, merge fields from the deal). DocuSign has no idempotency keys, so "never two" rests on
 * the contract row (unique per deal) claimed under a lock, and on finding the envelope of an
 * attempt whose outcome is unknown by its custom field closeloop_deal_id before creating again.
 */
@Injectable()
export class ContractService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly esign: ESignaturePort,
    private readonly lock: SerializationLockService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(ContractService.name);
  }

  async createEnvelope(dealId: string): Promise<JobOutcomeKind> {
    return this.lock.withLock(`envelope:${dealId}`, async () => {
      const claim = await this.prisma.$transaction(async (tx) => {
        const rows = await tx.$queryRaw<{ id: string }[]>`
          SELECT id FROM contract WHERE deal_id = ${dealId} FOR UPDATE`;
        if (rows.length === 0) throw new PermanentError(`deal ${dealId} has no contract to send`);
        const contract = await tx.contract.findUniqueOrThrow({ where: { id: rows[0].id } });
        if (contract.envelopeId || !['PENDING', 'CREATING'].includes(contract.status)) {
          return undefined;
        }
        await tx.contract.update({
          where: { id: contract.id },
          data: { attempts: { increment: 1 }, status: 'CREATING' },
        });
        return { contract, earlierAttempt: contract.attempts > 0 };
      });
      if (!claim) return 'SKIPPED';
      if (!this.config.docusignConfigured) {
        throw new PermanentError(
          `${E_SIGNATURE} is not configured (DOCUSIGN_INTEGRATION_KEY, DOCUSIGN_TEMPLATE_ID, …): no envelope sent`,
        );
      }
      const deal = await this.prisma.deal.findUniqueOrThrow({
        where: { id: dealId },
        include: { items: { where: { removed: false }, orderBy: { position: 'asc' } } },
      });
      if (!deal.customerEmail) {
        throw new PermanentError(
          `deal ${dealId} has no customer contact email for the signer: set the deal's primary contact and replay`,
        );
      }
      let envelope: EnvelopeView | null = null;
      if (claim.earlierAttempt) {
        const since = new Date(claim.contract.createdAt.getTime() - 24 * 3600_000);
        envelope = await this.esign.findEnvelopeByDealId(dealId, claim.contract.id, since);
        if (envelope)
          this.logger.info({ dealId, envelope: envelope.envelopeId }, 'adopted envelope');
      }
      if (!envelope) {
        const tz = this.config.timeZoneOf(deal);
        const dealAmount = dbAmount(deal.amount);
        // The contracted amount (one rule): a monthly item counts every month it bills.
        const amount = contractedAmount(
          dealAmount,
          deal.items.map((i) => ({ ...i, amount: dbAmount(i.amount) })),
        );
        const rate = deal.items[0]?.taxRatePercent ?? 0;
        const tabs: Record<string, string> = {
          deal_id: deal.id,
          deal_name: deal.name,
          customer_name: deal.companyName ?? deal.customerName ?? '',
          contact_name: deal.contactName ?? '',
          amount_ex_tax: formatMoney(amount, deal.currency),
          tax_amount: formatMoney(taxOf(amount, rate), deal.currency),
          total_amount: formatMoney(amount + taxOf(amount, rate), deal.currency),
          contract_date: localDate(this.clock.now(), tz),
        };
        deal.items.forEach((item, i) => {
          tabs[`item_${i + 1}_label`] = item.label;
          tabs[`item_${i + 1}_amount`] = formatMoney(
            item.percent && dealAmount
              ? percentOf(dealAmount, item.percent)
              : dbAmount(item.amount),
            deal.currency,
          );
          if (item.expectedInvoiceDate) tabs[`item_${i + 1}_date`] = item.expectedInvoiceDate;
        });
        envelope = await this.esign.createEnvelope({
          dealId,
          contractId: claim.contract.id,
          emailSubject: `Please sign: ${deal.name}`,
          signer: { email: deal.customerEmail, name: deal.contactName || deal.customerEmail },
          textTabs: tabs,
        });
      }
      await this.recordSent(claim.contract, envelope);
      return 'SUCCEEDED';
    });
  }

  private async recordSent(contract: Contract, envelope: EnvelopeView): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      await tx.contract.updateMany({
        where: { id: contract.id, envelopeId: null },
        data: { envelopeId: envelope.envelopeId, lastError: null },
      });
      await tx.contract.updateMany({
        where: { id: contract.id, status: { in: ['PENDING', 'CREATING'] } },
        data: { status: 'SENT', sentAt: this.clock.now() },
      });
      await addTimeline(tx, {
        dealId: contract.dealId,
        kind: 'contract',
        message: `${E_SIGNATURE} envelope ${envelope.envelopeId} sent for signature`,
        cause: 'contract job',
        details: { envelopeId: envelope.envelopeId },
      });
    });
  }

  async recordFailure(
    tx: Prisma.TransactionClient,
    dealId: string,
    error: string,
    final: boolean,
  ): Promise<void> {
    const contract = await tx.contract.findUnique({ where: { dealId } });
    if (!contract) return;
    await tx.contract.update({ where: { id: contract.id }, data: { lastError: error } });
    if (final) {
      await addTimeline(tx, {
        dealId,
        kind: 'contract',
        message: `envelope not created: ${error} (dead letter; replay it after fixing the cause)`,
        cause: 'contract job',
      });
    }
  }
}

@Injectable()
@JobHandler(JobName.ContractEnvelopeCreate)
export class ContractEnvelopeCreateHandler implements JobHandlerInterface<ContractEnvelopeCreateData> {
  constructor(private readonly contracts: ContractService) {}

  handle(job: Job<ContractEnvelopeCreateData>): Promise<JobOutcomeKind> {
    return this.contracts.createEnvelope(job.data.dealId);
  }

  onFailure(
    job: Job<ContractEnvelopeCreateData>,
    failure: JobFailure,
    tx: Prisma.TransactionClient,
  ): Promise<void> {
    return this.contracts.recordFailure(tx, job.data.dealId, failure.error, failure.final);
  }
}
