/**
 * Error codes: the stable `error.code` of every error answer (part of the public contract, like
 * the HTTP status). Each module keeps an enum of its own codes next to its code (AdminErrorCode,
 * WebhookErrorCode, ReferralErrorCode); the codes several modules answer with, and those the
 * global error filter gives an HTTP status, are here. A value belongs to exactly one enum
 * (error-code.spec.ts).
 */
export enum CommonErrorCode {
  BadRequest = 'BAD_REQUEST',
  ValidationFailed = 'VALIDATION_FAILED',
  Unauthenticated = 'UNAUTHENTICATED',
  Forbidden = 'FORBIDDEN',
  NotFound = 'NOT_FOUND',
  MethodNotAllowed = 'METHOD_NOT_ALLOWED',
  Conflict = 'CONFLICT',
  PayloadTooLarge = 'PAYLOAD_TOO_LARGE',
  UnsupportedMediaType = 'UNSUPPORTED_MEDIA_TYPE',
  Unprocessable = 'UNPROCESSABLE',
  TooManyRequests = 'TOO_MANY_REQUESTS',
  Unavailable = 'UNAVAILABLE',
  Internal = 'INTERNAL',
}

/**
 * The enums of error codes, one entry per module. src/common names no module (the layers), so a
 * module adds its enum by declaration merging, in the file that declares the enum:
 *
 *   declare module '../common/error-code' {
 *     interface ErrorCodes { admin: AdminErrorCode }
 *   }
 */
export interface ErrorCodes {
  common: CommonErrorCode;
}

/** Any module's error code: what DomainException takes (a loose string does not compile). */
export type ErrorCode = ErrorCodes[keyof ErrorCodes];
