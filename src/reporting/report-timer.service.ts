import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { AlertService } from '../alerts/alert.service';
import { JobName } from '../queue/job-name.enum';
import { OutboxService } from '../queue/outbox/outbox.service';
import { Clock } from '../common/clock';
import { PeriodicPass } from '../common/periodic-pass';
import { AppConfig } from '../config/app-config';
import { addTimeline } from '../timeline/timeline';
import { PrismaService } from '../prisma/prisma.service';
import { REPORT_KIND_LABELS } from './report-fields';
import { ReportKind } from '../domain/report';

/** Tasks flipped per pass; the rest wait for the next pass (a tick is LIFECYCLE_TIMER_MS). */
const BATCH = 500;

/**
 * The reports' clock.
 *
 * Held reports: an automatic report recorded with `notBefore` (a won report waiting out Partner
 * Center's deal-registration window, docs/decisions/0013) gets its delivery job once that instant
 * passes — read from Postgres each pass, so a Redis that forgot anything changes nothing. The
 * release is a conditional UPDATE (still PENDING, not released yet), so any number of workers
 * queue it once.
 *
 * The manual queue (CONTRACT §6: a task becomes OVERDUE within a minute of its dueAt):
 * PENDING manual reports whose deadline passed turn OVERDUE, with a timeline entry and a
 * `report.overdue` alert, all in one transaction per report.
 *
 * Every worker runs it. The flip is a conditional UPDATE (still PENDING, same dueAt), so two
 * workers flip a task once and only the winner writes the timeline and raises the alert; the
 * alert's cause carries the deadline, so a task postponed and overdue again alerts again.
 */
@Injectable()
export class ReportTimerService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly ticker: PeriodicPass;

  constructor(
    private readonly prisma: PrismaService,
    private readonly alerts: AlertService,
    private readonly outbox: OutboxService,
    config: AppConfig,
    private readonly logger: PinoLogger,
    clock: Clock,
  ) {
    logger.setContext(ReportTimerService.name);
    this.ticker = new PeriodicPass(
      config.env.LIFECYCLE_TIMER_MS,
      clock,
      (now) => this.runOnce(now),
      (err) => this.logger.warn({ err: err.message }, 'report timer failed'),
    );
  }

  onApplicationBootstrap(): void {
    this.ticker.start();
  }

  onModuleDestroy(): Promise<void> {
    return this.ticker.stop();
  }

  /**
   * One pass; returns how many held reports this pass queued and how many tasks it turned OVERDUE
   * (tests call it with a chosen clock).
   */
  async runOnce(now: Date): Promise<{ released: number; overdue: number }> {
    const released = await this.releaseHeld(now);
    const { overdue } = await this.flipOverdue(now);
    return { released, overdue };
  }

  /** Automatic reports whose notBefore passed: their delivery job, once. */
  private async releaseHeld(now: Date): Promise<number> {
    const held = await this.prisma.report.findMany({
      where: { channel: { not: 'manual' }, status: 'PENDING', notBefore: { lte: now } },
      select: { id: true, dealId: true, notBefore: true, updatedAt: true, kind: true },
      orderBy: { notBefore: 'asc' },
      take: BATCH,
    });
    let released = 0;
    for (const report of held) {
      const notBefore = report.notBefore!;
      // Released already: the release stamps updatedAt with its instant (≥ notBefore).
      if (report.updatedAt >= notBefore) continue;
      const queued = await this.prisma
        .$transaction(async (tx) => {
          const { count } = await tx.report.updateMany({
            where: { id: report.id, status: 'PENDING', updatedAt: { lt: notBefore } },
            data: { updatedAt: now },
          });
          if (count === 0) return false;
          await this.outbox.enqueue(
            tx,
            JobName.ReportDeliver,
            `report|${report.id}|after|${notBefore.getTime()}`,
            { correlationId: `timer-${report.id}`, reportId: report.id, dealId: report.dealId },
          );
          await addTimeline(tx, {
            dealId: report.dealId,
            kind: 'report',
            message: `${report.kind} report released: its wait ended at ${notBefore.toISOString()}`,
            cause: 'timer: report not before',
            details: { reportId: report.id, notBefore: notBefore.toISOString() },
          });
          return true;
        })
        .catch((err: Error) => {
          this.logger.warn({ reportId: report.id, err: err.message }, 'held report release failed');
          return false;
        });
      if (queued) released++;
    }
    if (released > 0) this.logger.info({ released }, 'held reports released');
    return released;
  }

  private async flipOverdue(now: Date): Promise<{ overdue: number }> {
    const due = await this.prisma.report.findMany({
      where: { channel: 'manual', status: 'PENDING', dueAt: { lte: now } },
      select: { id: true, dealId: true, kind: true, platform: true, dueAt: true },
      orderBy: { dueAt: 'asc' },
      take: BATCH,
    });
    let overdue = 0;
    for (const report of due) {
      // One task's failure (e.g. a lock timeout) must not hold back the others: it is retried next pass.
      const flipped = await this.flip(report as typeof report & { dueAt: Date }).catch(
        (err: Error) => {
          this.logger.warn({ reportId: report.id, err: err.message }, 'overdue flip failed');
          return false;
        },
      );
      if (flipped) overdue++;
    }
    if (overdue > 0) this.logger.info({ overdue }, 'manual reports overdue');
    return { overdue };
  }

  private async flip(report: {
    id: string;
    dealId: string;
    kind: string;
    platform: string;
    dueAt: Date;
  }): Promise<boolean> {
    return this.prisma.$transaction(async (tx) => {
      const { count } = await tx.report.updateMany({
        where: { id: report.id, channel: 'manual', status: 'PENDING', dueAt: report.dueAt },
        data: { status: 'OVERDUE' },
      });
      if (count === 0) return false;
      const label = REPORT_KIND_LABELS[report.kind as ReportKind] ?? {
        ja: report.kind,
        en: report.kind,
      };
      const due = report.dueAt.toISOString();
      await addTimeline(tx, {
        dealId: report.dealId,
        kind: 'report',
        message: `${label.ja} (${label.en}) for ${report.platform} is overdue: it was due ${due}`,
        cause: 'timer: report deadline',
        details: { reportId: report.id, dueAt: due, from: 'PENDING', to: 'OVERDUE' },
      });
      await this.alerts.raise(tx, {
        cause: `report.overdue|${report.id}|${due}`,
        kind: 'report.overdue',
        message: `${label.ja} (${label.en}) for ${report.platform} on deal ${report.dealId} is overdue (due ${due})`,
        dealId: report.dealId,
        details: { reportId: report.id, kind: report.kind, platform: report.platform, dueAt: due },
      });
      return true;
    });
  }
}
