import { Injectable } from '@nestjs/common';
import { Job } from 'bullmq';

import { PermanentError } from '../common/errors';
import { WebhookSource } from '../config/app-config';
import { Prisma } from '../generated/prisma/client';
import { MetricsService } from '../health/metrics.service';
import { PrismaService } from '../prisma/prisma.service';
import {
  JobFailure,
  JobHandler,
  JobHandlerInterface,
  JobOutcomeKind,
} from '../queue/job-handler.decorator';
import { WebhookEventProcessData } from '../queue/job-data.types';
import { JobName } from '../queue/job-name.enum';
import { SerializationLockService } from '../queue/serialization-lock.service';
import { WebhookProviders } from './webhook-providers';
import { subjectKey } from './webhook.types';

/** Statuses a run may still change; PROCESSED / IGNORED / DEAD are final until an admin replays. */
const OPEN_STATUSES = ['RECEIVED', 'FAILED'] as const;

/**
 * Processes one stored webhook event: normalise it into the hub's internal shape and, under the
 * subject's serialization lock, record the outcome. Idempotent: a second run of a finished event
 * changes nothing. (The lifecycle issue plugs the deal state machine in where the event is marked
 * PROCESSED, inside the same lock.)
 */
@Injectable()
@JobHandler(JobName.WebhookEventProcess)
export class WebhookEventHandler implements JobHandlerInterface<WebhookEventProcessData> {
  constructor(
    private readonly prisma: PrismaService,
    private readonly providers: WebhookProviders,
    private readonly lock: SerializationLockService,
    private readonly metrics: MetricsService,
  ) {}

  async handle(job: Job<WebhookEventProcessData>): Promise<JobOutcomeKind> {
    const { eventId } = job.data;
    const event = await this.prisma.webhookEvent.findUnique({ where: { id: eventId } });
    if (!event) throw new PermanentError(`event ${eventId} does not exist`);
    if (!(OPEN_STATUSES as readonly string[]).includes(event.status)) return 'SKIPPED';

    const normalized = this.providers
      .get(event.provider as WebhookSource)
      .normalize(event.type, event.payload);
    const open = { id: eventId, status: { in: [...OPEN_STATUSES] } };
    if (!normalized) {
      const { count } = await this.prisma.webhookEvent.updateMany({
        where: open,
        data: {
          status: 'IGNORED',
          processedAt: new Date(),
          attempts: { increment: 1 },
          lastError: null,
        },
      });
      return count === 1 ? 'IGNORED' : 'SKIPPED';
    }
    const key = subjectKey(normalized.subject) ?? `event:${eventId}`;
    return this.lock.withLock(key, async () => {
      const { count } = await this.prisma.webhookEvent.updateMany({
        where: open,
        data: {
          status: 'PROCESSED',
          processedAt: new Date(),
          attempts: { increment: 1 },
          normalized: normalized as unknown as Prisma.InputJsonValue,
          subjectKey: key,
          dealId: normalized.subject.dealId ?? null,
          lastError: null,
        },
      });
      if (count === 0) return 'SKIPPED';
      this.metrics.eventProcessed(event.provider, event.receivedAt);
      return 'SUCCEEDED';
    });
  }

  async onFailure(
    job: Job<WebhookEventProcessData>,
    failure: JobFailure,
    tx: Prisma.TransactionClient,
  ) {
    await tx.webhookEvent.updateMany({
      where: { id: job.data.eventId, status: { in: [...OPEN_STATUSES] } },
      data: {
        status: failure.final ? 'DEAD' : 'FAILED',
        attempts: { increment: 1 },
        lastError: failure.error,
      },
    });
  }
}
