import { Injectable } from '@nestjs/common';
import { Job } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';

import { Clock } from '../common/clock';
import { AlertChannelPort } from '../ports/alert-channel.port';
import { PrismaService } from '../prisma/prisma.service';
import { AlertDeliverData } from '../queue/job-data.types';
import { JobHandler, JobHandlerInterface, JobOutcomeKind } from '../queue/job-handler.decorator';
import { JobName } from '../queue/job-name.enum';

/**
 * Delivers one alert to ALERT_WEBHOOK_URL. At least once: the webhook-id is the alert id, so a
 * retry after a lost answer (or a crash before deliveredAt is written) is deduplicated by the
 * receiver. Failures are the client's TransientError/PermanentError, so the spine retries with
 * backoff and dead-letters like any provider call; an unset URL at delivery time is permanent
 * (the dead letter can be replayed once it is set).
 */
@Injectable()
@JobHandler(JobName.AlertDeliver)
export class AlertDeliverHandler implements JobHandlerInterface<AlertDeliverData> {
  constructor(
    private readonly prisma: PrismaService,
    private readonly client: AlertChannelPort,
    private readonly clock: Clock,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(AlertDeliverHandler.name);
  }

  async handle(job: Job<AlertDeliverData>): Promise<JobOutcomeKind> {
    const { alertId, correlationId } = job.data;
    const alert = await this.prisma.alert.findUnique({ where: { id: alertId } });
    if (!alert) {
      // The job is written with the row; only a deleted row gets here, and there is nothing to send.
      this.logger.warn({ alertId, correlationId }, 'alert to deliver no longer exists');
      return 'IGNORED';
    }
    if (alert.deliveredAt) return 'SKIPPED';

    await this.client.send({
      alertId: alert.id,
      kind: alert.kind,
      cause: alert.cause,
      message: alert.message,
      dealId: alert.dealId,
      details: alert.details as Record<string, unknown> | null,
      raisedAt: alert.createdAt,
    });
    await this.prisma.alert.updateMany({
      where: { id: alert.id, deliveredAt: null },
      data: { deliveredAt: this.clock.now() },
    });
    this.logger.info({ alertId, correlationId, cause: alert.cause }, 'alert delivered');
    return 'SUCCEEDED';
  }
}
