/** The webhook door's error codes (why a delivery was refused). */
export enum WebhookErrorCode {
  ProviderNotConfigured = 'PROVIDER_NOT_CONFIGURED',
  InvalidSignature = 'INVALID_SIGNATURE',
  CertificateUnavailable = 'CERTIFICATE_UNAVAILABLE',
  MalformedBody = 'MALFORMED_BODY',
  MalformedEvent = 'MALFORMED_EVENT',
  UnstorablePayload = 'UNSTORABLE_PAYLOAD',
  StoreUnavailable = 'STORE_UNAVAILABLE',
}

declare module '../common/error-code' {
  interface ErrorCodes {
    webhooks: WebhookErrorCode;
  }
}
