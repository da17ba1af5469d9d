/** The referral service's own error codes (a referral not found: CommonErrorCode.NotFound). */
export enum ReferralErrorCode {
  ReferralAnswered = 'REFERRAL_ANSWERED',
  /** The referral's platform has no such answer (e.g. evaluate or skip outside Partner Center). */
  ReferralAnswerNotOffered = 'REFERRAL_ANSWER_NOT_OFFERED',
}

declare module '../common/error-code' {
  interface ErrorCodes {
    referrals: ReferralErrorCode;
  }
}
