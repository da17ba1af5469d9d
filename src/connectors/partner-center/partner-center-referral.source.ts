import { Injectable } from '@nestjs/common';

import { MoneyError, toAmount } from '../../domain/money';
import { PlatformReferral, ReferralSourcePort } from '../../ports/referral-platform.port';
import { PartnerCenterClient } from './partner-center.client';
import { Referral } from './partner-center.types';

/**
 * Partner Center as a referral source (CONTRACT §3.5): its webhook only names the referral, so the
 * event pipeline reads it here, outside any transaction, and the lifecycle gets it in the hub's words.
 */
@Injectable()
export class PartnerCenterReferralSource extends ReferralSourcePort {
  readonly platform = 'partner-center';

  constructor(private readonly client: PartnerCenterClient) {
    super();
  }

  async readReferral(referralId: string): Promise<PlatformReferral> {
    return platformReferralOf(await this.client.getReferral(referralId));
  }
}

/** A Partner Center referral resource in the hub's words. */
export function platformReferralOf(r: Referral): PlatformReferral {
  const currency = r.details?.currency?.toLowerCase() ?? undefined;
  let estimatedValue: number | undefined;
  if (r.details?.dealValue !== undefined && r.details.dealValue !== null && currency) {
    try {
      estimatedValue = toAmount(String(r.details.dealValue), currency);
    } catch (err) {
      if (!(err instanceof MoneyError)) throw err;
    }
  }
  const contact = r.customerProfile?.team?.[0];
  return {
    id: r.id,
    title: r.name ?? r.customerProfile?.name ?? `Partner Center referral ${r.id}`,
    customerName: r.customerProfile?.name ?? undefined,
    customerEmail: contact?.email ?? undefined,
    estimatedValue,
    currency,
    status: r.status ?? undefined,
    substatus: r.substatus ?? undefined,
    eTag: r.eTag ?? undefined,
    deadline: r.expirationDateTime ?? undefined,
    deadlineField: 'expirationDateTime',
    createdAt: date(r.createdDateTime),
    updatedAt: date(r.updatedDateTime),
    acceptedAt: date(r.acceptedDateTime),
    ...(r.externalReferenceId ? { externalReference: r.externalReferenceId } : {}),
    raw: r,
  };
}

function date(value: unknown): Date | undefined {
  if (typeof value !== 'string') return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : new Date(at);
}
