import { Injectable } from '@nestjs/common';

import { Report } from '../../generated/prisma/client';
import { DeliveryResult, ReferralPlatformPort } from '../../ports/referral-platform.port';
import { ReportWebhookClient } from './report-webhook.client';

/** The generic signed webhook (Standard Webhooks, `webhook-id` = reportId). */
@Injectable()
export class WebhookReportAdapter extends ReferralPlatformPort {
  readonly channel = 'webhook' as const;

  constructor(private readonly client: ReportWebhookClient) {
    super();
  }

  async deliver(report: Report): Promise<DeliveryResult> {
    await this.client.send({
      reportId: report.id,
      kind: report.kind,
      type: `referral.report.${report.kind}`,
      data: report.data as Record<string, unknown>,
    });
    return { status: 'REPORTED' };
  }
}
