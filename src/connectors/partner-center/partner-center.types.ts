/**
 * The parts of a Partner Center referral (co-sell) resource the hub reads (provider-facts §4.2).
 * Fields Partner Center may omit are optional; nothing here is validated beyond `id` being a string.
 */

/** `status` enum (provider-facts §4.2). */
export type ReferralStatus = 'None' | 'New' | 'Active' | 'Closed';

/** `substatus` enum (provider-facts §4.2; `Engaged` is not documented). */
export type ReferralSubstatus =
  'None' | 'Pending' | 'Received' | 'Accepted' | 'Won' | 'Lost' | 'Declined' | 'Expired';

export type ReferralType = 'Independent' | 'Shared';

export type ReferralQualification = 'None' | 'Direct' | 'MarketingQualified' | 'SalesQualified';

export interface ReferralMember {
  firstName?: string | null;
  lastName?: string | null;
  phoneNumber?: string | null;
  email?: string | null;
  contactPreference?: { locale?: string | null; disableNotifications?: boolean | null } | null;
}

export interface ReferralCustomerProfile {
  name?: string | null;
  team?: ReferralMember[] | null;
  [other: string]: unknown;
}

export interface ReferralDetails {
  notes?: string | null;
  /** A decimal in the currency's major unit (Partner Center may send a number or a string). */
  dealValue?: number | string | null;
  /** ISO 4217 code. */
  currency?: string | null;
  closingDateTime?: string | null;
  [other: string]: unknown;
}

export interface Referral {
  id: string;
  engagementId?: string | null;
  name?: string | null;
  /** The partner's own id for the referral (the hub sends the CRM deal id on co-sell referrals). */
  externalReferenceId?: string | null;
  /**
   * {@link ReferralStatus}, {@link ReferralSubstatus}, {@link ReferralType},
   * {@link ReferralQualification}: typed as strings on purpose, so an undocumented value (such as
   * the unconfirmed `Engaged` substatus) never breaks parsing.
   */
  status?: string | null;
  substatus?: string | null;
  statusReason?: string | null;
  type?: string | null;
  qualification?: string | null;
  customerProfile?: ReferralCustomerProfile | null;
  details?: ReferralDetails | null;
  createdDateTime?: string | null;
  updatedDateTime?: string | null;
  expirationDateTime?: string | null;
  acceptedDateTime?: string | null;
  /** Concurrency token: sent back as `If-Match` on updates (CONTRACT §5). */
  eTag?: string | null;
  [other: string]: unknown;
}

/** The only JSON Patch operations Partner Center's referral PATCH accepts (provider-facts §4.1). */
export type JsonPatchOpName = 'replace' | 'add';

export interface JsonPatchOp {
  op: JsonPatchOpName;
  /** JSON Pointer, e.g. `/details/dealValue` or `/team/-`. */
  path: string;
  value: unknown;
}

/**
 * Report kinds that move a referral's status on Partner Center (CONTRACT §5). `appointment` is
 * the hub's first engaged stage, so it is accepted as an alias of `engaged`.
 */
export type PartnerCenterStatusKind =
  'accepted' | 'engaged' | 'appointment' | 'won' | 'lost' | 'lost_withdrawn' | 'declined';
