import { Inject, Injectable } from '@nestjs/common';
import { Job } from 'bullmq';

import { Clock } from '../common/clock';
import { PermanentError } from '../common/errors';
import { platformProfile } from '../domain/platforms';
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
import { ReportRefresher } from './report-refresher.service';

/** Statuses in which an automatic report still has to be delivered (DEAD: an admin replayed it). */
const DELIVERABLE: ReportStatus[] = ['PENDING', 'FAILED', 'DEAD'];
/** Manual tasks still to be entered, whose content the hub may rebuild (a correction is kept). */
const REFRESHABLE_TASK: ReportStatus[] = ['PENDING', 'OVERDUE'];

/**
 * Delivers one report through its channel's adapter, at least once: the row says REPORTED only
 * after the platform acknowledged, and a repeat is harmless (Partner Center is read before it is
 * patched; webhook receivers dedupe on webhook-id = reportId). One deal's reports go one at a time,
 * so Partner Center's eTag is not raced by the deal's own reports. A report is built when it is
 * delivered (ReportRefresher): a confirmed amount states its invoice as it is then, and is not sent
 * while the invoice's number, URLs or own tax are unknown. For a manual task the same job only
 * rebuilds it (the manual queue is worked by people).
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
    private readonly refresher: ReportRefresher,
  ) {
    this.adapters = Object.fromEntries(adapters.map((a) => [a.channel, a]));
  }

  handle(job: Job<ReportDeliverData>): Promise<JobOutcomeKind> {
    const { reportId, dealId } = job.data;
    return this.lock.withLock(`reports:${dealId}`, async () => {
      let report = await this.prisma.report.findUnique({ where: { id: reportId } });
      if (!report) throw new PermanentError(`report ${reportId} does not exist`);
      const adapter = this.adapters[report.channel];
      if (!adapter) {
        // The manual queue is worked by people: the job only rebuilds the task from its facts.
        if (!REFRESHABLE_TASK.includes(report.status)) return 'SKIPPED';
        await this.refresher.refresh(report);
        await this.prisma.report.updateMany({
          where: { id: report.id, lastError: { not: null } },
          data: { lastError: null },
        });
        return 'SUCCEEDED';
      }
      if (!DELIVERABLE.includes(report.status)) return 'SKIPPED';
      // Not before its time (Partner Center's deal-registration wait): the report timer queues it
      // again when the time comes; an early job (a recovery sweep's) sends nothing.
      if (report.notBefore && report.notBefore > this.clock.now()) return 'SKIPPED';
      // A kind the platform does not take is not built: the adapter says it is not applicable.
      const takes: readonly string[] = platformProfile(report.platform).reportKinds;
      if (takes.includes(report.kind)) {
        report = await this.refresher.refresh(report);
      }
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
    // A manual task's rebuild that failed leaves the task as it is, and says why.
    await tx.report.updateMany({
      where: { id: reportId, channel: 'manual' },
      data: { lastError: failure.error },
    });
    const { count } = await tx.report.updateMany({
      where: { id: reportId, status: { in: DELIVERABLE }, channel: { not: 'manual' } },
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
