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
import {
  PlatformProfile,
  ReferralAnswer,
  canonicalPlatform,
  platformProfile,
} from '../domain/platforms';
import { ReportService } from '../reporting/report.service';
import {
  ReferralClockInput,
  ResponseClock,
  expiryReason,
  outcomeOf,
  responseClock,
} from './referral-clock';
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
  /** The platform's reason for its current status (Partner Center statusReason). */
  statusReason?: string;
  /** When the platform itself created the referral, when it says (Partner Center createdDateTime). */
  platformCreatedAt?: Date;
  snapshot: Prisma.InputJsonValue;
}

/** States in which the referral still waits for the vendor's answer: its clock may run. */
const WAITING: ReferralState[] = ['OPEN', 'IN_EVALUATION'];

/** The state each answer leads to, and the states it may be given from. */
const ANSWERS: Record<ReferralAnswer, { to: ReferralState; from: ReferralState[]; past: string }> =
  {
    accept: { to: 'ACCEPTED', from: ['OPEN', 'IN_EVALUATION'], past: 'accepted' },
    decline: { to: 'DECLINED', from: ['OPEN', 'IN_EVALUATION'], past: 'declined' },
    // Partner Center: "interested" moves a new referral to evaluation, "not interested" archives it
    // as Skipped; from evaluation the vendor accepts or declines (docs/decisions/0013).
    evaluate: { to: 'IN_EVALUATION', from: ['OPEN'], past: 'in evaluation' },
    skip: { to: 'SKIPPED', from: ['OPEN'], past: 'skipped' },
  };

/** The reason Partner Center gets when the vendor gave none (statusReason is sent on every close). */
export const DEFAULT_DECLINE_REASON = 'Declined by the vendor';
export const SKIP_REASON = 'Not interested (skipped)';

/** How long before a referral's deadline the hub warns that it is about to expire. */
export const EXPIRING_WARNING_MS = 24 * 3_600_000;

/**
 * Inbound referrals (CONTRACT §3.5): a new referral creates its deal in REFERRED (or links the
 * deal a CRM already made for it) and starts its response clock, as its platform's profile says
 * (none for PRONI アイミツ unless the referral gives a deadline); the vendor answers through the
 * admin API or the dashboard (accept / decline, and Partner Center's evaluate / skip, reported to
 * the platform by the report service); a referral left unanswered past its deadline fails (a new
 * referral's 72 hours) or expires, once, with an alert (docs/decisions/0005, 0013). A closed
 * referral closes the referral, not the deal: later engagement still moves the deal on.
 */
@Injectable()
export class ReferralService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly lifecycle: LifecycleService,
    private readonly reports: ReportService,
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
    const platform = ev.subject.platform ? canonicalPlatform(ev.subject.platform) : undefined;
    const externalId = ev.subject.referralId;
    if (!platform || !externalId) throw new PermanentError('referral event without a referral id');
    const profile = platformProfile(platform);
    const at = new Date(ev.occurredAt);
    const info =
      ev.source === 'partner-center'
        ? fromPlatform(requireSnapshot(snapshot, externalId), at)
        : fromGeneric(ev.data, at);

    const known = await tx.referral.findUnique({
      where: { platform_externalId: { platform, externalId } },
    });
    const referral = known
      ? await this.refresh(tx, known, info, profile, ctx)
      : ((await this.adoptOutbound(tx, platform, snapshot, ctx)) ??
        (await this.create(tx, platform, externalId, info, profile, ctx)));

    // Partner Center's own status can answer the referral too (someone used its UI, or it
    // archived the referral itself: its Closed/Expired is EXPIRED here).
    const trigger = platformTrigger(info);
    if (trigger) {
      await this.lifecycle.addTrigger(tx, referral.dealId, trigger, info.acceptedAt ?? at, ctx);
      const state = TRIGGER_STATE[trigger.type];
      if (state) {
        await tx.referral.updateMany({
          where: { id: referral.id, state: { in: WAITING } },
          data: {
            state,
            respondBy: null,
            ...(state === 'EXPIRED' ? { expiredAt: at } : { respondedAt: info.acceptedAt ?? at }),
          },
        });
      }
    } else if (info.status === 'Closed') {
      await tx.referral.updateMany({
        where: { id: referral.id, state: { in: [...WAITING, 'ACCEPTED'] } },
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
    profile: PlatformProfile,
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
    const clock = responseClock(profile.responseClock, info);
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
        platformCreatedAt: info.platformCreatedAt ?? null,
        snapshot: info.snapshot,
      },
    });
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'referral',
      message:
        `referral ${externalId} received from ${platform}` +
        (deal.id === dealId ? '' : ' (linked to the deal the CRM made for it)') +
        (clock
          ? `: answer by ${clock.respondBy.toISOString()} (${clock.rule})`
          : `: no response clock (${profile.label.en} sets none unless the referral names a deadline)`),
      cause: ctx.cause,
      eventId: ctx.eventId,
    });
    return tx.referral.findUniqueOrThrow({ where: { id } });
  }

  private async refresh(
    tx: Tx,
    referral: Referral,
    info: ReferralInfo,
    profile: PlatformProfile,
    ctx: LifecycleContext,
  ): Promise<Referral> {
    await this.lifecycle.lockDeal(tx, referral.dealId);
    const current = await tx.referral.findUniqueOrThrow({ where: { id: referral.id } });
    const clock = WAITING.includes(current.state)
      ? responseClock(profile.responseClock, {
          ...info,
          evaluatingSince: current.state === 'IN_EVALUATION' ? current.respondedAt : null,
        })
      : null;
    const moved =
      clock && clock.respondBy.getTime() !== current.respondBy?.getTime() ? clock : undefined;
    const updated = await tx.referral.update({
      where: { id: current.id },
      data: {
        ...details(info),
        snapshot: info.snapshot,
        ...(info.platformCreatedAt && !current.platformCreatedAt
          ? { platformCreatedAt: info.platformCreatedAt }
          : {}),
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

  // ---- the vendor's answer (admin API, dashboard) ----------------------------------------------

  /**
   * The vendor's answer to an open referral, as its platform takes them (the profile's `answers`):
   * - accept: the deal moves from REFERRED to APPOINTMENT (Partner Center: Active/Accepted with the
   *   deal value and close date);
   * - decline: the deal becomes DECLINED (Closed/Declined with the reason);
   * - evaluate (Partner Center's "interested"): the referral is in evaluation, its 7-day window
   *   starts (New/Received); the deal stays REFERRED;
   * - skip (Partner Center's "not interested"): the referral is SKIPPED, the deal DECLINED
   *   (Closed/Declined with "Not interested (skipped)").
   * Giving the same answer twice changes nothing; an answer the referral can no longer take
   * (answered otherwise, expired, failed, closed) or its platform does not offer is a conflict.
   */
  async respond(
    referralId: string,
    answer: ReferralAnswer,
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
      const profile = platformProfile(referral.platform);
      const rule = ANSWERS[answer];
      if (!profile.answers.includes(answer)) {
        throw new DomainException(
          HttpStatus.CONFLICT,
          ReferralErrorCode.ReferralAnswerNotOffered,
          `${profile.label.en} does not take "${answer}": its referrals are answered by ${profile.answers.join(', ') || 'nothing'}`,
        );
      }
      if (referral.state === rule.to) return { referral, changed: false };
      if (!rule.from.includes(referral.state)) {
        throw new DomainException(
          HttpStatus.CONFLICT,
          ReferralErrorCode.ReferralAnswered,
          `referral ${referralId} is ${referral.state}: it can no longer be ${rule.past}`,
        );
      }
      if (answer !== 'accept' && deal.stage !== 'REFERRED') {
        throw new DomainException(
          HttpStatus.CONFLICT,
          ReferralErrorCode.ReferralAnswered,
          `the deal is ${deal.stage}: only a referral not yet worked can be ${rule.past}`,
        );
      }
      const now = this.clock.now();
      const ctx: LifecycleContext = {
        cause: `admin ${opts.actor}`,
        correlationId: newId('corr'),
        now,
      };
      const data: Prisma.ReferralUpdateInput = { state: rule.to, respondedAt: now };
      let clock: ResponseClock | null = null;
      switch (answer) {
        case 'accept':
          data.respondBy = null;
          break;
        case 'decline':
          data.respondBy = null;
          data.declineReason = opts.reason ?? null;
          data.statusReason = opts.reason ?? DEFAULT_DECLINE_REASON;
          break;
        case 'skip':
          data.respondBy = null;
          data.declineReason = opts.reason ?? null;
          data.statusReason = opts.reason ? `${SKIP_REASON}: ${opts.reason}` : SKIP_REASON;
          break;
        case 'evaluate':
          // The evaluation's own window: 7 days from now (a later deadline the platform sets wins
          // when it next tells the hub about the referral).
          clock = responseClock(profile.responseClock, {
            createdAt: referral.platformCreatedAt ?? referral.receivedAt,
            evaluatingSince: now,
          });
          data.respondBy = clock?.respondBy ?? null;
          data.clockRule = clock?.rule ?? null;
          break;
      }
      const updated = await tx.referral.update({ where: { id: referralId }, data });
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'referral',
        message:
          `referral ${referral.externalId} ${rule.past}${opts.reason ? `: ${opts.reason}` : ''}` +
          (clock
            ? `; accept or decline it by ${clock.respondBy.toISOString()} (${clock.rule})`
            : ''),
        cause: ctx.cause,
      });
      if (answer === 'evaluate') {
        await this.reports.inEvaluation(tx, deal, now, ctx);
      } else {
        await this.lifecycle.addTrigger(
          tx,
          deal.id,
          { type: answer === 'accept' ? 'referral.accepted' : 'referral.declined' },
          now,
          ctx,
        );
      }
      await opts.audit(tx);
      await this.lifecycle.settle(tx, deal.id, ctx);
      return { referral: updated, changed: true };
    });
  }

  // ---- the response clock (worker timer) -------------------------------------------------------

  /**
   * One pass of the response clocks: warns once about referrals due within EXPIRING_WARNING_MS and
   * fails or expires those past due. Each referral is re-checked under its deal's row lock, so any
   * number of workers close it once, and a restart simply looks again.
   */
  async runClocks(now: Date): Promise<{ expired: number; warned: number }> {
    const due = await this.prisma.referral.findMany({
      where: {
        state: { in: WAITING },
        respondBy: { lte: new Date(now.getTime() + EXPIRING_WARNING_MS) },
      },
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
      if (!WAITING.includes(referral.state) || !referral.respondBy || referral.respondBy > now)
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
      // A new referral's 72 hours ran out: Failed (Partner Center's word); any other window or
      // deadline: Expired (docs/decisions/0013).
      const outcome = outcomeOf(referral.clockRule);
      const reason = expiryReason(referral.clockRule, referral.respondBy);
      await tx.referral.update({
        where: { id },
        // No clock runs any more (CONTRACT §6: respondBy null); expiredAt keeps the deadline.
        data: {
          state: outcome,
          respondBy: null,
          expiredAt: referral.respondBy,
          statusReason: reason,
        },
      });
      const what = outcome === 'FAILED' ? 'failed' : 'expired';
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'timer',
        message: `referral ${referral.externalId} ${what}: no answer by ${referral.respondBy.toISOString()} (${referral.clockRule ?? 'deadline'})`,
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
        cause: `referral.${what}|${referral.platform}|${referral.externalId}`,
        kind: outcome === 'FAILED' ? 'referral.failed' : 'referral.expired',
        message:
          outcome === 'FAILED'
            ? `referral ${referral.externalId} from ${referral.platform} ("${referral.title}") failed: nobody answered it within 72 hours (${referral.respondBy.toISOString()})`
            : `referral ${referral.externalId} from ${referral.platform} ("${referral.title}") expired unanswered at ${referral.respondBy.toISOString()} (${referral.clockRule ?? 'deadline'})`,
        dealId: deal.id,
        details: {
          referralId: referral.id,
          respondBy: referral.respondBy.toISOString(),
          rule: referral.clockRule,
          state: outcome,
        },
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
      if (
        !WAITING.includes(referral.state) ||
        !referral.respondBy ||
        referral.deal.stage !== 'REFERRED'
      ) {
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
    // The platform's own reason, when it gives one; the hub's (a decline's, an expiry's) stays.
    ...(info.statusReason ? { statusReason: info.statusReason } : {}),
  };
}

function requireSnapshot(snapshot: PlatformReferral | undefined, id: string): PlatformReferral {
  if (!snapshot) throw new PermanentError(`Partner Center referral ${id} was not read`);
  return snapshot;
}

function fromPlatform(r: PlatformReferral, at: Date): ReferralInfo {
  const { id: _id, raw, createdAt, ...info } = r;
  return {
    ...info,
    createdAt: createdAt ?? at,
    platformCreatedAt: createdAt,
    snapshot: raw as Prisma.InputJsonValue,
  };
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
