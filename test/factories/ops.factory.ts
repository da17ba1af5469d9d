import { randomBytes } from 'node:crypto';

import { hashToken } from '../../src/admin/tokens.service';
import { newId } from '../../src/common/ids';
import {
  ApiToken,
  DeadLetter,
  JobAttempt,
  Prisma,
  TimelineEntry,
  TokenRole,
} from '../../src/generated/prisma/client';
import { Db } from './db';

/** A named admin API token (stored as its SHA-256, as the tokens service does); returns it with the secret. */
export async function createApiToken(
  db: Db,
  over: { role?: TokenRole; name?: string; token?: string; revokedAt?: Date | null } = {},
): Promise<{ row: ApiToken; token: string }> {
  const token = over.token ?? `cl_${randomBytes(24).toString('base64url')}`;
  const row = await db.apiToken.create({
    data: {
      id: newId('tok'),
      name: over.name ?? `test-${over.role ?? 'viewer'}`,
      role: over.role ?? 'viewer',
      tokenHash: hashToken(token),
      revokedAt: over.revokedAt ?? null,
    },
  });
  return { row, token };
}

/** A dead letter. Default: an OPEN, permanently failed WebhookEventProcess job. */
export async function createDeadLetter(
  db: Db,
  over: Partial<Prisma.DeadLetterUncheckedCreateInput> = {},
): Promise<DeadLetter> {
  const id = over.id ?? newId('dl');
  return db.deadLetter.create({
    data: {
      queue: 'webhooks',
      jobName: 'WebhookEventProcess',
      jobId: `job-${id}`,
      data: {},
      reason: 'PERMANENT',
      error: 'boom',
      attempts: 1,
      ...over,
      id,
    },
  });
}

/** One job execution record. Default: a failed (RETRYING) WebhookEventProcess attempt. */
export async function createJobAttempt(
  db: Db,
  over: Partial<Prisma.JobAttemptUncheckedCreateInput> = {},
): Promise<JobAttempt> {
  return db.jobAttempt.create({
    data: {
      queue: 'webhooks',
      jobName: 'WebhookEventProcess',
      jobId: `job-${newId('j')}`,
      attempt: 1,
      outcome: 'RETRYING',
      error: 'boom',
      durationMs: 5,
      ...over,
    },
  });
}

/** A timeline entry of a deal. Default: an admin note caused by "test". */
export async function createTimelineEntry(
  db: Db,
  over: Partial<Prisma.TimelineEntryUncheckedCreateInput> & { dealId: string },
): Promise<TimelineEntry> {
  return db.timelineEntry.create({
    data: { kind: 'admin', message: 'note', cause: 'test', ...over },
  });
}
