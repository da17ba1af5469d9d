import { referralJa } from './referral.ja';

export type ReferralKey = keyof typeof referralJa;

/** English labels of a deal page's referral answers (the keys of referral.ja.ts). */
export const referralEn: Record<ReferralKey, string> = {
  'referral.answers': 'Answer the referral',
  'referral.answersHelp':
    'Answers the referral platform. On Partner Center, "I\'m interested" puts the referral in evaluation (accept or decline it within 7 days) and "No thanks" archives it as Skipped.',
  'referral.answer.accept': 'Accept',
  'referral.answer.decline': 'Decline',
  'referral.answer.evaluate': "I'm interested",
  'referral.answer.skip': 'No thanks (skip)',
  'referral.reason': 'Reason (optional)',
  'referral.platformState': 'On the platform',
  'referral.statusReason': 'Reason',
  'referral.done.accept': 'Referral accepted.',
  'referral.done.decline': 'Referral declined.',
  'referral.done.evaluate': 'Referral in evaluation.',
  'referral.done.skip': 'Referral skipped.',
  'referral.refused': 'Not done ({code}): {message}',
  'report.notBefore': 'Not before',
};
