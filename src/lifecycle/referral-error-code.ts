/** The referral service's own error codes (a referral not found: CommonErrorCode.NotFound). */
export enum ReferralErrorCode {
  ReferralAnswered = 'REFERRAL_ANSWERED',
}

declare module '../common/error-code' {
  interface ErrorCodes {
    referrals: ReferralErrorCode;
  }
}
