import { HttpStatus } from '@nestjs/common';

import { DomainException } from '../common/domain.exception';
import { AdminErrorCode } from './admin-error-code';

const DAY_MS = 24 * 60 * 60 * 1000;

/** The facts of an inbox event that say whether (and when) the retention purge emptied it. */
export interface PurgeFacts {
  id: string;
  receivedAt: Date;
  purgedAt: Date | null;
}

/**
 * What the admin API and the dashboard say about an event whose payload the retention purge
 * (RETENTION_DAYS, src/retention) removed, e.g. "payload purged on 2027-12-28 (400 days after it
 * was received)"; null while the payload is kept.
 */
export function purgeNote(e: PurgeFacts): string | null {
  if (!e.purgedAt) return null;
  const days = Math.floor((e.purgedAt.getTime() - e.receivedAt.getTime()) / DAY_MS);
  return (
    `payload, headers, normalized event and last error purged on ` +
    `${e.purgedAt.toISOString().slice(0, 10)} (${days} days after it was received, RETENTION_DAYS)`
  );
}

/** 410 for a replay (or its preview) of a purged event: nothing is left to run, nothing changes. */
export function eventPurged(e: PurgeFacts & { purgedAt: Date }): DomainException {
  return new DomainException(
    HttpStatus.GONE,
    AdminErrorCode.EventPurged,
    `event ${e.id} cannot be replayed: its ${purgeNote(e)}`,
  );
}
