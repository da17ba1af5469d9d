/**
 * A referral's response clock (CONTRACT §3.5, provider-facts §4.4), per platform profile
 * (src/domain/platforms `responseClock`):
 * - `partner-center-windows`: the referral's `expirationDateTime` when it gives one, else Partner
 *   Center's windows — 72 hours for a new referral (archived as Failed), 7 days in evaluation, 14
 *   days for a co-sell opportunity in the received stage (both archived as Expired);
 * - `deadline-or-72h`: the `respondBy` the referral gives, else 72 hours;
 * - `deadline-only`: only a `respondBy` the referral gives — none otherwise (PRONI アイミツ: a lead
 *   is the vendor's once won, 当選).
 * Pure; the lifecycle timer acts on the result.
 */
import type { ResponseClockKind } from '../domain/platforms';

export type ClockRule =
  | 'expirationDateTime'
  | 'respondBy'
  | 'default-new-72h'
  | 'default-evaluation-7d'
  | 'default-cosell-14d';

export interface ReferralClockInput {
  /** The platform's explicit deadline (expirationDateTime / respondBy). */
  deadline?: string | null;
  /** Which field the deadline came from. */
  deadlineField?: 'expirationDateTime' | 'respondBy';
  /** Partner Center status / substatus (absent for generic referrals). */
  status?: string | null;
  substatus?: string | null;
  /** When the referral was created on the platform (else when the hub first heard of it). */
  createdAt: Date;
  /** When it last changed on the platform (the start of an evaluation). */
  updatedAt?: Date;
  /** When the vendor said it is interested (the hub's IN_EVALUATION), if it did. */
  evaluatingSince?: Date | null;
}

export interface ResponseClock {
  respondBy: Date;
  rule: ClockRule;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * When the referral must be answered under the platform's rules, and by which rule; null when no
 * clock runs (the referral is accepted or closed, or the platform has no clock and the referral
 * gives no deadline).
 */
export function responseClock(
  kind: ResponseClockKind,
  r: ReferralClockInput,
): ResponseClock | null {
  if (r.status === 'Closed' || r.substatus === 'Accepted') return null;
  const deadline = explicitDeadline(r);
  if (deadline) return deadline;
  switch (kind) {
    case 'deadline-only':
      return null;
    case 'deadline-or-72h':
      return { respondBy: new Date(r.createdAt.getTime() + 72 * HOUR), rule: 'default-new-72h' };
    case 'partner-center-windows':
      if (r.evaluatingSince) {
        return {
          respondBy: new Date(r.evaluatingSince.getTime() + 7 * DAY),
          rule: 'default-evaluation-7d',
        };
      }
      if (r.substatus === 'Received') {
        return {
          respondBy: new Date(r.createdAt.getTime() + 14 * DAY),
          rule: 'default-cosell-14d',
        };
      }
      if (r.status === 'Active') {
        const from = r.updatedAt ?? r.createdAt;
        return { respondBy: new Date(from.getTime() + 7 * DAY), rule: 'default-evaluation-7d' };
      }
      return { respondBy: new Date(r.createdAt.getTime() + 72 * HOUR), rule: 'default-new-72h' };
  }
}

/**
 * The platform's own deadline, when it gives a usable one. In evaluation, a deadline that passed
 * before the evaluation began was the new referral's, not the evaluation's: it is ignored.
 */
function explicitDeadline(r: ReferralClockInput): ResponseClock | null {
  if (!r.deadline) return null;
  const at = Date.parse(r.deadline);
  if (Number.isNaN(at)) return null;
  if (r.evaluatingSince && at <= r.evaluatingSince.getTime()) return null;
  return { respondBy: new Date(at), rule: r.deadlineField ?? 'respondBy' };
}

/**
 * What the referral becomes when its clock runs out: Failed for a new referral's 72 hours (Partner
 * Center archives it so), Expired for every other window or deadline.
 */
export function outcomeOf(rule: string | null): 'FAILED' | 'EXPIRED' {
  return rule === 'default-new-72h' ? 'FAILED' : 'EXPIRED';
}

/** Partner Center's statusReason for a referral whose clock ran out (docs/decisions/0013). */
export function expiryReason(rule: string | null, respondBy: Date): string {
  switch (rule) {
    case 'default-new-72h':
      return `No response within 72 hours of the referral's creation (due ${respondBy.toISOString()})`;
    case 'default-evaluation-7d':
      return `Not accepted or declined within 7 days in evaluation (due ${respondBy.toISOString()})`;
    case 'default-cosell-14d':
      return `No response within 14 days of the co-sell opportunity's receipt (due ${respondBy.toISOString()})`;
    default:
      return `No response within the response window (due ${respondBy.toISOString()})`;
  }
}
