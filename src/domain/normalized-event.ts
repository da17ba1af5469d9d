/**
 * The hub's one internal shape for every provider event: what the door's providers produce
 * (src/webhooks/providers) and the lifecycle consumes. Pure: imports nothing.
 */

/** Ids naming the deal an event concerns, in whatever form the provider knows it. */
export interface EventSubject {
  dealId?: string;
  crmDealId?: string;
  envelopeId?: string;
  providerInvoiceId?: string;
  billingCustomerId?: string;
  referralId?: string;
  platform?: string;
}

/** The hub's one internal shape for every provider event. */
export interface NormalizedEvent {
  /** The provider it came from (its webhook source's name). */
  source: string;
  /** Internal kind, e.g. `crm.deal_stage_changed`, `envelope.completed`, `invoice.paid`. */
  kind: string;
  occurredAt: string;
  subject: EventSubject;
  data: Record<string, unknown>;
}

/** The serialization key of a subject: one deal's events are processed one at a time. */
export function subjectKey(s: EventSubject): string | undefined {
  if (s.dealId) return `deal:${s.dealId}`;
  if (s.crmDealId) return `crm:${s.crmDealId}`;
  if (s.envelopeId) return `envelope:${s.envelopeId}`;
  if (s.referralId) return `referral:${s.platform ?? 'unknown'}:${s.referralId}`;
  if (s.providerInvoiceId) return `invoice:${s.providerInvoiceId}`;
  return undefined;
}
