import { HttpStatus, Injectable } from '@nestjs/common';

import { DomainException } from '../common/domain.exception';
import { AdminErrorCode } from './admin-error-code';
import { CommonErrorCode } from '../common/error-code';
import { EventStatus, Prisma } from '../generated/prisma/client';
import { PrismaService } from '../prisma/prisma.service';
import { JobName } from '../queue/job-name.enum';
import { OutboxService } from '../queue/outbox/outbox.service';
import { AuditService } from './audit.service';
import { EVENT_SUMMARY_FIELDS } from './event-fields';
import { redactHeaders, redactText } from '../common/redact';
import { page } from './pagination';
import { eventPurged, purgeNote } from './purged-event';
import { Actor } from './tokens.service';

const LIST_FIELDS = {
  ...EVENT_SUMMARY_FIELDS,
  processedAt: true,
  attempts: true,
  replayCount: true,
  dealId: true,
  subjectKey: true,
  correlationId: true,
  lastError: true,
  purgedAt: true,
} as const;

const redactNullable = (text: string | null): string | null =>
  text === null ? null : redactText(text);
const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** The inbox as admins see it, and the two replay paths (event, dead letter). */
@Injectable()
export class EventsService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly outbox: OutboxService,
    private readonly audit: AuditService,
  ) {}

  async list(q: {
    provider?: string;
    status?: EventStatus;
    dealId?: string;
    limit: number;
    cursor?: string;
  }) {
    const rows = await this.prisma.webhookEvent.findMany({
      where: {
        provider: q.provider,
        status: q.status,
        dealId: q.dealId,
        ...(q.cursor ? { id: { lt: q.cursor } } : {}),
      },
      select: LIST_FIELDS,
      orderBy: { id: 'desc' },
      take: q.limit + 1,
    });
    return page(
      rows.map((r) => ({ ...r, lastError: redactNullable(r.lastError) })),
      q.limit,
    );
  }

  async get(id: string) {
    const event = await this.prisma.webhookEvent.findUnique({
      where: { id },
      include: {
        attemptsLog: { orderBy: { id: 'asc' } },
        deadLetters: { orderBy: { createdAt: 'asc' } },
      },
    });
    if (!event) throw notFound('event', id);
    const { attemptsLog, deadLetters, headers, lastError, ...rest } = event;
    return {
      ...rest,
      // Redacted again on the way out (common/redact.ts): rows stored before the allow-list, and
      // errors written before errors were redacted, show no more than new ones.
      headers: isRecord(headers) ? redactHeaders(headers) : headers,
      lastError: redactNullable(lastError),
      deadLetters: deadLetters.map((d) => ({ ...d, error: redactText(d.error) })),
      // Set once the retention purge emptied payload and headers (both JSON null then).
      purgeNote: purgeNote(event),
      jobAttempts: attemptsLog.map((a) => ({
        ...a,
        id: a.id.toString(),
        error: redactNullable(a.error),
      })),
    };
  }

  /**
   * Re-run an event through its handler (idempotent handlers make this safe at any time). An event
   * whose payload was purged (RETENTION_DAYS) is refused with 410 and stays as it is.
   */
  async replayEvent(id: string, actor?: Actor) {
    return this.prisma.$transaction(async (tx) => {
      const [event] = await tx.$queryRaw<{ replay_count: number; correlation_id: string }[]>`
        UPDATE webhook_event SET status = 'RECEIVED', replay_count = replay_count + 1, last_error = NULL,
               attempt_base = attempts
        WHERE id = ${id} AND purged_at IS NULL RETURNING replay_count, correlation_id`;
      if (!event) throw await this.notReplayable(tx, id);
      const jobId = `${id}-replay-${event.replay_count}`;
      await this.outbox.enqueue(tx, JobName.WebhookEventProcess, jobId, {
        eventId: id,
        correlationId: event.correlation_id,
      });
      // Replaying the event answers its open dead letters too: they point at this replay.
      const { count: resolvedDeadLetters } = await tx.deadLetter.updateMany({
        where: { eventId: id, status: 'OPEN' },
        data: {
          status: 'REPLAYED',
          resolvedAt: new Date(),
          resolvedBy: actor?.name,
          replayJobId: jobId,
        },
      });
      await this.audit.record(tx, actor, 'event.replay', id, { jobId, resolvedDeadLetters });
      return { eventId: id, jobId, status: 'RECEIVED' as const, resolvedDeadLetters };
    });
  }

  async listDeadLetters(
    q: DeadLetterFilter & {
      status: 'OPEN' | 'REPLAYED' | 'DISCARDED';
      limit: number;
      cursor?: string;
    },
  ) {
    const rows = await this.prisma.deadLetter.findMany({
      where: {
        status: q.status,
        ...deadLetterWhere(q),
        ...(q.cursor ? { id: { lt: q.cursor } } : {}),
      },
      orderBy: { id: 'desc' },
      take: q.limit + 1,
      include: {
        event: { select: { provider: true, type: true, providerEventId: true, dealId: true } },
      },
    });
    return page(
      rows.map((d) => ({ ...d, error: redactText(d.error) })),
      q.limit,
    );
  }

  /**
   * Replays every OPEN dead letter matching the filter, oldest first, each through
   * replayDeadLetter (so each exactly once; one replayed meanwhile by someone else is skipped).
   */
  async replayDeadLetters(q: DeadLetterFilter & { limit: number }, actor?: Actor) {
    const open = await this.prisma.deadLetter.findMany({
      where: { status: 'OPEN', ...deadLetterWhere(q) },
      orderBy: { id: 'asc' },
      take: q.limit,
      select: { id: true },
    });
    const replayed: string[] = [];
    const skipped: string[] = [];
    for (const { id } of open) {
      try {
        await this.replayDeadLetter(id, actor);
        replayed.push(id);
      } catch (err) {
        // Replayed meanwhile by someone else, or its event's payload purged: left as it is.
        const skip = [AdminErrorCode.DeadLetterNotOpen, AdminErrorCode.EventPurged];
        if (!(err instanceof DomainException) || !skip.some((code) => err.code === code)) throw err;
        skipped.push(id);
      }
    }
    return { replayed, skipped };
  }

  /** The audit log, newest first. */
  async listAudit(q: { action?: string; actor?: string; limit: number; cursor?: string }) {
    const rows = await this.prisma.auditLog.findMany({
      where: {
        ...(q.action ? { action: q.action } : {}),
        ...(q.actor ? { actor: q.actor } : {}),
        ...(q.cursor && /^\d+$/.test(q.cursor) ? { id: { lt: BigInt(q.cursor) } } : {}),
      },
      orderBy: { id: 'desc' },
      take: q.limit + 1,
    });
    const items = rows.slice(0, q.limit).map((r) => ({
      id: r.id.toString(),
      at: r.createdAt,
      actor: r.actor,
      role: r.role,
      action: r.action,
      target: r.target,
      details: r.details,
    }));
    return { items, nextCursor: rows.length > q.limit ? items[items.length - 1].id : null };
  }

  /**
   * Replays a dead letter exactly once: only the call that moves it out of OPEN enqueues a job. One
   * whose event's payload was purged (RETENTION_DAYS) is refused with 410 and stays OPEN.
   */
  async replayDeadLetter(id: string, actor?: Actor) {
    return this.prisma.$transaction(async (tx) => {
      const jobId = `${id}-replay`;
      const { count } = await tx.deadLetter.updateMany({
        where: { id, status: 'OPEN' },
        data: {
          status: 'REPLAYED',
          resolvedAt: new Date(),
          resolvedBy: actor?.name,
          replayJobId: jobId,
        },
      });
      const dl = await tx.deadLetter.findUnique({ where: { id } });
      if (!dl) throw notFound('dead letter', id);
      if (count === 0) {
        throw new DomainException(
          HttpStatus.CONFLICT,
          AdminErrorCode.DeadLetterNotOpen,
          `dead letter ${id} is already ${dl.status}`,
        );
      }
      if (dl.eventId) {
        const { count: replayable } = await tx.webhookEvent.updateMany({
          where: { id: dl.eventId, purgedAt: null },
          data: { status: 'RECEIVED', replayCount: { increment: 1 }, lastError: null },
        });
        // Thrown inside the transaction: the dead letter stays OPEN, nothing is queued.
        if (replayable === 0) throw await this.notReplayable(tx, dl.eventId);
        // A replay gets a fresh retry budget (JOB_ATTEMPTS more attempts).
        await tx.$executeRaw`UPDATE webhook_event SET attempt_base = attempts WHERE id = ${dl.eventId}`;
      }
      await this.outbox.enqueue(tx, dl.jobName as JobName, jobId, dl.data as never);
      await this.audit.record(tx, actor, 'dead_letter.replay', id, { jobId, eventId: dl.eventId });
      return { deadLetterId: id, jobId, eventId: dl.eventId, status: 'REPLAYED' as const };
    });
  }

  /** Why an event could not be moved back to RECEIVED: purged (410) or unknown (404). */
  private async notReplayable(tx: Prisma.TransactionClient, id: string) {
    const event = await tx.webhookEvent.findUnique({
      where: { id },
      select: { id: true, receivedAt: true, purgedAt: true },
    });
    return event?.purgedAt
      ? eventPurged({ ...event, purgedAt: event.purgedAt })
      : notFound('event', id);
  }

  async discardDeadLetter(id: string, actor?: Actor): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.deadLetter.updateMany({
        where: { id, status: 'OPEN' },
        data: { status: 'DISCARDED', resolvedAt: new Date(), resolvedBy: actor?.name },
      });
      if (count === 0) {
        const dl = await tx.deadLetter.findUnique({ where: { id } });
        if (!dl) throw notFound('dead letter', id);
        throw new DomainException(
          HttpStatus.CONFLICT,
          AdminErrorCode.DeadLetterNotOpen,
          `dead letter ${id} is already ${dl.status}`,
        );
      }
      await this.audit.record(tx, actor, 'dead_letter.discard', id);
    });
  }
}

function notFound(what: string, id: string) {
  return new DomainException(
    HttpStatus.NOT_FOUND,
    CommonErrorCode.NotFound,
    `${what} ${id} not found`,
  );
}

export interface DeadLetterFilter {
  jobName?: string;
  queue?: string;
  before?: Date;
}

function deadLetterWhere(q: DeadLetterFilter): Prisma.DeadLetterWhereInput {
  return {
    ...(q.jobName ? { jobName: q.jobName } : {}),
    ...(q.queue ? { queue: q.queue } : {}),
    ...(q.before ? { createdAt: { lt: q.before } } : {}),
  };
}
