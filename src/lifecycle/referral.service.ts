import { HttpStatus, Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { Clock } from '../common/clock';
import { AlertService } from '../alerts/alert.service';
import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { ReferralErrorCode } from './referral-error-code';
import { PermanentError } from '../common/errors';
import { newId } from '../common/ids';
import { Prisma, Referral, ReferralState } from '../generated/prisma/client';
import { PrismaService } from '../prisma/prisma.service';
import { NormalizedEvent } from '../domain/normalized-event';
import { EventOutcome, LifecycleContext, LifecycleService } from './lifecycle.service';
import { LifecycleTrigger } from '../domain/deal-stage';
import { ReferralClockInput, responseClock } from './referral-clock';
import { addTimeline } from '../timeline/timeline';
import { PlatformReferral } from '../ports/referral-platform.port';
import { attachOutboundReferral } from './outbound-referral';

type Tx = Prisma.TransactionClient;

/** A referral as the platform describes it, whichever platform it came from. */
interface ReferralInfo extends ReferralClockInput {
  title: string;
  customerName?: string;
  customerEmail?: string;
  estimatedValue?: number;
  currency?: string;
  eTag?: string;
  acceptedAt?: Date;
  snapshot: Prisma.InputJsonValue;
}

/** How long before a referral's deadline the hub warns that it is about to expire. */
export const EXPIRING_WARNING_MS = 24 * 3_600_000;

/**
 * Inbound referrals (CONTRACT §3.5): a new referral creates its deal in REFERRED (or links the
 * deal a CRM already made for it) and starts its response clock; the vendor answers through the
 * admin API (accept / decline, reported to the platform by the report service); a referral left
 * unanswered past its deadline expires the deal and raises an alert, once (docs/decisions/0005).
 */
@Injectable()
export class ReferralService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly lifecycle: LifecycleService,
    private readonly alerts: AlertService,
    private readonly clock: Clock,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(ReferralService.name);
  }

  handles(kind: string): boolean {
    return kind === 'referral.created' || kind === 'referral.updated';
  }

  /**
   * Applies a referral event inside the event pipeline's transaction. Partner Center's webhook is
   * thin: `snapshot` is the referral as read from its API just before (outside any transaction).
   */
  async apply(
    tx: Tx,
    ev: NormalizedEvent,
    ctx: LifecycleContext,
    snapshot?: PlatformReferral,
  ): Promise<EventOutcome> {
    const platform = ev.subject.platform;
    const externalId = ev.subject.referralId;
    if (!platform || !externalId) throw new PermanentError('referral event without a referral id');
    const at = new Date(ev.occurredAt);
    const info =
      ev.source === 'partner-center'
        ? fromPlatform(requireSnapshot(snapshot, externalId), at)
        : fromGeneric(ev.data, at);

    const known = await tx.referral.findUnique({
      where: { platform_externalId: { platform, externalId } },
    });
    const referral = known
      ? await this.refresh(tx, known, info, ctx)
      : ((await this.adoptOutbound(tx, platform, snapshot, ctx)) ??
        (await this.create(tx, platform, externalId, info, ctx)));

    // Partner Center's own status can answer the referral too (someone used its UI).
    const trigger = platformTrigger(info);
    if (trigger) {
      await this.lifecycle.addTrigger(tx, referral.dealId, trigger, info.acceptedAt ?? at, ctx);
      const state = TRIGGER_STATE[trigger.type];
      if (state) {
        await tx.referral.updateMany({
          where: { id: referral.id, state: 'OPEN' },
          data: { state, respondBy: null, respondedAt: info.acceptedAt ?? at },
        });
      }
    } else if (info.status === 'Closed') {
      await tx.referral.updateMany({
        where: { id: referral.id, state: { in: ['OPEN', 'ACCEPTED'] } },
        data: { state: 'CLOSED', respondBy: null },
      });
    }
    await this.lifecycle.settle(tx, referral.dealId, ctx);
    return { dealId: referral.dealId };
  }

  /**
   * A referral the hub itself asked for (co-sell out, docs/decisions/0014) whose webhook arrived
   * before the co-sell job recorded it: it names the CRM deal in its external reference, and that
   * deal waits for it — it is linked to that deal instead of becoming a deal of its own.
   */
  private async adoptOutbound(
    tx: Tx,
    platform: string,
    snapshot: PlatformReferral | undefined,
    ctx: LifecycleContext,
  ): Promise<Referral | undefined> {
    const crmDealId = snapshot?.externalReference;
    if (!snapshot || !crmDealId) return undefined;
    const waiting = await tx.deal.findUnique({
      where: { crmDealId },
      select: { id: true, cosellRequestedAt: true, referralId: true },
    });
    if (!waiting?.cosellRequestedAt || waiting.referralId) return undefined;
    const deal = await this.lifecycle.lockDeal(tx, waiting.id);
    const now = ctx.now ?? this.clock.now();
    const outcome = await attachOutboundReferral(
      tx,
      deal,
      platform,
      snapshot,
      'announced',
      ctx,
      now,
    );
    if (outcome !== 'linked') return undefined;
    return tx.referral.findUniqueOrThrow({
      where: { platform_externalId: { platform, externalId: snapshot.id } },
    });
  }

  private async create(
    tx: Tx,
    platform: string,
    externalId: string,
    info: ReferralInfo,
    ctx: LifecycleContext,
  ): Promise<Referral> {
    // The deal a CRM may already have made for this referral (closeloop_referral_* properties).
    const dealId = newId('cl_deal');
    await tx.$executeRaw`
      INSERT INTO deal (id, name, stage, source, referral_platform, referral_id, customer_name,
                        customer_email, currency, updated_at)
      VALUES (${dealId}, ${info.title}, 'REFERRED', 'referral', ${platform}, ${externalId},
              ${info.customerName ?? null}, ${info.customerEmail ?? null},
              ${info.currency ?? 'jpy'}, now())
      ON CONFLICT (referral_platform, referral_id) DO NOTHING`;
    const deal = await tx.deal.findUniqueOrThrow({
      where: {
        referralPlatform_referralId: { referralPlatform: platform, referralId: externalId },
      },
      select: { id: true },
    });
    await this.lifecycle.lockDeal(tx, deal.id);
    const clock = responseClock(info);
    const id = newId('ref');
    await tx.referral.create({
      data: {
        id,
        platform,
        externalId,
        dealId: deal.id,
        ...details(info),
        respondBy: clock?.respondBy ?? null,
        clockRule: clock?.rule ?? null,
        receivedAt: ctx.now ?? this.clock.now(),
        snapshot: info.snapshot,
      },
    });
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'referral',
      message:
        `referral ${externalId} received from ${platform}` +
        (deal.id === dealId ? '' : ' (linked to the deal the CRM made for it)') +
        (clock ? `: answer by ${clock.respondBy.toISOString()} (${clock.rule})` : ''),
      cause: ctx.cause,
      eventId: ctx.eventId,
    });
    return tx.referral.findUniqueOrThrow({ where: { id } });
  }

  private async refresh(
    tx: Tx,
    referral: Referral,
    info: ReferralInfo,
    ctx: LifecycleContext,
  ): Promise<Referral> {
    await this.lifecycle.lockDeal(tx, referral.dealId);
    const current = await tx.referral.findUniqueOrThrow({ where: { id: referral.id } });
    const clock = current.state === 'OPEN' ? responseClock(info) : null;
    const moved =
      clock && clock.respondBy.getTime() !== current.respondBy?.getTime() ? clock : undefined;
    const updated = await tx.referral.update({
      where: { id: current.id },
      data: {
        ...details(info),
        snapshot: info.snapshot,
        ...(moved ? { respondBy: moved.respondBy, clockRule: moved.rule } : {}),
      },
    });
    await addTimeline(tx, {
      dealId: current.dealId,
      kind: 'referral',
      message:
        `referral ${current.externalId} updated on ${current.platform}` +
        (info.status ? ` (${info.status}/${info.substatus ?? 'None'})` : '') +
        (moved ? `: answer now due ${moved.respondBy.toISOString()} (${moved.rule})` : ''),
      cause: ctx.cause,
      eventId: ctx.eventId,
    });
    return updated;
  }

  // ---- the vendor's answer (admin API) ---------------------------------------------------------

  /**
   * Accepts or declines an open referral. The platform hears of it through the report service
   * (Partner Center: Active/Accepted, Closed/Declined). Answering the same way twice changes
   * nothing; a referral that was already answered otherwise, expired or closed is a conflict.
   */
  async respond(
    referralId: string,
    answer: 'accept' | 'decline',
    opts: { actor: string; reason?: string; audit: (tx: Tx) => Promise<void> },
  ): Promise<{ referral: Referral; changed: boolean }> {
    return this.prisma.$transaction(async (tx) => {
      const found = await tx.referral.findUnique({ where: { id: referralId } });
      if (!found) {
        throw new DomainException(
          HttpStatus.NOT_FOUND,
          CommonErrorCode.NotFound,
          `referral ${referralId} not found`,
        );
      }
      const deal = await this.lifecycle.lockDeal(tx, found.dealId);
      const referral = await tx.referral.findUniqueOrThrow({ where: { id: referralId } });
      const target: ReferralState = answer === 'accept' ? 'ACCEPTED' : 'DECLINED';
      if (referral.state === target) return { referral, changed: false };
      if (referral.state !== 'OPEN') {
        throw new DomainException(
          HttpStatus.CONFLICT,
          ReferralErrorCode.ReferralAnswered,
          `referral ${referralId} is ${referral.state}: it can no longer be ${answer === 'accept' ? 'accepted' : 'declined'}`,
        );
      }
      if (answer === 'decline' && deal.stage !== 'REFERRED') {
        throw new DomainException(
          HttpStatus.CONFLICT,
          ReferralErrorCode.ReferralAnswered,
          `the deal is ${deal.stage}: only a referral not yet worked can be declined`,
        );
      }
      const now = this.clock.now();
      const updated = await tx.referral.update({
        where: { id: referralId },
        data: {
          state: target,
          respondedAt: now,
          respondBy: null,
          declineReason: answer === 'decline' ? (opts.reason ?? null) : null,
        },
      });
      const ctx: LifecycleContext = {
        cause: `admin ${opts.actor}`,
        correlationId: newId('corr'),
        now,
      };
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'referral',
        message: `referral ${referral.externalId} ${answer === 'accept' ? 'accepted' : 'declined'}${opts.reason ? `: ${opts.reason}` : ''}`,
        cause: ctx.cause,
      });
      await this.lifecycle.addTrigger(
        tx,
        deal.id,
        { type: answer === 'accept' ? 'referral.accepted' : 'referral.declined' },
        now,
        ctx,
      );
      await opts.audit(tx);
      await this.lifecycle.settle(tx, deal.id, ctx);
      return { referral: updated, changed: true };
    });
  }

  // ---- the response clock (worker timer) -------------------------------------------------------

  /**
   * One pass of the response clocks: warns once about referrals due within EXPIRING_WARNING_MS and
   * expires those past due. Each referral is re-checked under its deal's row lock, so any number
   * of workers expire it once, and a restart simply looks again.
   */
  async runClocks(now: Date): Promise<{ expired: number; warned: number }> {
    const due = await this.prisma.referral.findMany({
      where: { state: 'OPEN', respondBy: { lte: new Date(now.getTime() + EXPIRING_WARNING_MS) } },
      select: { id: true, respondBy: true },
      orderBy: { respondBy: 'asc' },
      take: 500,
    });
    let expired = 0;
    let warned = 0;
    for (const r of due) {
      try {
        if (r.respondBy && r.respondBy <= now) {
          if (await this.expire(r.id, now)) expired++;
        } else if (await this.warn(r.id, now)) {
          warned++;
        }
      } catch (err) {
        // One referral's failure (a lock timeout) must not hold back the others: next pass retries.
        this.logger.warn(
          { referralId: r.id, err: (err as Error).message },
          'referral clock failed',
        );
      }
    }
    return { expired, warned };
  }

  private async expire(id: string, now: Date): Promise<boolean> {
    return this.prisma.$transaction(async (tx) => {
      const found = await tx.referral.findUniqueOrThrow({ where: { id } });
      const deal = await this.lifecycle.lockDeal(tx, found.dealId);
      const referral = await tx.referral.findUniqueOrThrow({ where: { id } });
      if (referral.state !== 'OPEN' || !referral.respondBy || referral.respondBy > now)
        return false;
      const ctx: LifecycleContext = {
        cause: 'timer: referral response clock',
        correlationId: `timer-${id}`,
        now,
      };
      if (deal.stage !== 'REFERRED') {
        // The vendor engaged through the deal itself (CRM stage, signature): the clock stops.
        await tx.referral.update({
          where: { id },
          data: { state: 'ACCEPTED', respondBy: null, respondedAt: now },
        });
        await addTimeline(tx, {
          dealId: deal.id,
          kind: 'referral',
          message: `response clock stopped: the deal is already ${deal.stage}`,
          cause: ctx.cause,
        });
        return false;
      }
      await tx.referral.update({
        where: { id },
        data: { state: 'EXPIRED', expiredAt: referral.respondBy },
      });
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'timer',
        message: `referral ${referral.externalId} expired: no answer by ${referral.respondBy.toISOString()} (${referral.clockRule ?? 'deadline'})`,
        cause: ctx.cause,
      });
      await this.lifecycle.addTrigger(
        tx,
        deal.id,
        { type: 'referral.expired' },
        referral.respondBy,
        ctx,
      );
      await this.lifecycle.settle(tx, deal.id, ctx);
      await this.alerts.raise(tx, {
        cause: `referral.expired|${referral.platform}|${referral.externalId}`,
        kind: 'referral.expired',
        message: `referral ${referral.externalId} from ${referral.platform} ("${referral.title}") expired unanswered at ${referral.respondBy.toISOString()}`,
        dealId: deal.id,
        details: { referralId: referral.id, respondBy: referral.respondBy.toISOString() },
      });
      return true;
    });
  }

  private async warn(id: string, now: Date): Promise<boolean> {
    return this.prisma.$transaction(async (tx) => {
      const referral = await tx.referral.findUniqueOrThrow({
        where: { id },
        include: { deal: { select: { stage: true } } },
      });
      if (referral.state !== 'OPEN' || !referral.respondBy || referral.deal.stage !== 'REFERRED') {
        return false;
      }
      const hours = Math.max(
        0,
        Math.round((referral.respondBy.getTime() - now.getTime()) / 3_600_000),
      );
      return this.alerts.raise(tx, {
        // A deadline moved by the platform is a new cause.
        cause: `referral.expiring|${referral.platform}|${referral.externalId}|${referral.respondBy.toISOString()}`,
        kind: 'referral.expiring',
        message: `referral ${referral.externalId} from ${referral.platform} ("${referral.title}") expires in about ${hours} h (${referral.respondBy.toISOString()}): accept or decline it`,
        dealId: referral.dealId,
        details: { referralId: referral.id, respondBy: referral.respondBy.toISOString() },
      });
    });
  }
}

const TRIGGER_STATE: Partial<Record<LifecycleTrigger['type'], ReferralState>> = {
  'referral.accepted': 'ACCEPTED',
  'referral.declined': 'DECLINED',
  'referral.expired': 'EXPIRED',
};

/** What Partner Center's status says happened to the referral, as a lifecycle trigger. */
function platformTrigger(info: ReferralInfo): LifecycleTrigger | undefined {
  if (info.substatus === 'Accepted') return { type: 'referral.accepted' };
  if (info.status === 'Closed' && info.substatus === 'Declined')
    return { type: 'referral.declined' };
  if (info.status === 'Closed' && info.substatus === 'Expired') return { type: 'referral.expired' };
  return undefined;
}

function details(info: ReferralInfo) {
  return {
    title: info.title,
    customerName: info.customerName ?? null,
    customerEmail: info.customerEmail ?? null,
    estimatedValue: info.estimatedValue ?? null,
    currency: info.currency ?? null,
    platformStatus: info.status ?? null,
    platformSubstatus: info.substatus ?? null,
    eTag: info.eTag ?? null,
  };
}

function requireSnapshot(snapshot: PlatformReferral | undefined, id: string): PlatformReferral {
  if (!snapshot) throw new PermanentError(`Partner Center referral ${id} was not read`);
  return snapshot;
}

function fromPlatform(r: PlatformReferral, at: Date): ReferralInfo {
  const { id: _id, raw, createdAt, ...info } = r;
  return { ...info, createdAt: createdAt ?? at, snapshot: raw as Prisma.InputJsonValue };
}

function fromGeneric(data: Record<string, unknown>, at: Date): ReferralInfo {
  const customer = (data.customer ?? {}) as { name?: string; email?: string };
  return {
    title: String(data.title),
    customerName: customer.name,
    customerEmail: customer.email,
    estimatedValue: typeof data.estimatedValue === 'number' ? data.estimatedValue : undefined,
    currency: typeof data.currency === 'string' ? data.currency.toLowerCase() : undefined,
    deadline: typeof data.respondBy === 'string' ? data.respondBy : undefined,
    deadlineField: 'respondBy',
    createdAt: at,
    snapshot: data as Prisma.InputJsonValue,
  };
}
