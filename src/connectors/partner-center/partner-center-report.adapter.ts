import { Injectable } from '@nestjs/common';

import { ReportData } from '../../domain/report';
import { Report } from '../../generated/prisma/client';
import { DeliveryResult, ReferralPlatformPort } from '../../ports/referral-platform.port';
import { PartnerCenterClient, statusPatch } from './partner-center.client';
import { PartnerCenterStatusKind } from './partner-center.types';

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
export class PartnerCenterReportAdapter extends ReferralPlatformPort {
  readonly channel = 'partner-center' as const;

  constructor(private readonly client: PartnerCenterClient) {
    super();
  }

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
