import { Injectable } from '@nestjs/common';

import { ReportData } from '../../domain/report';
import { Report } from '../../generated/prisma/client';
import { DeliveryResult, ReferralPlatformPort } from '../../ports/referral-platform.port';
import { PartnerCenterClient, statusPatch } from './partner-center.client';
import { PartnerCenterStatusKind } from './partner-center.types';

/** Report kinds that set a referral's status on Partner Center (CONTRACT §5; docs/decisions/0013). */
const PC_KINDS: Partial<Record<string, PartnerCenterStatusKind>> = {
  appointment: 'appointment',
  won: 'won',
  lost: 'lost',
  declined: 'declined',
  expired: 'expired',
  in_evaluation: 'in_evaluation',
};

/** How far along a status is: a referral never goes back (New → Active → Closed). */
const STATUS_ORDER: Record<string, number> = { None: 0, New: 1, Active: 2, Closed: 3 };

/**
 * Partner Center: a JSON Patch of status / substatus — with the deal value, currency and closing
 * date when accepting and winning, and a statusReason on every close — with the referral's current
 * eTag as If-Match. The referral is read first, so a repeat of a report that already took effect
 * sends nothing, and a report the referral can no longer take (Partner Center cannot reopen a
 * closed referral, nor move one back to an earlier status) is recorded as not applicable.
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
    const ops = statusPatch(kind, {
      dealValue: kind === 'won' ? data.amountExTax : data.dealValue,
      currency: data.currency,
      closingDate: data.closingDate,
      reason: data.reason,
    });
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
    const sameClosing =
      wanted['/details/closingDateTime'] === undefined ||
      sameInstant(current.details?.closingDateTime, wanted['/details/closingDateTime']);
    // A closed referral is final on Partner Center: nothing more is written to it.
    if (sameStatus && (current.status === 'Closed' || (sameValue && sameClosing))) {
      return { status: 'REPORTED', referral: current };
    }
    const from = STATUS_ORDER[current.status ?? 'None'] ?? 0;
    const to = STATUS_ORDER[String(wanted['/status'])] ?? 0;
    if (current.status === 'Closed' || from > to) {
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

function sameInstant(a: unknown, b: unknown): boolean {
  const x = typeof a === 'string' ? Date.parse(a) : NaN;
  const y = typeof b === 'string' ? Date.parse(b) : NaN;
  return !Number.isNaN(x) && x === y;
}
