import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../observability/metrics.service';
import {
  StandardWebhookClient,
  StandardWebhookTarget,
} from '../report-webhook/standard-webhook.client';

const TARGET: StandardWebhookTarget = {
  provider: 'alert-webhook',
  label: 'alert webhook',
  urlSetting: 'ALERT_WEBHOOK_URL',
  secretSetting: 'ALERT_WEBHOOK_SECRET',
};

/** One alert as it leaves the hub (CONTRACT §2 ALERT_WEBHOOK_URL). */
export interface OutboundAlert {
  /** Stable per alert: sent as `webhook-id`, so receivers dedupe retries. */
  alertId: string;
  /** e.g. `dead_letters.growing`; the message type is `alert.<kind>`. */
  kind: string;
  /** Why it was raised, unique per alert (e.g. `provider.failing|stripe|2026-11-23T08`). */
  cause: string;
  message: string;
  dealId?: string | null;
  details?: Record<string, unknown> | null;
  raisedAt: Date;
}

/**
 * Signed alerts: a Standard Webhooks POST of
 * `{ "type": "alert.<kind>", "data": { alertId, kind, cause, message, dealId?, details?, raisedAt } }`
 * to ALERT_WEBHOOK_URL, signed with ALERT_WEBHOOK_SECRET, `webhook-id` = the alert id. Sending and
 * failure classification are StandardWebhookClient's, exactly as for reports, so alert jobs retry
 * and dead-letter like every provider call.
 */
@Injectable()
export class AlertWebhookClient {
  private readonly webhook: StandardWebhookClient;

  constructor(config: AppConfig, metrics: MetricsService, logger: PinoLogger) {
    logger.setContext(AlertWebhookClient.name);
    this.webhook = new StandardWebhookClient(TARGET, config, metrics, logger);
  }

  async send(alert: OutboundAlert): Promise<void> {
    await this.webhook.send(
      { id: alert.alertId, type: `alert.${alert.kind}`, data: alertData(alert) },
      { alertId: alert.alertId, kind: alert.kind, cause: alert.cause },
    );
  }
}

/** The message's `data`: fields that do not apply (no deal, no details) are omitted. */
function alertData(alert: OutboundAlert): Record<string, unknown> {
  return {
    alertId: alert.alertId,
    kind: alert.kind,
    cause: alert.cause,
    message: alert.message,
    ...(alert.dealId ? { dealId: alert.dealId } : {}),
    ...(alert.details ? { details: alert.details } : {}),
    raisedAt: alert.raisedAt.toISOString(),
  };
}
