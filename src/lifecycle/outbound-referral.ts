import { newId } from '../common/ids';
import { Deal, Prisma } from '../generated/prisma/client';
import { PlatformReferral } from '../ports/referral-platform.port';
import { addTimeline } from '../timeline/timeline';
import { LifecycleContext, Tx } from './lifecycle.types';

/** How the hub came to know an outbound referral it asked for. */
export type OutboundHow = 'created' | 'found' | 'announced';

const HOW: Record<OutboundHow, string> = {
  created: 'created',
  found: 'found (an earlier attempt had created it)',
  announced: 'announced by its webhook',
};

/**
 * Records the outbound (co-sell) referral a deal asked for and links the deal to it (CONTRACT §5;
 * docs/decisions/0014): the referral row (direction outbound, ACCEPTED — the hub created it, there
 * is nothing to answer — with the platform's creation time, for the deal-registration wait before
 * Won, and its eTag) and the deal's referral_platform / referral_id, in the caller's transaction
 * with the deal's row locked. From then on the deal reports to its referral like any referral deal.
 *
 * Returns `linked`; `already` when the deal already has this referral (an earlier run, or its
 * webhook, got there first); or the conflict, in words for people, when the deal has another
 * referral or the referral belongs to another deal (nothing is changed: a person decides).
 */
export async function attachOutboundReferral(
  tx: Tx,
  deal: Deal,
  platform: string,
  referral: PlatformReferral,
  how: OutboundHow,
  ctx: LifecycleContext,
  now: Date,
): Promise<'linked' | 'already' | { conflict: string }> {
  if (deal.referralId) {
    if (deal.referralPlatform === platform && deal.referralId === referral.id) return 'already';
    return {
      conflict: `co-sell referral ${referral.id} is on ${platform}, but the deal already has referral ${deal.referralPlatform} ${deal.referralId}: not linked`,
    };
  }
  const owner = await tx.deal.findUnique({
    where: { referralPlatform_referralId: { referralPlatform: platform, referralId: referral.id } },
    select: { id: true },
  });
  const row = await tx.referral.findUnique({
    where: { platform_externalId: { platform, externalId: referral.id } },
    select: { dealId: true },
  });
  const taken = owner?.id ?? row?.dealId;
  if (taken && taken !== deal.id) {
    return {
      conflict: `co-sell referral ${referral.id} on ${platform} belongs to deal ${taken}: not linked`,
    };
  }
  await tx.deal.update({
    where: { id: deal.id },
    data: { referralPlatform: platform, referralId: referral.id, version: { increment: 1 } },
  });
  // (A row of this deal without the deal's link can only be a half-finished manual repair.)
  if (!row)
    await tx.referral.create({
      data: {
        id: newId('ref'),
        platform,
        externalId: referral.id,
        dealId: deal.id,
        state: 'ACCEPTED',
        direction: 'outbound',
        title: referral.title,
        customerName: referral.customerName ?? deal.companyName ?? deal.customerName,
        customerEmail: referral.customerEmail ?? deal.customerEmail,
        estimatedValue: referral.estimatedValue ?? null,
        currency: referral.currency ?? deal.currency,
        platformStatus: referral.status ?? null,
        platformSubstatus: referral.substatus ?? null,
        eTag: referral.eTag ?? null,
        receivedAt: now,
        respondedAt: referral.acceptedAt ?? referral.createdAt ?? now,
        platformCreatedAt: referral.createdAt ?? null,
        snapshot: referral.raw as Prisma.InputJsonValue,
      },
    });
  await addTimeline(tx, {
    dealId: deal.id,
    kind: 'referral',
    message:
      `co-sell referral ${referral.id} ${HOW[how]} on ${platform}` +
      (referral.status ? ` (${referral.status}/${referral.substatus ?? 'None'})` : '') +
      `: the deal now reports to it`,
    cause: ctx.cause,
    eventId: ctx.eventId,
    details: { referralId: referral.id, platform, direction: 'outbound' },
  });
  return 'linked';
}
