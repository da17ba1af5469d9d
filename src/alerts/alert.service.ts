import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { newId } from '../common/ids';
import { AppConfig } from '../config/app-config';
import { Prisma } from '../generated/prisma/client';
import { JobName } from '../queue/job-name.enum';
import { OutboxService } from '../queue/outbox/outbox.service';
import { ALERT_KINDS, AlertInput } from './alert.types';

/** The outbox job id of an alert's delivery (`|`: BullMQ job ids may not contain ':'). */
export const alertJobId = (alertId: string): string => `alert|${alertId}`;

/**
 * Raises alerts once per cause (CONTRACT §2 ALERT_WEBHOOK_URL): the `alert` row's unique cause is
 * the memory, so a check that runs every few seconds, on every worker, alerts once. A new alert is
 * always logged (warn) and, when ALERT_WEBHOOK_URL is set, its delivery is written to the outbox
 * in the same transaction: the webhook goes out if and only if the alert committed.
 */
@Injectable()
export class AlertService {
  constructor(
    private readonly outbox: OutboxService,
    private readonly config: AppConfig,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(AlertService.name);
  }

  /**
   * Records the alert in the caller's transaction unless its cause was already raised; true if new.
   * A concurrent transaction raising the same cause makes this one wait for it and then return
   * false (ON CONFLICT), so two workers never both alert. The log line is written before the
   * caller commits: a rolled-back caller leaves a logged alert without a row, which raises again.
   */
  async raise(
    tx: Prisma.TransactionClient,
    input: AlertInput,
    /** Joins the alert's log lines and delivery job to what caused it (default: the alert id). */
    correlationId?: string,
  ): Promise<boolean> {
    if (typeof input.cause !== 'string' || input.cause.trim() === '') {
      throw new Error(`alert of kind ${input.kind} has no cause`);
    }
    if (!(ALERT_KINDS as readonly string[]).includes(input.kind)) {
      throw new Error(`unknown alert kind ${JSON.stringify(input.kind)} (cause ${input.cause})`);
    }
    const id = newId('alr');
    const details = input.details === undefined ? null : JSON.stringify(input.details);
    const inserted = await tx.$queryRaw<{ id: string }[]>`
      INSERT INTO alert (id, cause, kind, message, details, deal_id)
      VALUES (${id}, ${input.cause}, ${input.kind}, ${input.message}, ${details}::jsonb,
              ${input.dealId ?? null})
      ON CONFLICT (cause) DO NOTHING
      RETURNING id`;
    if (inserted.length === 0) return false;

    const correlation = correlationId ?? `alert-${id}`;
    // Details stay out of the log: they may name customers (CONTRACT §7 redaction).
    this.logger.warn(
      {
        alertId: id,
        kind: input.kind,
        cause: input.cause,
        dealId: input.dealId,
        message: input.message,
        correlationId: correlation,
      },
      'alert raised',
    );
    if (this.config.env.ALERT_WEBHOOK_URL) {
      await this.outbox.enqueue(tx, JobName.AlertDeliver, alertJobId(id), {
        correlationId: correlation,
        alertId: id,
      });
    }
    return true;
  }
}
