import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { PermanentError } from '../../common/errors';
import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../observability/metrics.service';
import {
  StandardWebhookClient,
  StandardWebhookTarget,
  mapStandardWebhookError,
} from './standard-webhook.client';

const TARGET: StandardWebhookTarget = {
  provider: 'report-webhook',
  label: 'report webhook',
  urlSetting: 'REFERRAL_REPORT_WEBHOOK_URL',
  secretSetting: 'REFERRAL_REPORT_WEBHOOK_SECRET',
};

/** One outbound report (CONTRACT §5). */
export interface OutboundReport {
  /** Stable per report: sent as `webhook-id`, so receivers dedupe retries. */
  reportId: string;
  /** Report kind, e.g. `won` or `confirmed_amount`. */
  kind: string;
  /** Event type, e.g. `referral.report.confirmed_amount`. */
  type: string;
  /** The report's fields (CONTRACT §5); `reportId` and `kind` are added when missing. */
  data: Record<string, unknown>;
}

/**
 * Generic signed outbound reports (CONTRACT §5): a Standard Webhooks POST (provider-facts §5) of
 * `{ type, data }` to REFERRAL_REPORT_WEBHOOK_URL, signed with REFERRAL_REPORT_WEBHOOK_SECRET.
 * `webhook-id` is the report's stable `reportId`, so every retry of a report carries the same id.
 * Sending and failure classification are StandardWebhookClient's (shared with the alerts): any
 * 2xx is delivered; network, timeout, 408/409/425/429/5xx are transient (Retry-After honoured);
 * 410, 3xx, other 4xx and an unconfigured webhook are permanent. The constructor never throws.
 */
@Injectable()
export class ReportWebhookClient {
  private readonly webhook: StandardWebhookClient;

  constructor(config: AppConfig, metrics: MetricsService, logger: PinoLogger) {
    logger.setContext(ReportWebhookClient.name);
    this.webhook = new StandardWebhookClient(TARGET, config, metrics, logger);
  }

  async send(report: OutboundReport): Promise<void> {
    await this.webhook.send(
      { id: report.reportId, type: report.type, data: reportData(report) },
      { reportId: report.reportId, kind: report.kind },
    );
  }
}

/** `data` with the report's id and kind; a conflicting value in `data` is a bug, not a retry. */
function reportData(report: OutboundReport): Record<string, unknown> {
  if (typeof report.type !== 'string' || report.type === '') {
    throw new PermanentError(`report ${report.reportId} has no type`);
  }
  const data = report.data ?? {};
  for (const key of ['reportId', 'kind'] as const) {
    if (data[key] !== undefined && data[key] !== report[key]) {
      throw new PermanentError(
        `report ${report.reportId}: data.${key} ${JSON.stringify(data[key])} differs from ${JSON.stringify(report[key])}`,
      );
    }
  }
  return { reportId: report.reportId, kind: report.kind, ...data };
}

/** A non-2xx answer of the report receiver → TransientError | PermanentError (provider-facts §5). */
export function mapReportWebhookError(
  status: number,
  headers: Headers,
  text: string,
  now = Date.now(),
): Error {
  return mapStandardWebhookError(TARGET, status, headers, text, now);
}
