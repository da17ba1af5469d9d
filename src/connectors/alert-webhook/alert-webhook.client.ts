import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../observability/metrics.service';
import { AlertChannelPort, OutboundAlert } from '../../ports/alert-channel.port';
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

/**
 * Signed alerts: a Standard Webhooks POST of
 * `{ "type": "alert.<kind>", "data": { alertId, kind, cause, message, dealId?, details?, raisedAt } }`
 * to ALERT_WEBHOOK_URL, signed with ALERT_WEBHOOK_SECRET, `webhook-id` = the alert id. Sending and
 * failure classification are StandardWebhookClient's, exactly as for reports, so alert jobs retry
 * and dead-letter like every provider call.
 */
@Injectable()
export class AlertWebhookClient implements AlertChannelPort {
  readonly provider = 'alert-webhook';
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
