import { Injectable } from '@nestjs/common';
import { Job } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';

import { Clock } from '../common/clock';
import { PermanentError } from '../common/errors';
import { newId } from '../common/ids';
import { AppConfig } from '../config/app-config';
import { MoneyError, toAmount } from '../domain/money';
import { Deal, Prisma } from '../generated/prisma/client';
import { CrmDeal, CrmPort } from '../ports/crm.port';
import {
  OutboundReferral,
  OutboundReferralPort,
  PlatformReferral,
} from '../ports/referral-platform.port';
import { PrismaService } from '../prisma/prisma.service';
import {
  JobFailure,
  JobHandler,
  JobHandlerInterface,
  JobOutcomeKind,
} from '../queue/job-handler.decorator';
import { ReferralCosellCreateData } from '../queue/job-data.types';
import { JobName } from '../queue/job-name.enum';
import { SerializationLockService } from '../queue/serialization-lock.service';
import { addTimeline } from '../timeline/timeline';
import { closeDateOf } from './handlers/crm-deal.handler';
import { LifecycleService } from './lifecycle.service';
import { LifecycleContext } from './lifecycle.types';
import { OutboundHow, attachOutboundReferral } from './outbound-referral';

const CAUSE = 'co-sell job';

/**
 * Creates a deal's one outbound co-sell referral (CONTRACT §5; docs/decisions/0014), requested by
 * the settle step (cosell_requested_at, one ReferralCosellCreate job per request).
 *
 * Partner Center takes no idempotency key, so "never two" rests on three things: one job per deal
 * at a time (a session lock on the deal), a search of Partner Center by externalReferenceId = the
 * CRM deal id before every POST (a run whose answer was lost, or whose worker died before it
 * recorded, finds its referral instead of creating another), and the record of the referral in one
 * transaction with the deal's link. The referral is built from the CRM deal as it is when the job
 * runs, so a dead letter for missing data is replayed once the CRM deal is fixed.
 */
@Injectable()
export class CosellService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly crm: CrmPort,
    private readonly outbound: OutboundReferralPort,
    private readonly lifecycle: LifecycleService,
    private readonly lock: SerializationLockService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(CosellService.name);
  }

  async create(dealId: string, correlationId: string): Promise<JobOutcomeKind> {
    return this.lock.withLock(`cosell:${dealId}`, () => this.createNow(dealId, correlationId));
  }

  private async createNow(dealId: string, correlationId: string): Promise<JobOutcomeKind> {
    const deal = await this.prisma.deal.findUnique({ where: { id: dealId } });
    if (!deal) throw new PermanentError(`deal ${dealId} does not exist`);
    // Linked already (an earlier run, or the referral's webhook), or the request was withdrawn.
    if (deal.referralId || !deal.cosellRequestedAt) return 'SKIPPED';
    if (!deal.crmDealId) {
      throw new PermanentError(`deal ${dealId} has no CRM deal: a co-sell referral needs its id`);
    }
    if (!this.outbound.configured()) {
      throw new PermanentError(
        'Partner Center is not configured (PARTNER_CENTER_TENANT_ID, PARTNER_CENTER_CLIENT_ID, …): no co-sell referral created',
      );
    }
    // An earlier attempt may have created it and lost the answer (or died before recording it).
    const found = await this.outbound.findByExternalReference(deal.crmDealId);
    if (found.length > 0) {
      const oldest = [...found].sort(
        (a, b) => (a.createdAt?.getTime() ?? 0) - (b.createdAt?.getTime() ?? 0),
      )[0];
      if (found.length > 1) {
        this.logger.warn(
          { dealId, referrals: found.map((r) => r.id) },
          'several co-sell referrals carry this CRM deal id: linking the oldest',
        );
      }
      await this.record(dealId, oldest, 'found', correlationId);
      return 'SUCCEEDED';
    }
    const crmDeal = await this.crm.readDeal(deal.crmDealId);
    if (!crmDeal) {
      throw new PermanentError(
        `${this.crm.label} deal ${deal.crmDealId} no longer exists: no co-sell referral created`,
      );
    }
    if (!crmDeal.cosell) {
      await this.withdraw(dealId, correlationId);
      return 'SKIPPED';
    }
    const request = this.requestOf(deal, crmDeal);
    const missing = this.outbound.missing(request);
    if (missing.length > 0) {
      throw new PermanentError(
        `${this.crm.label} deal ${deal.crmDealId} lacks ${missing.join(', ')} ` +
          `(${this.outbound.platform} requires them): fill them in and replay the dead letter`,
      );
    }
    const created = await this.outbound.create(request);
    this.logger.info({ dealId, referralId: created.id }, 'co-sell referral created');
    await this.record(dealId, created, 'created', correlationId);
    return 'SUCCEEDED';
  }

  /** The referral to create, from the CRM deal as it is now (and the hub deal's zone and names). */
  private requestOf(deal: Deal, s: CrmDeal): OutboundReferral {
    const currency = (s.currency ?? deal.currency).toLowerCase();
    let value: number | null = null;
    if (s.amount && s.amount.trim() !== '') {
      try {
        value = toAmount(s.amount, currency);
      } catch (err) {
        if (!(err instanceof MoneyError)) throw err;
        throw new PermanentError(
          `${this.crm.label} amount "${s.amount}" is not valid (${err.message}): fix it and replay the dead letter`,
        );
      }
    }
    const closeDate =
      s.closeDate === undefined || s.closeDate === null
        ? null
        : (closeDateOf(s.closeDate, this.config.timeZoneOf(deal)) ?? s.closeDate);
    const title = s.name ?? deal.name;
    const description = s.description?.trim();
    return {
      externalReference: deal.crmDealId!,
      title,
      customer: { name: s.companyName ?? deal.companyName, address: s.companyAddress ?? null },
      contact: s.contact ?? null,
      value,
      currency,
      closeDate,
      notes: description || `${title} (${this.crm.label} deal ${deal.crmDealId})`,
    };
  }

  /** Records the referral and links the deal, then settles it: its reports start from here. */
  private async record(
    dealId: string,
    referral: PlatformReferral,
    how: OutboundHow,
    correlationId: string,
  ): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const deal = await this.lifecycle.lockDeal(tx, dealId);
      const now = this.clock.now();
      const ctx: LifecycleContext = { cause: CAUSE, correlationId, now };
      const outcome = await attachOutboundReferral(
        tx,
        deal,
        this.outbound.platform,
        referral,
        how,
        ctx,
        now,
      );
      if (typeof outcome === 'object') throw new PermanentError(outcome.conflict);
      // Linked now, or by the referral's webhook just before: either way its reports start from
      // the settle, and its id goes onto the CRM deal (HubSpot closeloop_referral_platform / _id).
      const settled = outcome === 'linked' ? await this.lifecycle.settle(tx, dealId, ctx) : deal;
      await this.lifecycle.enqueueCrmSync(tx, settled, ctx, `cosell-${referral.id}`);
    });
  }

  /** The CRM no longer asks for co-sell: the request is withdrawn (a new one asks again). */
  private async withdraw(dealId: string, correlationId: string): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const deal = await this.lifecycle.lockDeal(tx, dealId);
      if (deal.referralId || !deal.cosellRequestedAt) return;
      await tx.deal.update({
        where: { id: dealId },
        data: { cosell: false, cosellRequestedAt: null, version: { increment: 1 } },
      });
      await addTimeline(tx, {
        dealId,
        kind: 'referral',
        message: `co-sell withdrawn in ${this.crm.label} before the referral was created: none created`,
        cause: CAUSE,
      });
      this.logger.info({ dealId, correlationId }, 'co-sell withdrawn');
    });
  }

  /** The job failed: its error on the timeline when it gave up (a dead letter to replay). */
  async recordFailure(
    tx: Prisma.TransactionClient,
    dealId: string,
    error: string,
    final: boolean,
  ): Promise<void> {
    if (!final) return;
    const deal = await tx.deal.findUnique({ where: { id: dealId }, select: { id: true } });
    if (!deal) return;
    await addTimeline(tx, {
      dealId,
      kind: 'referral',
      message: `co-sell referral not created: ${error} (dead letter)`,
      cause: CAUSE,
    });
  }
}

@Injectable()
@JobHandler(JobName.ReferralCosellCreate)
export class ReferralCosellCreateHandler implements JobHandlerInterface<ReferralCosellCreateData> {
  constructor(private readonly cosell: CosellService) {}

  handle(job: Job<ReferralCosellCreateData>): Promise<JobOutcomeKind> {
    return this.cosell.create(job.data.dealId, job.data.correlationId ?? newId('corr'));
  }

  onFailure(
    job: Job<ReferralCosellCreateData>,
    failure: JobFailure,
    tx: Prisma.TransactionClient,
  ): Promise<void> {
    return this.cosell.recordFailure(tx, job.data.dealId, failure.error, failure.final);
  }
}
