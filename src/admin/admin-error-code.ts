/** The admin API's own error codes (shared ones: CommonErrorCode). */
export enum AdminErrorCode {
  DealExists = 'DEAL_EXISTS',
  NotVoid = 'NOT_VOID',
  InvalidBillingPlan = 'INVALID_BILLING_PLAN',
  IdempotencyKeyReused = 'IDEMPOTENCY_KEY_REUSED',
  DeadLetterNotOpen = 'DEAD_LETTER_NOT_OPEN',
  /** The event's payload was purged (RETENTION_DAYS): it cannot be replayed. */
  EventPurged = 'EVENT_PURGED',
  TransitionRefused = 'TRANSITION_REFUSED',
  ReportChanged = 'REPORT_CHANGED',
  /** A loss decision on a deal without a proposed loss (まだ未定: 失注). */
  NoLossProposed = 'NO_LOSS_PROPOSED',
  /** The proposed loss cannot be confirmed (the deal has invoices, or is delivered). */
  LossRefused = 'LOSS_REFUSED',
  StripeNotConfigured = 'STRIPE_NOT_CONFIGURED',
  StripeUnavailable = 'STRIPE_UNAVAILABLE',
  /** A deal's contract documents are served once its contract is COMPLETED (signed by all). */
  ContractNotCompleted = 'CONTRACT_NOT_COMPLETED',
  ESignatureNotConfigured = 'ESIGNATURE_NOT_CONFIGURED',
  ESignatureUnavailable = 'ESIGNATURE_UNAVAILABLE',
}

declare module '../common/error-code' {
  interface ErrorCodes {
    admin: AdminErrorCode;
  }
}
