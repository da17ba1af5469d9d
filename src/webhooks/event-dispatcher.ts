import { WebhookSource } from '../config/app-config';
import { NormalizedEvent } from '../domain/normalized-event';
import { EventOutcome, LifecycleContext, LifecycleService } from '../lifecycle/lifecycle.service';
import { ReferralService } from '../lifecycle/referral.service';
import { CrmDeal, CrmPort } from '../ports/crm.port';
import { PlatformReferral, ReferralSourcePort } from '../ports/referral-platform.port';
import { ownLane } from './event-lane';
import { EventRow, Prepared, Ready, Tx } from './event-pipeline.types';
import { WebhookProviders } from './webhook-providers';

/**
 * One event's way through the pipeline outside the lane machinery: normalized and routed to the
 * code that applies it (pure), its remote read made before any lock, and then applied in its lane
 * transaction.
 */
export class EventDispatcher {
  constructor(
    private readonly providers: WebhookProviders,
    private readonly lifecycle: LifecycleService,
    private readonly referrals: ReferralService,
    private readonly crm: CrmPort,
    private readonly referralSource: ReferralSourcePort,
  ) {}

  /** Normalizes and routes an event (pure). */
  prepare(row: EventRow): Prepared {
    const lane = row.subject_key ?? ownLane(row.id);
    let normalized: NormalizedEvent | null;
    try {
      normalized = this.providers
        .get(row.provider as WebhookSource)
        .normalize(row.type, row.payload);
    } catch (err) {
      return { row, lane, normalized: null, invalid: err as Error };
    }
    if (!normalized) return { row, lane, normalized };
    if (this.referrals.handles(normalized.kind)) {
      const remote =
        normalized.source === this.referralSource.platform && normalized.subject.referralId
          ? ('referral' as const)
          : undefined;
      return { row, lane, normalized, applier: 'referral', remote };
    }
    if (this.lifecycle.handles(normalized.kind)) {
      const remote =
        (normalized.kind === 'crm.deal_created' ||
          normalized.kind === 'crm.deal_stage_changed' ||
          normalized.kind === 'crm.deal_updated') &&
        this.crm.configured() &&
        normalized.subject.crmDealId
          ? ('crm' as const)
          : undefined;
      return { row, lane, normalized, applier: 'lifecycle', remote };
    }
    return { row, lane, normalized, applier: 'record' };
  }

  /** The remote read an event needs, made before any lock or transaction. */
  remoteRead(p: Prepared): Promise<CrmDeal | PlatformReferral | null> | undefined {
    const subject = p.normalized?.subject;
    if (p.remote === 'crm' && subject?.crmDealId) return this.crm.readDeal(subject.crmDealId);
    if (p.remote === 'referral' && subject?.referralId)
      return this.referralSource.readReferral(subject.referralId);
    return undefined;
  }

  /** Remote reads of a lane's events, in order; a failed read fails only its event. */
  async readRemote(prepared: Prepared[]): Promise<Ready[]> {
    const out: Ready[] = [];
    for (const p of prepared) {
      try {
        out.push({ p, snapshot: await this.remoteRead(p) });
      } catch (err) {
        out.push({ p, failed: err });
      }
    }
    return out;
  }

  /** Applies a prepared event in its lane's transaction, through the code it was routed to. */
  apply(
    tx: Tx,
    p: Prepared,
    snapshot: Ready['snapshot'],
    ctx: LifecycleContext,
  ): Promise<EventOutcome> {
    const ev = p.normalized!;
    switch (p.applier) {
      case 'referral':
        return this.referrals.apply(tx, ev, ctx, snapshot as PlatformReferral | undefined);
      case 'lifecycle':
        return this.lifecycle.apply(tx, ev, ctx, snapshot as CrmDeal | null | undefined);
      default:
        return Promise.resolve({ dealId: ev.subject.dealId });
    }
  }
}
