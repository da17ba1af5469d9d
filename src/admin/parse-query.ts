import { HttpStatus } from '@nestjs/common';
import { z } from 'zod';

import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';

/** Validate a query or body with zod; a failure is a 400 naming each bad field. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const parsed = schema.safeParse(input ?? {});
  if (!parsed.success) {
    const why = parsed.error.issues
      .map((i) => `${i.path.join('.') || 'body'}: ${i.message}`)
      .join('; ');
    throw new DomainException(HttpStatus.BAD_REQUEST, CommonErrorCode.ValidationFailed, why);
  }
  return parsed.data;
}
