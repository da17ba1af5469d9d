import { Injectable } from '@nestjs/common';
import { Job } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';

import { formatMoney, toMajorUnits } from '../domain/money';
import { AppConfig } from '../config/app-config';
import { HubspotClient } from '../connectors/hubspot/hubspot.client';
import { Deal } from '../generated/prisma/client';
import { dbAmount } from '../prisma/db-amount';
import { PrismaService } from '../prisma/prisma.service';
import { SerializationLockService } from '../queue/serialization-lock.service';
import { JobHandler, JobHandlerInterface, JobOutcomeKind } from '../queue/job-handler.decorator';
import { CrmDealSyncData } from '../queue/job-data.types';
import { JobName } from '../queue/job-name.enum';
import { LifecycleService } from './lifecycle.service';
import { CrmTarget, isWonOrLater } from '../domain/deal-stage';
import { CONFIRMED_STATES } from '../domain/invoice-state';
import { crmStageFor } from '../connectors/hubspot/hubspot-stages';
import { addTimeline } from '../timeline/timeline';

/**
 * Writes the hub's view of a deal back to HubSpot (issue 3 §3): closeloop_invoiced_amount,
 * closeloop_paid_amount, closeloop_sync_status, the won stage once the envelope completed, and one
 * note per fact (won, invoice sent, invoice paid). Properties are set to the current totals, so a
 * sync is idempotent; notes are recorded per fact key in crm_note (a crash between HubSpot's
 * answer and our record can repeat one note, never a property).
 */
@Injectable()
export class CrmSyncService {
  private readonly overrides: Record<string, Record<string, CrmTarget>>;

  constructor(
    private readonly prisma: PrismaService,
    private readonly hubspot: HubspotClient,
    private readonly lifecycle: LifecycleService,
    private readonly lock: SerializationLockService,
    private readonly config: AppConfig,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(CrmSyncService.name);
    this.overrides = config.env.HUBSPOT_PIPELINE_STAGES ?? {};
  }

  /**
   * One sync at a time per deal (several facts of one deal often commit together, each with its
   * sync job): each reads the deal as it is then, and a note is written once per fact key.
   */
  async sync(dealId: string): Promise<JobOutcomeKind> {
    if (!this.config.hubspotConfigured) return 'IGNORED';
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
    const properties: Record<string, string> = {
      closeloop_invoiced_amount: String(invoiced),
      closeloop_paid_amount: String(paid),
      closeloop_sync_status: status,
    };
    const wonStage = crmStageFor(deal.crmPipeline, 'WON', this.overrides);
    if (isWonOrLater(deal.stage) && wonStage && deal.crmStage !== wonStage) {
      properties.dealstage = wonStage;
    }
    await this.hubspot.updateDeal(deal.crmDealId, properties);

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
        body: `closeloop: invoice ${inv.stripeNumber ?? inv.stripeInvoiceId} sent — ${inv.description}, ${formatMoney(dbAmount(inv.amount), inv.currency)} excl. tax${inv.hostedInvoiceUrl ? ` (${inv.hostedInvoiceUrl})` : ''}`,
        at: inv.postedAt ?? inv.updatedAt,
      });
      if (inv.state === 'PAID') {
        facts.push({
          key: `paid|${inv.billingKey}`,
          body: `closeloop: invoice ${inv.stripeNumber ?? inv.stripeInvoiceId} paid — ${formatMoney(dbAmount(inv.amountPaid), inv.currency)}`,
          at: inv.paidAt ?? inv.updatedAt,
        });
      }
    }
    for (const fact of facts) {
      const done = await this.prisma.crmNote.findUnique({ where: { key: fact.key } });
      if (done?.hubspotNoteId) continue;
      const noteId = await this.hubspot.createNote(deal.crmDealId, fact.body, fact.at);
      await this.prisma.crmNote.upsert({
        where: { key: fact.key },
        create: { key: fact.key, dealId: deal.id, hubspotNoteId: noteId },
        update: { hubspotNoteId: noteId },
      });
    }
    return 'SUCCEEDED';
  }

  /**
   * The HubSpot deal of an accepted referral deal, created once: a retry first looks for a deal
   * already carrying the referral's id (an earlier attempt whose answer was lost). HubSpot's search
   * index lags a few seconds behind creation, so a retry within that lag could still make a second
   * deal; the hub links only one (the other shows in HubSpot without closeloop updates).
   */
  private async createReferralDeal(deal: Deal): Promise<void> {
    const referralId = deal.referralId!;
    const existing = await this.hubspot.findDealIds('closeloop_referral_id', referralId);
    const referral = await this.prisma.referral.findUnique({ where: { dealId: deal.id } });
    const pipeline = 'default';
    const target = (isWonOrLater(deal.stage) ? 'WON' : deal.stage) as CrmTarget;
    const properties: Record<string, string> = {
      dealname: deal.name,
      pipeline,
      closeloop_referral_platform: deal.referralPlatform ?? '',
      closeloop_referral_id: referralId,
      deal_currency_code: deal.currency.toUpperCase(),
    };
    const stage = crmStageFor(pipeline, target, this.overrides);
    if (stage) properties.dealstage = stage;
    const value = dbAmount(deal.amount ?? referral?.estimatedValue ?? null);
    if (value !== null) properties.amount = toMajorUnits(value, deal.currency);
    const crmDealId = existing[0] ?? (await this.hubspot.createDeal(properties));
    await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.deal.updateMany({
        where: { id: deal.id, crmDealId: null },
        data: { crmDealId, crmPipeline: pipeline },
      });
      if (count === 0) return; // its creation webhook linked it first
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'crm',
        message: `HubSpot deal ${crmDealId} ${existing[0] ? 'found' : 'created'} for referral ${referralId}`,
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
