/**
 * Microsoft Partner Center referrals (provider-facts §4): an API with response windows (72 h new,
 * 7 days in evaluation, 14 days co-sell received), accept / decline, Won / Lost with the deal value.
 */
import { aimitsuCorrect, aimitsuForm } from './aimitsu';
import { DEFAULT_REPORT_LABELS } from './form-values';
import type { PlatformProfile } from './profile';

export const PARTNER_CENTER: PlatformProfile = {
  id: 'partner-center',
  aliases: [],
  label: { ja: 'Microsoft パートナー センター', en: 'Microsoft Partner Center' },
  responseClock: 'partner-center-windows',
  acceptStep: true,
  channel: 'partner-center',
  reportKinds: ['appointment', 'won', 'lost', 'lost_withdrawn', 'declined'],
  reportLabels: DEFAULT_REPORT_LABELS,
  // Without Partner Center credentials its reports wait in the manual queue.
  form: aimitsuForm,
  correct: aimitsuCorrect,
};
