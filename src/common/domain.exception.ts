import { HttpException } from '@nestjs/common';

import { ErrorCode } from './error-code';

/**
 * An error with a stable code (a member of one of the ErrorCode enums, src/common/error-code.ts),
 * answered as `{ "error": { "code", "message" } }` by the global filter.
 * `outcome` labels the webhook metrics when it happens at the door.
 */
export class DomainException extends HttpException {
  constructor(
    status: number,
    readonly code: ErrorCode,
    message: string,
    readonly outcome = 'rejected',
  ) {
    super({ error: { code, message } }, status);
  }
}
