import { Injectable } from '@nestjs/common';

import {
  PartnerCenterClient,
  statusPatch,
} from '../connectors/partner-center/partner-center.client';
import {
  Referral,
  PartnerCenterStatusKind,
} from '../connectors/partner-center/partner-center.types';
import { ReportWebhookClient } from '../connectors/report-webhook/report-webhook.client';
import { Report } from '../generated/prisma/client';
import { ReportChannel, ReportData } from './report.types';

export type DeliveryResult =
  | { status: 'REPORTED'; referral?: Referral }
  | { status: 'NOT_APPLICABLE'; reason: string; referral?: Referral };

/** The port every automatic report channel implements (the manual queue has no adapter). */
export interface ReportAdapter {
  readonly channel: Exclude<ReportChannel, 'manual'>;
  /** Delivers the report; throws TransientError / PermanentError as the spine expects. Safe to repeat. */
  deliver(report: Report): Promise<DeliveryResult>;
}

/** Report kinds that set a referral's status on Partner Center (CONTRACT §5). */
const PC_KINDS: Partial<Record<string, PartnerCenterStatusKind>> = {
  appointment: 'appointment',
  won: 'won',
  lost: 'lost',
  declined: 'declined',
};

/**
 * Partner Center: a JSON Patch of status / substatus (/details/dealValue and /details/currency for
 * won) with the referral's current eTag as If-Match. The referral is read first, so a repeat of a
 * report that already took effect sends nothing, and a report the referral can no longer take
 * (Partner Center cannot reopen a closed referral) is recorded as not applicable.
 */
@Injectable()
export class PartnerCenterReportAdapter implements ReportAdapter {
  readonly channel = 'partner-center' as const;

  constructor(private readonly client: PartnerCenterClient) {}

  async deliver(report: Report): Promise<DeliveryResult> {
    const kind = PC_KINDS[report.kind];
    if (!kind) {
      return {
        status: 'NOT_APPLICABLE',
        reason:
          report.kind === 'lost_withdrawn'
            ? 'Partner Center cannot reopen a closed referral'
            : `Partner Center has no ${report.kind} report`,
      };
    }
    const data = report.data as unknown as ReportData;
    const ops = statusPatch(kind, { dealValue: data.amountExTax, currency: data.currency });
    if (!ops) return { status: 'NOT_APPLICABLE', reason: `no Partner Center status for ${kind}` };
    const referralId = report.referralId ?? data.referralId;
    if (!referralId) return { status: 'NOT_APPLICABLE', reason: 'the deal has no referral id' };
    const current = await this.client.getReferral(referralId);
    const wanted = Object.fromEntries(ops.map((o) => [o.path, o.value]));
    const sameStatus =
      current.status === wanted['/status'] && current.substatus === wanted['/substatus'];
    const sameValue =
      wanted['/details/dealValue'] === undefined ||
      String(current.details?.dealValue) === String(wanted['/details/dealValue']);
    if (sameStatus && sameValue) return { status: 'REPORTED', referral: current };
    if (current.status === 'Closed' && wanted['/status'] !== 'Closed') {
      return {
        status: 'NOT_APPLICABLE',
        reason: `the referral is already ${current.status}/${current.substatus ?? 'None'} on Partner Center`,
        referral: current,
      };
    }
    const updated = await this.client.patchReferral(referralId, ops, current.eTag ?? undefined);
    return { status: 'REPORTED', referral: updated };
  }
}

/** The generic signed webhook (Standard Webhooks, `webhook-id` = reportId). */
@Injectable()
export class WebhookReportAdapter implements ReportAdapter {
  readonly channel = 'webhook' as const;

  constructor(private readonly client: ReportWebhookClient) {}

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
