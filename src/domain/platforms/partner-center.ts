/**
 * Microsoft Partner Center referrals (provider-facts §4): an API with response windows (72 h new →
 * Failed, 7 days in evaluation → Expired, 14 days co-sell received → Expired), accept / decline,
 * in evaluation ("interested") and Skipped ("not interested"), Won / Lost with the deal value, a
 * reason on every close, and the deal-registration wait before Won (docs/decisions/0013).
 */
import { aimitsuCorrect, aimitsuForm } from './aimitsu';
import { DEFAULT_REPORT_LABELS } from './form-values';
import type { Label, PlatformProfile, ReferralFacts } from './profile';

/** Partner Center's referral `status` and `substatus` values (provider-facts §4.2). */
export const PARTNER_CENTER_STATUSES = ['None', 'New', 'Active', 'Closed'] as const;
export const PARTNER_CENTER_SUBSTATUSES = [
  'None',
  'Pending',
  'Received',
  'Accepted',
  'Won',
  'Lost',
  'Declined',
  'Expired',
] as const;

/**
 * Partner Center's words for them, after the Japanese edition of Microsoft's referral resources
 * reference (learn.microsoft.com/ja-jp/partner/develop/referral-resources: アクティブ, クローズ済み;
 * 保留中, 承認済み, 受注, 失注) and of its co-sell bulk operations page (期限切れ, 受注), in plain
 * Japanese where those machine-translated pages read awkwardly (New → 新規, Received → 受信済み,
 * Declined → 辞退).
 */
export const PARTNER_CENTER_STATUS_LABELS: Readonly<
  Record<(typeof PARTNER_CENTER_STATUSES)[number], Label>
> = {
  None: { ja: 'なし', en: 'None' },
  New: { ja: '新規', en: 'New' },
  Active: { ja: 'アクティブ', en: 'Active' },
  Closed: { ja: 'クローズ済み', en: 'Closed' },
};
export const PARTNER_CENTER_SUBSTATUS_LABELS: Readonly<
  Record<(typeof PARTNER_CENTER_SUBSTATUSES)[number], Label>
> = {
  None: { ja: 'なし', en: 'None' },
  Pending: { ja: '保留中', en: 'Pending' },
  Received: { ja: '受信済み', en: 'Received' },
  Accepted: { ja: '承認済み', en: 'Accepted' },
  Won: { ja: '受注', en: 'Won' },
  Lost: { ja: '失注', en: 'Lost' },
  Declined: { ja: '辞退', en: 'Declined' },
  Expired: { ja: '期限切れ', en: 'Expired' },
};

/**
 * Partner Center's deal registration (provider-facts §4.2 [PC-REG]; docs/decisions/0013): "make
 * sure that there is a gap of 72 hours between creating the deal and marking the deal won".
 * Registration is for deals the partner created (co-sell out: the hub's outbound referrals).
 */
export const REGISTRATION_WAIT_MS = 72 * 3_600_000;

function wonNotBefore(referral: ReferralFacts): Date | null {
  if (referral.direction !== 'outbound' || !referral.platformCreatedAt) return null;
  return new Date(referral.platformCreatedAt.getTime() + REGISTRATION_WAIT_MS);
}

export const PARTNER_CENTER: PlatformProfile = {
  id: 'partner-center',
  aliases: [],
  label: { ja: 'Microsoft パートナー センター', en: 'Microsoft Partner Center' },
  responseClock: 'partner-center-windows',
  acceptStep: true,
  answers: ['accept', 'decline', 'evaluate', 'skip'],
  wonNotBefore,
  confirmationCycle: false,
  deliveredAfterConfirmed: false,
  channel: 'partner-center',
  reportKinds: [
    'appointment',
    'won',
    'lost',
    'lost_withdrawn',
    'declined',
    'expired',
    'in_evaluation',
  ],
  reportLabels: DEFAULT_REPORT_LABELS,
  // Without Partner Center credentials its reports wait in the manual queue.
  form: aimitsuForm,
  correct: aimitsuCorrect,
  platformStatusLabels: PARTNER_CENTER_STATUS_LABELS,
  platformSubstatusLabels: PARTNER_CENTER_SUBSTATUS_LABELS,
};
