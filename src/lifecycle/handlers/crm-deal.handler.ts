import { isDeepStrictEqual } from 'node:util';

import { Injectable } from '@nestjs/common';

import { parseBillingPlan } from '../../billing/billing-plan';
import { BillingPlanService } from '../../billing/billing-plan.service';
import { PermanentError } from '../../common/errors';
import { newId } from '../../common/ids';
import { AppConfig } from '../../config/app-config';
import { localDate } from '../../domain/calendar';
import { MoneyError, toAmount } from '../../domain/money';
import { NormalizedEvent } from '../../domain/normalized-event';
import { Deal, Prisma } from '../../generated/prisma/client';
import { dbAmount } from '../../prisma/db-amount';
import { CrmDeal, CrmPort } from '../../ports/crm.port';
import { addTimeline } from '../../timeline/timeline';
import { findDeal, lockDeal } from '../deal-rows';
import { EventHandler, EventOutcome, LifecycleContext, Tx } from '../lifecycle.types';
import { SettleService } from '../settle.service';

/**
 * CRM deal events (crm.deal_created, crm.deal_stage_changed, crm.deal_updated, crm.deal_deleted) through the CRM
 * port: the deal as the CRM has it now (read by the event pipeline before the transaction) is
 * copied onto the hub deal, and its stage, mapped by the CRM's adapter, becomes a stage trigger.
 */
@Injectable()
export class CrmDealHandler implements EventHandler {
  readonly kinds = [
    'crm.deal_created',
    'crm.deal_stage_changed',
    // A property other than the stage changed (HubSpot: closeloop_cosell): read again, no trigger.
    'crm.deal_updated',
    'crm.deal_deleted',
  ] as const;

  constructor(
    private readonly crm: CrmPort,
    private readonly plans: BillingPlanService,
    private readonly settler: SettleService,
    private readonly config: AppConfig,
  ) {}

  async apply(
    tx: Tx,
    ev: NormalizedEvent,
    ctx: LifecycleContext,
    remote?: CrmDeal | null,
  ): Promise<EventOutcome> {
    const at = new Date(ev.occurredAt);
    const d = ev.data;
    if (ev.kind === 'crm.deal_deleted') {
      const deal = await findDeal(tx, { crmDealId: ev.subject.crmDealId });
      if (!deal)
        return { ignored: `no hub deal for ${this.crm.label} deal ${ev.subject.crmDealId}` };
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'crm',
        message: `the deal was deleted in ${this.crm.label}; the hub keeps its record and invoices`,
        cause: ctx.cause,
        eventId: ctx.eventId,
      });
      return { dealId: deal.id };
    }
    const crmDealId = ev.subject.crmDealId;
    if (!crmDealId) throw new PermanentError(`${this.crm.label} event without a deal id`);
    if (remote === null) return { ignored: `${this.crm.label} deal ${crmDealId} no longer exists` };
    const deal = await this.lockOrCreateCrmDeal(tx, crmDealId, remote, ctx);
    if (remote) await this.applyCrmDeal(tx, deal, remote, ctx);
    const stageId =
      ev.kind === 'crm.deal_stage_changed'
        ? (d.stage as string | undefined)
        : ev.kind === 'crm.deal_updated'
          ? undefined
          : (remote?.stageId ?? undefined);
    if (stageId) {
      const pipeline = remote?.pipeline ?? deal.crmPipeline;
      const target = this.crm.stageTarget(pipeline, stageId);
      if (target) {
        await this.settler.addTrigger(tx, deal.id, { type: 'crm.stage', target }, at, ctx);
      } else {
        await addTimeline(tx, {
          dealId: deal.id,
          kind: 'refused',
          message: `${this.crm.label} stage "${stageId}" of pipeline "${pipeline ?? 'default'}" is not mapped to a hub stage (${this.crm.stageMappingHint})`,
          cause: ctx.cause,
          eventId: ctx.eventId,
        });
      }
    }
    await this.settler.settle(tx, deal.id, ctx);
    return { dealId: deal.id };
  }

  /** The hub deal of a CRM deal, created (or linked to its referral deal) on first sight. */
  private async lockOrCreateCrmDeal(
    tx: Tx,
    crmDealId: string,
    remote: CrmDeal | undefined,
    ctx: LifecycleContext,
  ): Promise<Deal> {
    const existing = await tx.deal.findUnique({ where: { crmDealId }, select: { id: true } });
    if (existing) return lockDeal(tx, existing.id);
    const platform = remote?.referral?.platform;
    const referralId = remote?.referral?.id;
    if (platform && referralId) {
      const referral = await tx.deal.findUnique({
        where: { referralPlatform_referralId: { referralPlatform: platform, referralId } },
        select: { id: true, crmDealId: true },
      });
      if (referral && !referral.crmDealId) {
        const linked = await tx.deal.updateMany({
          where: { id: referral.id, crmDealId: null },
          data: { crmDealId },
        });
        if (linked.count === 1) {
          await addTimeline(tx, {
            dealId: referral.id,
            kind: 'crm',
            message: `linked to ${this.crm.label} deal ${crmDealId}`,
            cause: ctx.cause,
            eventId: ctx.eventId,
          });
          return lockDeal(tx, referral.id);
        }
      }
    }
    const id = newId('cl_deal');
    const inserted = await tx.$queryRaw<{ id: string }[]>`
      INSERT INTO deal (id, name, stage, source, crm_deal_id, currency, updated_at)
      VALUES (${id}, ${remote?.name ?? `${this.crm.label} deal ${crmDealId}`},
              'REFERRED', ${this.crm.provider}, ${crmDealId}, 'jpy', now())
      ON CONFLICT (crm_deal_id) DO NOTHING RETURNING id`;
    if (inserted.length === 1) {
      await addTimeline(tx, {
        dealId: id,
        kind: 'crm',
        message: `deal created from ${this.crm.label} deal ${crmDealId}`,
        cause: ctx.cause,
        eventId: ctx.eventId,
      });
    }
    const row = await tx.deal.findUniqueOrThrow({ where: { crmDealId }, select: { id: true } });
    return lockDeal(tx, row.id);
  }

  /** The CRM deal's name, contact, company, amount, referral and plan onto the hub deal. */
  private async applyCrmDeal(tx: Tx, deal: Deal, s: CrmDeal, ctx: LifecycleContext): Promise<void> {
    const contactName = [s.contact?.firstName, s.contact?.lastName].filter(Boolean).join(' ');
    const currency = (s.currency ?? deal.currency).toLowerCase();
    const data: Prisma.DealUpdateInput = {
      name: s.name ?? deal.name,
      crmPipeline: s.pipeline ?? deal.crmPipeline,
      crmStage: s.stageId ?? deal.crmStage,
      customerEmail: s.contact?.email ?? deal.customerEmail,
      contactName: contactName || deal.contactName,
      companyName: s.companyName ?? deal.companyName,
      customerName: s.companyName ?? (contactName || deal.customerName),
      currency,
    };
    // Co-sell out (CONTRACT §5): the request and the expected close date, as the CRM has them now.
    if (s.cosell !== undefined && s.cosell !== null) data.cosell = s.cosell;
    if (s.closeDate !== undefined) {
      const closeDate = closeDateOf(s.closeDate, this.config.timeZoneOf(deal));
      if (closeDate !== undefined) data.closeDate = closeDate;
      else {
        await addTimeline(tx, {
          dealId: deal.id,
          kind: 'refused',
          message: `${this.crm.label} close date "${s.closeDate}" refused: not a date`,
          cause: ctx.cause,
          eventId: ctx.eventId,
        });
      }
    }
    const platform = s.referral?.platform;
    const referralId = s.referral?.id;
    if (!deal.referralId && platform && referralId) {
      // A referral belongs to one deal: a second CRM deal naming it is told, not linked.
      const owner = await tx.deal.findUnique({
        where: { referralPlatform_referralId: { referralPlatform: platform, referralId } },
        select: { id: true },
      });
      if (!owner) {
        data.referralPlatform = platform;
        data.referralId = referralId;
      } else if (owner.id !== deal.id) {
        await addTimeline(tx, {
          dealId: deal.id,
          kind: 'refused',
          message: `${this.crm.label} names referral ${platform} ${referralId}, which belongs to deal ${owner.id}: not linked`,
          cause: ctx.cause,
          eventId: ctx.eventId,
        });
      }
    }
    if (s.amount) {
      try {
        data.amount = toAmount(s.amount, currency);
      } catch (err) {
        if (!(err instanceof MoneyError)) throw err;
        await addTimeline(tx, {
          dealId: deal.id,
          kind: 'refused',
          message: `${this.crm.label} amount "${s.amount}" refused: ${err.message}`,
          cause: ctx.cause,
          eventId: ctx.eventId,
        });
      }
    }
    const updated = await tx.deal.update({ where: { id: deal.id }, data });
    const rawPlan = s.billingPlan;
    if (rawPlan && rawPlan.trim() !== '' && !samePlan(rawPlan, updated)) {
      // The CRM's own amount stays the contracted amount, whatever the plan adds up to.
      await this.plans.applyPlan(tx, updated, rawPlan, {
        ...ctx,
        amountGiven: data.amount !== undefined,
      });
    }
  }
}

/**
 * The CRM's close date as the deal's local date (YYYY-MM-DD): a date is kept as it is, a date-time
 * (HubSpot's closedate) is read as the calendar day it falls on in the deal's time zone. null: the
 * CRM has none; undefined: not a date.
 */
export function closeDateOf(value: string | null, timeZone: string): string | null | undefined {
  if (value === null || value.trim() === '') return null;
  const v = value.trim();
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    const ms = Date.parse(`${v}T00:00:00Z`);
    return !Number.isNaN(ms) && new Date(ms).toISOString().startsWith(v) ? v : undefined;
  }
  // HubSpot may also hand out epoch milliseconds.
  const ms = /^\d{10,}$/.test(v) ? Number(v) : Date.parse(v);
  return Number.isNaN(ms) ? undefined : localDate(new Date(ms), timeZone);
}

/** Whether the CRM's plan property says what the deal already has (or was already refused for). */
function samePlan(raw: string, deal: Deal): boolean {
  const parsed = parseBillingPlan(raw, {
    dealAmount: dbAmount(deal.amount),
    currency: deal.currency,
  });
  if (!parsed.ok) return deal.planError === parsed.errors.join('; ');
  // Postgres jsonb does not keep key order: compare values, not serialisations.
  return isDeepStrictEqual(JSON.parse(JSON.stringify(parsed.plan)), deal.billingPlan);
}
