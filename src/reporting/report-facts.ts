/**
 * Which reports a deal's history owes its platform (pure; no I/O).
 *
 * Stage reports are read from the folded history (the transition table applied to the deal's
 * stage triggers in occurrence order), not from the stage changes the hub happened to observe, so
 * duplicate, late and reordered events produce the same set of facts as in-order delivery. Each
 * fact has a key that is unique for ever per deal: the n-th loss is `lost|n` whatever event caused
 * it, so a second event saying the same thing maps onto the same key (docs/decisions/0005).
 */
import { DealStage, FoldStep, TriggerType } from '../domain/deal-stage';
import { LostStage, ReportKind } from '../domain/report';

export type StageReportKind = Extract<
  ReportKind,
  'appointment' | 'won' | 'lost' | 'lost_withdrawn' | 'declined' | 'expired' | 'delivered'
>;

export interface StageFact {
  kind: StageReportKind;
  /** Unique per deal and fact, e.g. `won`, `lost|2`. */
  key: string;
  /** When it happened at its source. */
  at: Date;
  /** lost / lost_withdrawn / declined / expired: what caused it, e.g. `crm.stage`, `envelope.declined`. */
  cause?: TriggerType;
  /** lost: whether the deal was engaged (an appointment took place) before this loss. */
  lostStage?: LostStage;
}

/** Stages at which the vendor is engaged with the customer (アポイント報告 is due). */
const ENGAGED: readonly DealStage[] = ['APPOINTMENT', 'NEGOTIATING', 'CONTRACT_SENT', 'WON'];

/**
 * The stage facts of a history. `steps` are foldStage's steps (in occurrence order); `delivered`
 * is when the deal became DELIVERED (derived from its items or an explicit delivery), if it did.
 *
 * A declined or expired referral closes the referral, not the deal (CONTRACT §3.5): the deal may
 * move on, but its platform is owed nothing after the close's own report.
 */
export function stageFacts(steps: readonly FoldStep[], delivered?: Date): StageFact[] {
  const facts: StageFact[] = [];
  let engaged = false;
  let won = false;
  let losses = 0;
  let withdrawals = 0;
  for (const step of steps) {
    if (step.decision.kind !== 'move') continue;
    if (step.decision.referralClosed) break;
    const to = step.decision.to;
    const at = step.trigger.at;
    const cause = step.trigger.trigger.type;
    if (step.from === 'LOST' && to !== 'LOST') {
      withdrawals++;
      facts.push({ kind: 'lost_withdrawn', key: `lost_withdrawn|${withdrawals}`, at, cause });
    }
    if (ENGAGED.includes(to) && !engaged) {
      engaged = true;
      facts.push({ kind: 'appointment', key: 'appointment', at });
    }
    if (to === 'WON' && !won) {
      won = true;
      facts.push({ kind: 'won', key: 'won', at });
    }
    if (to === 'LOST') {
      losses++;
      facts.push({
        kind: 'lost',
        key: `lost|${losses}`,
        at,
        cause,
        lostStage: engaged ? 'after_appointment' : 'before_appointment',
      });
    }
    if (to === 'DECLINED') facts.push({ kind: 'declined', key: 'declined', at, cause });
    if (to === 'EXPIRED') facts.push({ kind: 'expired', key: 'expired', at, cause });
  }
  if (delivered && won) facts.push({ kind: 'delivered', key: 'delivered', at: delivered });
  return facts;
}
