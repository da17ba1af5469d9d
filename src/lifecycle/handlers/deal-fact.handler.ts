import { Injectable } from '@nestjs/common';

import { BillingPlanService } from '../../billing/billing-plan.service';
import { PermanentError } from '../../common/errors';
import { addDaysInZone } from '../../domain/calendar';
import { isWonOrLater } from '../../domain/deal-stage';
import { NormalizedEvent } from '../../domain/normalized-event';
import { AppConfig } from '../../config/app-config';
import { Deal } from '../../generated/prisma/client';
import { PrismaService } from '../../prisma/prisma.service';
import { ReportService } from '../../reporting/report.service';
import { TimelineInput, addTimeline } from '../../timeline/timeline';
import { findDeal, lockDeal } from '../deal-rows';
import { EventHandler, EventOutcome, LifecycleContext, Tx } from '../lifecycle.types';
import { SettleService } from '../settle.service';

/**
 * Facts about a deal's work (milestone accepted / rejected / progress, an additional order, the
 * delivery) and the silent-approval timer: items change, and the settle step bills what became due.
 */
@Injectable()
export class DealFactHandler implements EventHandler {
  readonly kinds = [
    'milestone.accepted',
    'milestone.rejected',
    'milestone.progress',
    'order.additional',
    'delivery.completed',
  ] as const;

  constructor(
    private readonly prisma: PrismaService,
    private readonly plans: BillingPlanService,
    private readonly reports: ReportService,
    private readonly settler: SettleService,
    private readonly config: AppConfig,
  ) {}

  async apply(tx: Tx, ev: NormalizedEvent, ctx: LifecycleContext): Promise<EventOutcome> {
    const at = new Date(ev.occurredAt);
    const deal = await findDeal(tx, ev.subject);
    if (!deal) {
      throw new PermanentError(
        `no deal ${ev.subject.dealId ?? `with CRM id ${ev.subject.crmDealId}`}: create it (or fix the id) and replay`,
      );
    }
    // A fact that changed nothing (a duplicate acceptance, say) needs no new fold.
    if (await this.applyDealFact(tx, deal, ev, at, ctx))
      await this.settler.settle(tx, deal.id, ctx);
    return { dealId: deal.id };
  }

  private async applyDealFact(
    tx: Tx,
    deal: Deal,
    ev: NormalizedEvent,
    at: Date,
    ctx: LifecycleContext,
  ): Promise<boolean> {
    const d = ev.data;
    const note = (kind: TimelineInput['kind'], message: string) =>
      addTimeline(tx, { dealId: deal.id, kind, message, cause: ctx.cause, eventId: ctx.eventId });
    /** A fact that changes nothing: said on the timeline, and the deal needs no new fold. */
    const unchanged = async (kind: TimelineInput['kind'], message: string) => {
      await note(kind, message);
      return false;
    };
    const changed = async (kind: TimelineInput['kind'], message: string) => {
      await note(kind, message);
      return true;
    };
    if (ev.kind === 'delivery.completed') {
      if (deal.deliveredOn)
        return unchanged('event', `delivery already recorded on ${deal.deliveredOn}`);
      await tx.deal.update({
        where: { id: deal.id },
        data: { deliveredOn: String(d.deliveredOn) },
      });
      await this.openSilentWindows(tx, deal, at, ctx);
      return changed('item', `delivery completed on ${String(d.deliveredOn)}`);
    }
    if (ev.kind === 'order.additional') {
      const result = await this.plans.addItems(
        tx,
        deal,
        String(d.description),
        d.items as unknown[],
        ctx,
      );
      if (!result.ok) {
        throw new PermanentError(`additional order refused: ${result.errors.join('; ')}`);
      }
      await this.reports.additionalOrder(
        tx,
        deal,
        String(d.description),
        result.keys ?? [],
        at,
        ctx,
      );
      return true;
    }
    const itemKey = String(d.itemKey);
    const item = await this.plans.itemForEvent(tx, deal.id, itemKey);
    const label = item.removed ? `${itemKey} (not in the plan yet)` : `${item.label} (${itemKey})`;
    switch (ev.kind) {
      case 'milestone.accepted': {
        if (item.acceptedAt)
          return unchanged('event', `${label} was already accepted; duplicate ignored`);
        const acceptedAt = d.acceptedAt ? new Date(String(d.acceptedAt)) : at;
        await tx.billingItem.update({
          where: { id: item.id },
          data: {
            acceptedAt,
            acceptedBy: (d.acceptedBy as string | undefined) ?? 'milestone webhook',
            acceptanceDueAt: null,
          },
        });
        return changed(
          'item',
          `${label} accepted${d.acceptedBy ? ` by ${String(d.acceptedBy)}` : ''}${isWonOrLater(deal.stage) ? '' : ` — billed once the deal is WON (now ${deal.stage})`}`,
        );
      }
      case 'milestone.rejected': {
        if (item.acceptedAt) {
          return unchanged('refused', `${label} rejection ignored: it was already accepted`);
        }
        await tx.billingItem.update({
          where: { id: item.id },
          data: {
            rejectedAt: d.rejectedAt ? new Date(String(d.rejectedAt)) : at,
            rejectionReason: (d.reason as string | undefined) ?? null,
            acceptanceDueAt: null,
          },
        });
        return changed('item', `${label} rejected${d.reason ? `: ${String(d.reason)}` : ''}`);
      }
      case 'milestone.progress': {
        const pct = Math.round(Number(d.progressPercent));
        if (pct <= item.progressPercent) {
          return unchanged(
            'event',
            `${label} progress ${pct}% is not beyond ${item.progressPercent}%`,
          );
        }
        await tx.billingItem.update({ where: { id: item.id }, data: { progressPercent: pct } });
        await note('item', `${label} progress ${item.progressPercent}% → ${pct}%`);
        if (pct >= 100) await this.openSilentWindows(tx, deal, at, ctx, item.id);
        return true;
      }
    }
    return true;
  }

  /**
   * Starts the acceptance window of silent-approval items once the work is submitted (progress
   * 100 % on the item, or delivery of the deal): without a rejection within acceptanceDays
   * (calendar days in the deal's time zone) the item is accepted by the timer.
   */
  private async openSilentWindows(
    tx: Tx,
    deal: Deal,
    at: Date,
    ctx: LifecycleContext,
    itemId?: string,
  ): Promise<void> {
    const items = await tx.billingItem.findMany({
      where: {
        dealId: deal.id,
        silentApproval: true,
        acceptedAt: null,
        acceptanceDueAt: null,
        ...(itemId ? { id: itemId } : {}),
      },
    });
    for (const item of items) {
      if (!item.acceptanceDays) continue;
      if (item.rejectedAt && item.rejectedAt > at) continue;
      const due = addDaysInZone(at, item.acceptanceDays, this.config.timeZoneOf(deal));
      await tx.billingItem.update({
        where: { id: item.id },
        data: { submittedAt: at, acceptanceDueAt: due },
      });
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'item',
        message: `${item.label} (${item.key}) submitted for acceptance: silent approval on ${due.toISOString()} unless rejected`,
        cause: ctx.cause,
        eventId: ctx.eventId,
      });
    }
  }

  /** Timer: accepts a silent-approval item whose window passed (once: acceptedAt is set once). */
  async silentApprove(dealId: string, itemId: string, now: Date): Promise<boolean> {
    return this.prisma.$transaction(async (tx) => {
      const deal = await lockDeal(tx, dealId);
      const item = await tx.billingItem.findUnique({ where: { id: itemId } });
      if (
        !item ||
        item.acceptedAt ||
        !item.acceptanceDueAt ||
        item.acceptanceDueAt > now ||
        item.removed
      ) {
        return false;
      }
      await tx.billingItem.update({
        where: { id: item.id },
        data: { acceptedAt: item.acceptanceDueAt, acceptedBy: 'silent approval' },
      });
      const ctx: LifecycleContext = {
        cause: 'timer: silent approval',
        correlationId: `timer-${item.id}`,
        now,
      };
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'timer',
        message: `${item.label} (${item.key}) accepted by silent approval: no rejection within ${item.acceptanceDays} day(s)`,
        cause: ctx.cause,
      });
      await this.settler.settle(tx, deal.id, ctx);
      return true;
    });
  }
}
