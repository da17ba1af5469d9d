/**
 * Referral platforms as their users meet them (CONTRACT §3.5, §5; docs/platforms.md). One profile
 * per platform is the only place platform rules live: its response clock (or none), how it takes
 * reports, the report kinds it takes, its form's fields and labels, and its statuses in its own
 * words. Pure: no I/O, nothing of the hub outside src/domain.
 */
import type { ReportChannel, ReportData, ReportField, ReportKind } from '../report';
import type { Correction } from './form-values';

/** Words for people: the platform's own (Japanese for PRONI アイミツ) and English. */
export interface Label {
  ja: string;
  en: string;
}

/**
 * How long the vendor has to answer a new referral.
 * - `partner-center-windows`: the referral's own deadline, else Partner Center's windows (72 h new
 *   → Failed, 7 days in evaluation → Expired, 14 days co-sell received → Expired).
 * - `deadline-or-72h`: the deadline the referral gives (`respondBy`), else 72 hours.
 * - `deadline-only`: only a deadline the referral itself gives; none when it gives none (PRONI
 *   アイミツ: a lead is the vendor's once won, 当選).
 */
export type ResponseClockKind = 'partner-center-windows' | 'deadline-or-72h' | 'deadline-only';

/**
 * The vendor's answers to an open referral (admin API, dashboard): accept, decline, and Partner
 * Center's "interested" (evaluate: in evaluation, its 7-day window) and "not interested" (skip).
 */
export const REFERRAL_ANSWERS = ['accept', 'decline', 'evaluate', 'skip'] as const;
export type ReferralAnswer = (typeof REFERRAL_ANSWERS)[number];

/** What the hub knows of a referral when the platform's rules ask (a pure snapshot). */
export interface ReferralFacts {
  /** inbound (the platform sent it) | outbound (the hub created it, e.g. a Partner Center co-sell). */
  direction: string;
  /** When the platform created it, if known. */
  platformCreatedAt: Date | null;
}

export interface PlatformProfile {
  /** The canonical name stored on referrals, deals and reports. */
  id: string;
  /** Other names the same platform goes by (`proni` for `aimitsu`). */
  aliases: readonly string[];
  label: Label;
  responseClock: ResponseClockKind;
  /** Whether the vendor accepts or declines a referral (Partner Center), or owns it once received. */
  acceptStep: boolean;
  /** The answers the admin API and the dashboard offer for the platform's open referrals. */
  answers: readonly ReferralAnswer[];
  /**
   * The earliest instant a `won` report may reach the platform, when the platform makes the vendor
   * wait (Partner Center's deal registration: 72 hours after an eligible deal was created, or the
   * registration may be rejected); null when it may go at once.
   */
  wonNotBefore?(referral: ReferralFacts): Date | null;
  /**
   * How it takes reports when nothing else is configured: its API (`partner-center`, when its
   * credentials are set), the signed generic webhook (when REFERRAL_REPORT_WEBHOOK_URL is set), or
   * the manual queue. REFERRAL_MANUAL_PLATFORMS sends a platform to the manual queue.
   */
  channel: ReportChannel;
  /**
   * PRONI アイミツ's 確定報告 cycle, in the manual queue: from WON every billable item has a
   * confirmed-amount task (報告期限前, due on its expected invoice date) that its invoice fills in,
   * and when the platform approves one (報告済み) the task of the next invoice still planned is
   * created. Without it a confirmed-amount report exists only once its invoice is issued.
   */
  confirmationCycle: boolean;
  /**
   * 納品報告 only after a 確定報告: in the manual queue the delivered report is recorded once a
   * confirmed-amount report of the deal is in the platform's hands (entered, under review, to be
   * corrected, reported or fee ongoing), not before.
   */
  deliveredAfterConfirmed: boolean;
  /** The report kinds the platform takes; the hub records no other kind for it. */
  reportKinds: readonly ReportKind[];
  /** Each report's name on the platform, for task titles, timeline entries and alerts. */
  reportLabels: Readonly<Record<ReportKind, Label>>;
  /**
   * The form a person fills in on the platform for a report, field by field, copy-ready (manual
   * queue). `timeZone` is the deal's zone.
   */
  form(data: ReportData, timeZone: string): ReportField[];
  /**
   * Finance's correction of a report's form (修正依頼): the values by field key, read back into
   * the report data by what each field is (amount, date, one of the form's choices, text); the
   * form's fields as they now read (`stored`: as they read before). Unknown keys or unreadable
   * values refuse the whole correction with the reason.
   */
  correct(
    data: ReportData,
    timeZone: string,
    stored: readonly ReportField[],
    values: Readonly<Record<string, string>>,
  ): Correction;
  /**
   * The platform's own words for the statuses of a report it is owed, by the hub's report status
   * (`PENDING` → PRONI's 報告期限前), where the platform shows one; statuses it has no word for
   * are shown in the hub's words (the dashboard's).
   */
  reportStatusLabels?: Readonly<Partial<Record<string, Label>>>;
  /**
   * The referral's status and substatus as the platform's screen names them, by the value its API
   * sends (Partner Center `status` New/Active/Closed, `substatus` Pending…Expired); a value
   * without a word is shown as sent.
   */
  platformStatusLabels?: Readonly<Partial<Record<string, Label>>>;
  platformSubstatusLabels?: Readonly<Partial<Record<string, Label>>>;
}
