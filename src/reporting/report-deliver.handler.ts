import { Inject, Injectable } from '@nestjs/common';
import { Job } from 'bullmq';

import { Clock } from '../common/clock';
import { PermanentError } from '../common/errors';
import { Prisma, ReportStatus } from '../generated/prisma/client';
import { addTimeline } from '../timeline/timeline';
import { PrismaService } from '../prisma/prisma.service';
import {
  JobFailure,
  JobHandler,
  JobHandlerInterface,
  JobOutcomeKind,
} from '../queue/job-handler.decorator';
import { ReportDeliverData } from '../queue/job-data.types';
import { JobName } from '../queue/job-name.enum';
import { SerializationLockService } from '../queue/serialization-lock.service';
import {
  DeliveryResult,
  REFERRAL_PLATFORM_ADAPTERS,
  ReferralPlatformPort,
} from '../ports/referral-platform.port';

/** Statuses in which an automatic report still has to be delivered (DEAD: an admin replayed it). */
const DELIVERABLE: ReportStatus[] = ['PENDING', 'FAILED', 'DEAD'];

/**
 * Delivers one report through its channel's adapter, at least once: the row says REPORTED only
 * after the platform acknowledged, and a repeat is harmless (Partner Center is read before it is
 * patched; webhook receivers dedupe on webhook-id = reportId). One deal's reports go one at a time,
 * so Partner Center's eTag is not raced by the deal's own reports.
 */
@Injectable()
@JobHandler(JobName.ReportDeliver)
export class ReportDeliverHandler implements JobHandlerInterface<ReportDeliverData> {
  private readonly adapters: Record<string, ReferralPlatformPort>;

  constructor(
    private readonly prisma: PrismaService,
    private readonly lock: SerializationLockService,
    private readonly clock: Clock,
    @Inject(REFERRAL_PLATFORM_ADAPTERS) adapters: ReferralPlatformPort[],
  ) {
    this.adapters = Object.fromEntries(adapters.map((a) => [a.channel, a]));
  }

  handle(job: Job<ReportDeliverData>): Promise<JobOutcomeKind> {
    const { reportId, dealId } = job.data;
    return this.lock.withLock(`reports:${dealId}`, async () => {
      const report = await this.prisma.report.findUnique({ where: { id: reportId } });
      if (!report) throw new PermanentError(`report ${reportId} does not exist`);
      if (!DELIVERABLE.includes(report.status)) return 'SKIPPED';
      // Not before its time (Partner Center's deal-registration wait): the report timer queues it
      // again when the time comes; an early job (a recovery sweep's) sends nothing.
      if (report.notBefore && report.notBefore > this.clock.now()) return 'SKIPPED';
      const adapter = this.adapters[report.channel];
      if (!adapter) return 'SKIPPED'; // the manual queue is worked by people, not jobs
      const result = await adapter.deliver(report);
      await this.recordDelivered(report.id, report.dealId, report.kind, report.platform, result);
      return 'SUCCEEDED';
    });
  }

  private async recordDelivered(
    id: string,
    dealId: string,
    kind: string,
    platform: string,
    result: DeliveryResult,
  ): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.report.updateMany({
        where: { id, status: { in: DELIVERABLE } },
        data: {
          status: result.status,
          deliveredAt: result.status === 'REPORTED' ? this.clock.now() : null,
          attempts: { increment: 1 },
          lastError: result.status === 'NOT_APPLICABLE' ? result.reason : null,
          // The channel answered: the dashboard's "last success" of the channel (an operational
          // instant, like job_attempt.finished_at, so not the business clock).
          channelSucceededAt: new Date(),
        },
      });
      if (count === 0) return;
      const referral = result.referral;
      if (referral) {
        await tx.referral.updateMany({
          where: { platform, externalId: referral.id },
          data: {
            eTag: referral.eTag ?? undefined,
            platformStatus: referral.status ?? undefined,
            platformSubstatus: referral.substatus ?? undefined,
          },
        });
      }
      await addTimeline(tx, {
        dealId,
        kind: 'report',
        message:
          result.status === 'REPORTED'
            ? `${kind} reported to ${platform}`
            : `${kind} not applicable on ${platform}: ${result.reason}`,
        cause: `report ${id}`,
        details: { reportId: id },
      });
    });
  }

  async onFailure(
    job: Job<ReportDeliverData>,
    failure: JobFailure,
    tx: Prisma.TransactionClient,
  ): Promise<void> {
    const { reportId, dealId } = job.data;
    const { count } = await tx.report.updateMany({
      where: { id: reportId, status: { in: DELIVERABLE } },
      data: {
        status: failure.final ? 'DEAD' : 'FAILED',
        attempts: { increment: 1 },
        lastError: failure.error,
      },
    });
    if (count === 1 && failure.final) {
      await addTimeline(tx, {
        dealId,
        kind: 'report',
        message: `report ${reportId} not delivered: ${failure.error} (dead letter; replay it after fixing the cause)`,
        cause: `report ${reportId}`,
        details: { reportId },
      });
    }
  }
}
