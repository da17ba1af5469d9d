import { createHash } from 'node:crypto';

import { HttpStatus } from '@nestjs/common';

import { DomainException } from '../common/domain.exception';
import { AdminErrorCode } from './admin-error-code';

/** Idempotency-Key replies of deal creation: the request's hash, and a stored reply replayed. */

/** Canonical JSON (object keys sorted at every level): equal bodies hash equal whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** What the controller answers: the status, the JSON body, and whether it is a stored replay. */
export interface StoredReply {
  status: number;
  body: unknown;
  replayed: boolean;
}

export function replay(
  stored: { requestHash: string; status: number; response: unknown },
  requestHash: string,
  header: string,
): StoredReply {
  if (stored.requestHash !== requestHash) {
    throw new DomainException(
      HttpStatus.UNPROCESSABLE_ENTITY,
      AdminErrorCode.IdempotencyKeyReused,
      `Idempotency-Key "${header}" was already used with a different request body`,
    );
  }
  return { status: stored.status, body: stored.response, replayed: true };
}
