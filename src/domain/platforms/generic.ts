/**
 * Any other platform (CONTRACT §3.5 `generic`): referrals by signed Standard Webhooks, reports by
 * the signed generic webhook (REFERRAL_REPORT_WEBHOOK_URL) or, without one, the manual queue.
 */
import { aimitsuCorrect, aimitsuForm } from './aimitsu';
import { DEFAULT_REPORT_LABELS } from './form-values';
import type { PlatformProfile } from './profile';
import { REPORT_KINDS } from '../report';

/** The profile of a platform without one of its own, under the name it was given. */
export function genericProfile(name: string): PlatformProfile {
  return {
    id: name,
    aliases: [],
    label: { ja: name, en: name },
    responseClock: 'deadline-or-72h',
    acceptStep: true,
    answers: ['accept', 'decline'],
    channel: 'webhook',
    // Reported by hand (no REFERRAL_REPORT_WEBHOOK_URL), its confirmed amounts follow PRONI's cycle.
    confirmationCycle: true,
    deliveredAfterConfirmed: false,
    reportKinds: REPORT_KINDS.filter((k) => k !== 'in_evaluation'),
    reportLabels: DEFAULT_REPORT_LABELS,
    form: aimitsuForm,
    correct: aimitsuCorrect,
  };
}
