import { HttpException } from '@nestjs/common';

/**
 * An error with a stable code, answered as `{ "error": { "code", "message" } }` by the global filter.
 * `outcome` labels the webhook metrics when it happens at the door.
 */
export class DomainException extends HttpException {
  constructor(
    status: number,
    readonly code: string,
    message: string,
    readonly outcome = 'rejected',
  ) {
    super({ error: { code, message } }, status);
  }
}
