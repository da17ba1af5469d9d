/** What an alert is about (CONTRACT §2 ALERT_WEBHOOK_URL). */
export const ALERT_KINDS = [
  'referral.expiring',
  /** A referral's response window or deadline ran out (in evaluation 7 days, co-sell 14 days, its own). */
  'referral.expired',
  /** A new referral left unanswered for 72 hours (Partner Center archives it as Failed). */
  'referral.failed',
  'report.overdue',
  'dead_letters.growing',
  'provider.failing',
  /** A billing plan refused on a deal at CONTRACT_SENT or later (CONTRACT §4): once per refusal. */
  'plan.refused',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface AlertInput {
  /**
   * The cause, unique for ever: an alert is raised once per cause, not once per check
   * (e.g. `referral.expired|partner-center|R-1`, `report.overdue|rpt_…|2026-12-15T14:59:59.999Z`).
   */
  cause: string;
  kind: AlertKind;
  message: string;
  dealId?: string;
  details?: Record<string, unknown>;
}
