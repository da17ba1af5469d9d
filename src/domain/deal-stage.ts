/**
 * The deal lifecycle (CONTRACT §4) as one pure transition table. No I/O and no provider ids (a
 * CRM's stage ids are mapped in its adapter, e.g. src/connectors/hubspot/hubspot-stages.ts): the
 * lifecycle service folds this over a deal's stage triggers in occurrence order
 * (docs/decisions/0004).
 */
export const DEAL_STAGES = [
  'REFERRED',
  'APPOINTMENT',
  'NEGOTIATING',
  'CONTRACT_SENT',
  'WON',
  'DELIVERED',
  'CLOSED',
  'LOST',
  'DECLINED',
  'EXPIRED',
] as const;
export type DealStage = (typeof DEAL_STAGES)[number];

/** Stages the CRM can set (the pipeline mapping's targets). */
export const CRM_TARGETS = ['APPOINTMENT', 'NEGOTIATING', 'CONTRACT_SENT', 'WON', 'LOST'] as const;
export type CrmTarget = (typeof CRM_TARGETS)[number];

/** Open stages before the contract is signed, in order: billing has not started. */
export const PRE_WON_STAGES: readonly DealStage[] = [
  'REFERRED',
  'APPOINTMENT',
  'NEGOTIATING',
  'CONTRACT_SENT',
];
/** The contract is signed: the deal bills. */
export const WON_STAGES: readonly DealStage[] = ['WON', 'DELIVERED', 'CLOSED'];
/** Stages that end a deal without a sale. */
export const ENDED_STAGES: readonly DealStage[] = ['LOST', 'DECLINED', 'EXPIRED'];

export type LifecycleTrigger =
  | { type: 'crm.stage'; target: CrmTarget }
  | { type: 'envelope.sent' }
  | { type: 'envelope.completed' }
  | { type: 'envelope.declined' }
  | { type: 'envelope.voided' }
  | { type: 'referral.accepted' }
  | { type: 'referral.declined' }
  | { type: 'referral.expired' }
  /**
   * A person confirmed a loss proposed from the manual queue (PRONI まだ未定 → 失注). `invoiced`:
   * the deal had an invoice by then (settle reads it from the deal's invoices; a deal with invoices
   * is not lost).
   */
  | { type: 'loss.confirmed'; invoiced?: boolean }
  /** Every milestone item accepted, or an explicit delivery.completed (derived, see deriveStage). */
  | { type: 'delivery.completed' }
  /** Delivered and every invoice paid or void (derived, see deriveStage). */
  | { type: 'invoices.settled' };

export type TriggerType = LifecycleTrigger['type'];

export const TRIGGER_TYPES: readonly TriggerType[] = [
  'crm.stage',
  'envelope.sent',
  'envelope.completed',
  'envelope.declined',
  'envelope.voided',
  'referral.accepted',
  'referral.declined',
  'referral.expired',
  'loss.confirmed',
  'delivery.completed',
  'invoices.settled',
];

export type Decision =
  | { kind: 'move'; to: DealStage; lossWithdrawn?: true }
  | { kind: 'stay' }
  | { kind: 'refuse'; reason: string };

const move = (from: DealStage, to: DealStage): Decision =>
  from === 'LOST' ? { kind: 'move', to, lossWithdrawn: true } : { kind: 'move', to };
const stay: Decision = { kind: 'stay' };
const refuse = (reason: string): Decision => ({ kind: 'refuse', reason });

function closedReferral(stage: DealStage): Decision | undefined {
  if (stage === 'DECLINED') return refuse('the referral was declined');
  if (stage === 'EXPIRED') return refuse('the referral expired without an answer');
  return undefined;
}

/**
 * What a trigger does to a deal in a stage. `stay` means the deal already is where the trigger
 * would take it (a duplicate or late event); `refuse` carries the reason written to the timeline.
 */
export function transition(stage: DealStage, trigger: LifecycleTrigger): Decision {
  const closed = closedReferral(stage);
  switch (trigger.type) {
    case 'crm.stage': {
      const target = trigger.target;
      if (target === 'WON') {
        if (WON_STAGES.includes(stage)) return stay;
        return closed ?? move(stage, 'WON');
      }
      if (target === 'LOST') {
        if (stage === 'LOST') return stay;
        if (WON_STAGES.includes(stage))
          return refuse(`the deal is ${stage}: a won deal is not lost by a CRM stage change`);
        return closed ?? move(stage, 'LOST');
      }
      // An open sales stage: the CRM owns these before the contract is signed, both ways.
      if (stage === target) return stay;
      if (WON_STAGES.includes(stage))
        return refuse(`the deal is ${stage}: the CRM cannot move it back to ${target}`);
      return closed ?? move(stage, target);
    }
    case 'envelope.sent':
      if (stage === 'CONTRACT_SENT' || WON_STAGES.includes(stage)) return stay;
      if (stage === 'LOST') return refuse('the deal is LOST: a sent envelope does not reopen it');
      return closed ?? move(stage, 'CONTRACT_SENT');
    case 'envelope.completed':
      if (WON_STAGES.includes(stage)) return stay;
      // A signature is the strongest fact there is: it withdraws a loss.
      return closed ?? move(stage, 'WON');
    case 'envelope.declined':
    case 'envelope.voided': {
      const what = trigger.type === 'envelope.declined' ? 'declined' : 'voided';
      if (stage === 'LOST') return stay;
      if (WON_STAGES.includes(stage))
        return refuse(`the deal is ${stage}: an envelope ${what} after signing does not undo it`);
      return closed ?? move(stage, 'LOST');
    }
    case 'referral.accepted':
      if (stage === 'REFERRED') return move(stage, 'APPOINTMENT');
      if (closed) return closed;
      return stay;
    case 'referral.declined':
      if (stage === 'DECLINED') return stay;
      if (stage === 'REFERRED') return move(stage, 'DECLINED');
      return refuse(`the deal is ${stage}: only a referral not yet worked can be declined`);
    case 'referral.expired':
      if (stage === 'EXPIRED') return stay;
      if (stage === 'REFERRED') return move(stage, 'EXPIRED');
      return refuse(`the deal is ${stage}: the referral was answered in time`);
    case 'loss.confirmed':
      if (stage === 'LOST') return stay;
      if (stage === 'WON' && trigger.invoiced)
        return refuse('the deal is WON and has invoices: a deal with invoices is not lost');
      if (stage !== 'WON' && WON_STAGES.includes(stage))
        return refuse(`the deal is ${stage}: a delivered deal is not lost`);
      return closed ?? move(stage, 'LOST');
    case 'delivery.completed':
      if (stage === 'DELIVERED' || stage === 'CLOSED') return stay;
      if (stage === 'WON') return move(stage, 'DELIVERED');
      return refuse(`the deal is ${stage}: only a WON deal can be delivered`);
    case 'invoices.settled':
      if (stage === 'CLOSED') return stay;
      if (stage === 'DELIVERED') return move(stage, 'CLOSED');
      return refuse(`the deal is ${stage}: only a delivered deal closes when its invoices settle`);
  }
}

export interface TimedTrigger {
  trigger: LifecycleTrigger;
  /** When it happened at its source. */
  at: Date;
  /** Tie-break for equal times: arrival order. */
  seq: number;
}

export interface FoldStep {
  trigger: TimedTrigger;
  from: DealStage;
  decision: Decision;
}

/**
 * The stage after applying the triggers in the order they happened (by `at`, then arrival).
 * Because the result depends only on the set of triggers, not on the order they arrived in, a
 * late or reordered event gives the same stage as in-order delivery.
 */
export function foldStage(
  initial: DealStage,
  triggers: readonly TimedTrigger[],
): { stage: DealStage; steps: FoldStep[] } {
  const ordered = [...triggers].sort((a, b) => a.at.getTime() - b.at.getTime() || a.seq - b.seq);
  let stage = initial;
  const steps: FoldStep[] = [];
  for (const t of ordered) {
    const decision = transition(stage, t.trigger);
    steps.push({ trigger: t, from: stage, decision });
    if (decision.kind === 'move') stage = decision.to;
  }
  return { stage, steps };
}

/**
 * Stages that follow from the deal's state rather than from one event: WON → DELIVERED once
 * delivered, DELIVERED → CLOSED once every invoice is settled (CONTRACT §4).
 */
export function deriveStage(
  folded: DealStage,
  facts: { delivered: boolean; settled: boolean },
): { stage: DealStage; steps: { from: DealStage; to: DealStage; why: TriggerType }[] } {
  const steps: { from: DealStage; to: DealStage; why: TriggerType }[] = [];
  let stage = folded;
  if (facts.delivered) {
    const d = transition(stage, { type: 'delivery.completed' });
    if (d.kind === 'move') {
      steps.push({ from: stage, to: d.to, why: 'delivery.completed' });
      stage = d.to;
    }
  }
  if (facts.delivered && facts.settled) {
    const d = transition(stage, { type: 'invoices.settled' });
    if (d.kind === 'move') {
      steps.push({ from: stage, to: d.to, why: 'invoices.settled' });
      stage = d.to;
    }
  }
  return { stage, steps };
}

export const isWonOrLater = (stage: DealStage): boolean => WON_STAGES.includes(stage);
/** The contract is out or signed: CONTRACT_SENT, WON, DELIVERED, CLOSED (a refused plan alerts from here). */
export const isContractSentOrLater = (stage: DealStage): boolean =>
  stage === 'CONTRACT_SENT' || WON_STAGES.includes(stage);
export const isPreWon = (stage: DealStage): boolean => PRE_WON_STAGES.includes(stage);
/** Taken up and not ended: past REFERRED (a referral accepted, a meeting booked) and still alive. */
export const isInProgress = (stage: DealStage): boolean =>
  stage !== 'REFERRED' && !ENDED_STAGES.includes(stage);
