import { ReportChannel } from '../domain/report';
import { Report } from '../generated/prisma/client';

/** The referral as the platform holds it after a delivery (Partner Center: status and eTag). */
export interface PlatformReferralState {
  id: string;
  status?: string | null;
  substatus?: string | null;
  /** The platform's concurrency token, when it has one. */
  eTag?: string | null;
}

export type DeliveryResult =
  | { status: 'REPORTED'; referral?: PlatformReferralState }
  | { status: 'NOT_APPLICABLE'; reason: string; referral?: PlatformReferralState };

/**
 * The referral platform port: one adapter per automatic report channel (Partner Center:
 * src/connectors/partner-center; the signed webhook: src/connectors/report-webhook). The manual
 * queue is the third channel and has no adapter: people work it through the admin API and the
 * dashboard. Delivery is at least once, so an adapter makes a repeat harmless; it throws
 * TransientError / PermanentError as the spine expects.
 */
export abstract class ReferralPlatformPort {
  abstract readonly channel: Exclude<ReportChannel, 'manual'>;
  abstract deliver(report: Report): Promise<DeliveryResult>;
}

/** Every automatic report channel's adapter, as one injectable list (ReportDeliverHandler reads it). */
export const REFERRAL_PLATFORM_ADAPTERS = Symbol('REFERRAL_PLATFORM_ADAPTERS');

/**
 * A referral as its platform describes it, in the hub's words (read from the platform's API when
 * its webhook is thin, as Partner Center's is).
 */
export interface PlatformReferral {
  id: string;
  title: string;
  customerName?: string;
  customerEmail?: string;
  /** Smallest currency unit. */
  estimatedValue?: number;
  /** Lower-case ISO 4217 code. */
  currency?: string;
  status?: string;
  substatus?: string;
  eTag?: string;
  /** The platform's reason for its current status (Partner Center statusReason). */
  statusReason?: string;
  /** The platform's answer-by time, as it wrote it, and the field it came from. */
  deadline?: string;
  deadlineField?: 'expirationDateTime' | 'respondBy';
  createdAt?: Date;
  updatedAt?: Date;
  acceptedAt?: Date;
  /** The platform's own record, kept as the referral's snapshot. */
  raw: unknown;
}

/** The inbound side of a referral platform whose webhook only names the referral (Partner Center). */
export abstract class ReferralSourcePort {
  abstract readonly platform: string;
  abstract readReferral(referralId: string): Promise<PlatformReferral>;
}
