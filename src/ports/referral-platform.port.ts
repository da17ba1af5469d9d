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
  /** The platform's answer-by time, as it wrote it, and the field it came from. */
  deadline?: string;
  deadlineField?: 'expirationDateTime' | 'respondBy';
  createdAt?: Date;
  updatedAt?: Date;
  acceptedAt?: Date;
  /** The id the referral carries from the partner's own system (Partner Center `externalReferenceId`). */
  externalReference?: string;
  /** The platform's own record, kept as the referral's snapshot. */
  raw: unknown;
}

/** The inbound side of a referral platform whose webhook only names the referral (Partner Center). */
export abstract class ReferralSourcePort {
  abstract readonly platform: string;
  abstract readReferral(referralId: string): Promise<PlatformReferral>;
}

/**
 * An outbound referral the hub creates on a platform for a CRM deal (Partner Center co-sell,
 * CONTRACT §5), in the hub's words. What the CRM does not hold is absent; the platform's adapter
 * says which of its required fields are missing ({@link OutboundReferralPort.missing}).
 */
export interface OutboundReferral {
  /** The CRM deal id: sent as the platform's external reference, by which a lost answer is found. */
  externalReference: string;
  title: string;
  customer: {
    name?: string | null;
    address?: {
      line1?: string | null;
      line2?: string | null;
      city?: string | null;
      state?: string | null;
      postalCode?: string | null;
      /** A country name or ISO 3166 code, as typed into the CRM. */
      country?: string | null;
    } | null;
  };
  /** The deal's contact, made the customer's team member. */
  contact?: {
    firstName?: string | null;
    lastName?: string | null;
    email?: string | null;
    phone?: string | null;
  } | null;
  /** Smallest currency unit. */
  value?: number | null;
  /** ISO 4217, any case. */
  currency?: string | null;
  /** Expected close date, YYYY-MM-DD. */
  closeDate?: string | null;
  notes: string;
}

/**
 * The outbound side of a referral platform (Partner Center co-sell): create a referral for a CRM
 * deal, and find the ones an earlier attempt created (its answer lost) by the CRM deal id, so a
 * retry never creates a second. Calls throw TransientError / PermanentError as the spine expects.
 */
export abstract class OutboundReferralPort {
  abstract readonly platform: string;
  /** Whether the hub may call the platform (credentials set). */
  abstract configured(): boolean;
  /** The fields the platform requires that the referral lacks, in words for people (empty: none). */
  abstract missing(referral: OutboundReferral): string[];
  /** Referrals already on the platform for this external reference (the CRM deal id). */
  abstract findByExternalReference(externalReference: string): Promise<PlatformReferral[]>;
  /** Creates the referral; returns it as the platform answered. */
  abstract create(referral: OutboundReferral): Promise<PlatformReferral>;
}
