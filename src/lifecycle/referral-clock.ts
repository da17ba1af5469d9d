/**
 * A referral's response clock (CONTRACT §3.5, provider-facts §4.4): the platform's own deadline
 * when it gives one (Partner Center `expirationDateTime`, generic `respondBy`), else Partner
 * Center's windows — 72 hours for a new referral, 7 days for one in evaluation, 14 days for a
 * co-sell opportunity in the received stage. Pure; the lifecycle timer acts on the result.
 */

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
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Null when the referral needs no answer (accepted or closed): its clock is stopped. */
export function responseClock(r: ReferralClockInput): { respondBy: Date; rule: ClockRule } | null {
  if (r.status === 'Closed' || r.substatus === 'Accepted') return null;
  if (r.deadline) {
    const at = Date.parse(r.deadline);
    if (!Number.isNaN(at)) {
      return { respondBy: new Date(at), rule: r.deadlineField ?? 'respondBy' };
    }
  }
  if (r.substatus === 'Received') {
    return { respondBy: new Date(r.createdAt.getTime() + 14 * DAY), rule: 'default-cosell-14d' };
  }
  if (r.status === 'Active') {
    const from = r.updatedAt ?? r.createdAt;
    return { respondBy: new Date(from.getTime() + 7 * DAY), rule: 'default-evaluation-7d' };
  }
  return { respondBy: new Date(r.createdAt.getTime() + 72 * HOUR), rule: 'default-new-72h' };
}
