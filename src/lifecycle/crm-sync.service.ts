import { Injectable } from '@nestjs/common';
import { Job } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';

import { formatMoney, toMajorUnits } from '../domain/money';
import { Deal } from '../generated/prisma/client';
import { dbAmount } from '../prisma/db-amount';
import { PrismaService } from '../prisma/prisma.service';
import { SerializationLockService } from '../queue/serialization-lock.service';
import { JobHandler, JobHandlerInterface, JobOutcomeKind } from '../queue/job-handler.decorator';
import { CrmDealSyncData } from '../queue/job-data.types';
import { JobName } from '../queue/job-name.enum';
import { LifecycleService } from './lifecycle.service';
import { CrmTarget, isWonOrLater } from '../domain/deal-stage';
import { CrmPort } from '../ports/crm.port';
import { CONFIRMED_STATES } from '../domain/invoice-state';
import { addTimeline } from '../timeline/timeline';

/**
 * Writes the hub's view of a deal back to the CRM through the CRM port (issue 3 §3): invoiced and
 * paid totals, the sync status, the won stage once the envelope completed, and one note per fact
 * (won, invoice sent, invoice paid). Properties are set to the current totals, so a
 * sync is idempotent; notes are recorded per fact key in crm_note (a crash between HubSpot's
 * answer and our record can repeat one note, never a property).
 */
@Injectable()
export class CrmSyncService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly crm: CrmPort,
    private readonly lifecycle: LifecycleService,
    private readonly lock: SerializationLockService,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(CrmSyncService.name);
  }

  /**
   * One sync at a time per deal (several facts of one deal often commit together, each with its
   * sync job): each reads the deal as it is then, and a note is written once per fact key.
   */
  async sync(dealId: string): Promise<JobOutcomeKind> {
    if (!this.crm.configured()) return 'IGNORED';
    return this.lock.withLock(`crm-sync:${dealId}`, () => this.syncNow(dealId));
  }

  private async syncNow(dealId: string): Promise<JobOutcomeKind> {
    let deal = await this.prisma.deal.findUnique({
      where: { id: dealId },
      include: { invoices: { orderBy: { createdAt: 'asc' } } },
    });
    if (deal && this.lifecycle.createsCrmDeal(deal)) {
      await this.createReferralDeal(deal);
      deal = await this.prisma.deal.findUnique({
        where: { id: dealId },
        include: { invoices: { orderBy: { createdAt: 'asc' } } },
      });
    }
    if (!deal?.crmDealId) return 'IGNORED';
    const posted = deal.invoices.filter((i) => CONFIRMED_STATES.includes(i.state));
    const invoiced = posted.reduce((sum, i) => sum + dbAmount(i.amount), 0);
    const paid = deal.invoices
      .filter((i) => i.state === 'PAID')
      .reduce((sum, i) => sum + dbAmount(i.amountPaid), 0);
    const failing = deal.invoices.some((i) => i.lastError && !CONFIRMED_STATES.includes(i.state));
    const status = deal.planError
      ? 'plan_error'
      : failing
        ? 'billing_error'
        : deal.invoices.some((i) => ['PENDING', 'CREATING', 'CREATED'].includes(i.state))
          ? 'billing'
          : 'in_sync';
    const wonStage = this.crm.stageIdFor(deal.crmPipeline, 'WON');
    // The co-sell referral the hub created (docs/decisions/0014): its id shown on the CRM deal.
    const outbound = deal.referralId
      ? await this.prisma.referral.findFirst({
          where: { dealId: deal.id, direction: 'outbound' },
          select: { platform: true, externalId: true },
        })
      : null;
    await this.crm.writeBack(deal.crmDealId, {
      invoicedAmount: invoiced,
      paidAmount: paid,
      syncStatus: status,
      stageId:
        isWonOrLater(deal.stage) && wonStage && deal.crmStage !== wonStage ? wonStage : undefined,
      ...(outbound ? { referral: { platform: outbound.platform, id: outbound.externalId } } : {}),
    });

    const facts: { key: string; body: string; at: Date }[] = [];
    if (deal.wonAt && isWonOrLater(deal.stage)) {
      facts.push({
        key: `won|${deal.id}`,
        body: `closeloop: deal WON (contract signed)`,
        at: deal.wonAt,
      });
    }
    for (const inv of posted) {
      facts.push({
        key: `invoice|${inv.billingKey}`,
        body: `closeloop: invoice ${inv.invoiceNumber ?? inv.providerInvoiceId} sent — ${inv.description}, ${formatMoney(dbAmount(inv.amount), inv.currency)} excl. tax${inv.hostedInvoiceUrl ? ` (${inv.hostedInvoiceUrl})` : ''}`,
        at: inv.postedAt ?? inv.updatedAt,
      });
      if (inv.state === 'PAID') {
        facts.push({
          key: `paid|${inv.billingKey}`,
          body: `closeloop: invoice ${inv.invoiceNumber ?? inv.providerInvoiceId} paid — ${formatMoney(dbAmount(inv.amountPaid), inv.currency)}`,
          at: inv.paidAt ?? inv.updatedAt,
        });
      }
    }
    for (const fact of facts) {
      const done = await this.prisma.crmNote.findUnique({ where: { key: fact.key } });
      if (done?.crmNoteId) continue;
      const noteId = await this.crm.addNote(deal.crmDealId, fact.body, fact.at);
      await this.prisma.crmNote.upsert({
        where: { key: fact.key },
        create: { key: fact.key, dealId: deal.id, crmNoteId: noteId },
        update: { crmNoteId: noteId },
      });
    }
    return 'SUCCEEDED';
  }

  /**
   * The CRM deal of an accepted referral deal, created once: a retry first looks for a deal
   * already carrying the referral's id (an earlier attempt whose answer was lost).  The CRM's search
   * index (HubSpot's) lags a few seconds behind creation, so a retry within that lag could still make a second
   * deal; the hub links only one (the other shows in the CRM without closeloop updates).
   */
  private async createReferralDeal(deal: Deal): Promise<void> {
    const referralId = deal.referralId!;
    const existing = await this.crm.findDealsByReferral(referralId);
    const referral = await this.prisma.referral.findUnique({ where: { dealId: deal.id } });
    const pipeline = this.crm.defaultPipeline;
    const target = (isWonOrLater(deal.stage) ? 'WON' : deal.stage) as CrmTarget;
    const value = dbAmount(deal.amount ?? referral?.estimatedValue ?? null);
    const crmDealId =
      existing[0] ??
      (await this.crm.createDeal({
        name: deal.name,
        pipeline,
        stageId: this.crm.stageIdFor(pipeline, target),
        referral: { platform: deal.referralPlatform ?? '', id: referralId },
        currency: deal.currency,
        amount: value !== null ? toMajorUnits(value, deal.currency) : undefined,
      }));
    await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.deal.updateMany({
        where: { id: deal.id, crmDealId: null },
        data: { crmDealId, crmPipeline: pipeline },
      });
      if (count === 0) return; // its creation webhook linked it first
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'crm',
        message: `${this.crm.label} deal ${crmDealId} ${existing[0] ? 'found' : 'created'} for referral ${referralId}`,
        cause: `crm sync ${deal.id}`,
      });
    });
  }
}

@Injectable()
@JobHandler(JobName.CrmDealSync)
export class CrmDealSyncHandler implements JobHandlerInterface<CrmDealSyncData> {
  constructor(private readonly crm: CrmSyncService) {}

  handle(job: Job<CrmDealSyncData>): Promise<JobOutcomeKind> {
    return this.crm.sync(job.data.dealId);
  }
}
