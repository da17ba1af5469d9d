/**
 * Microsoft Partner Center referrals (provider-facts §4): an API with response windows (72 h new →
 * Failed, 7 days in evaluation → Expired, 14 days co-sell received → Expired), accept / decline,
 * in evaluation ("interested") and Skipped ("not interested"), Won / Lost with the deal value, a
 * reason on every close, and the deal-registration wait before Won (docs/decisions/0013).
 */
import { aimitsuForm } from './aimitsu';
import { DEFAULT_REPORT_LABELS } from './form-values';
import type { PlatformProfile, ReferralFacts } from './profile';

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
};
