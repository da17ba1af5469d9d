import { NormalizedEvent } from '../../src/domain/normalized-event';
import { FACTORY_NOW } from './db';

/**
 * Normalized events shaped exactly as the door's providers produce them (normalize() in
 * src/webhooks/providers/*.webhook.ts), for driving the lifecycle without the door. `at` is the
 * provider's occurredAt (default FACTORY_NOW).
 */
const iso = (at?: Date | string) => new Date(at ?? FACTORY_NOW).toISOString();

/** HubSpot `deal.propertyChange` of `dealstage` (stage ids of the default pipeline, e.g. closedwon). */
export function crmStageChanged(
  crmDealId: string,
  stageId: string,
  at?: Date | string,
): NormalizedEvent {
  return {
    source: 'hubspot',
    kind: 'crm.deal_stage_changed',
    occurredAt: iso(at),
    subject: { crmDealId },
    data: { portalId: '4711', changeSource: 'CRM_UI', stage: stageId },
  };
}

/** HubSpot `deal.creation`. */
export function crmDealCreated(crmDealId: string, at?: Date | string): NormalizedEvent {
  return {
    source: 'hubspot',
    kind: 'crm.deal_created',
    occurredAt: iso(at),
    subject: { crmDealId },
    data: { portalId: '4711', changeSource: 'CRM_UI' },
  };
}

export type EnvelopeKind = 'sent' | 'delivered' | 'completed' | 'declined' | 'voided';

/** DocuSign Connect `envelope-<kind>`, carrying the deal id in the envelope's custom field. */
export function envelopeEvent(
  kind: EnvelopeKind,
  envelope: { envelopeId: string; dealId?: string; contractId?: string },
  at?: Date | string,
): NormalizedEvent {
  return {
    source: 'docusign',
    kind: `envelope.${kind}`,
    occurredAt: iso(at),
    subject: { envelopeId: envelope.envelopeId, dealId: envelope.dealId },
    data: {
      envelopeId: envelope.envelopeId,
      contractId: envelope.contractId,
      accountId: 'acct-test',
      status: kind,
      completedAt: kind === 'completed' ? iso(at) : undefined,
    },
  };
}

/** A milestones webhook (`milestone.accepted`, `.rejected`, `.progress`, `delivery.completed`, …). */
export function milestoneEvent(
  kind: string,
  data: { dealId?: string; crmDealId?: string } & Record<string, unknown>,
  at?: Date | string,
): NormalizedEvent {
  return {
    source: 'milestones',
    kind,
    occurredAt: iso(at),
    subject: { dealId: data.dealId, crmDealId: data.crmDealId },
    data,
  };
}

/** `milestone.accepted` of one item. */
export function milestoneAccepted(
  dealId: string,
  itemKey: string,
  at?: Date | string,
  acceptedBy = 'buyer@example.test',
): NormalizedEvent {
  return milestoneEvent(
    'milestone.accepted',
    { dealId, itemKey, acceptedAt: iso(at), acceptedBy },
    at,
  );
}

/**
 * A Stripe `invoice.*` event for an invoice the hub made (its metadata: closeloop_deal_id,
 * closeloop_item_key, closeloop_billing_key).
 */
export function stripeInvoiceEvent(
  kind:
    | 'invoice.finalized'
    | 'invoice.sent'
    | 'invoice.paid'
    | 'invoice.payment_failed'
    | 'invoice.voided'
    | 'invoice.marked_uncollectible',
  invoice: {
    providerInvoiceId: string;
    dealId?: string;
    itemKey?: string;
    billingKey?: string;
    customer?: string;
    number?: string;
    status?: string;
    amountDue?: number;
    amountPaid?: number;
  },
  at?: Date | string,
): NormalizedEvent {
  const status =
    invoice.status ??
    {
      'invoice.finalized': 'open',
      'invoice.sent': 'open',
      'invoice.paid': 'paid',
      'invoice.payment_failed': 'open',
      'invoice.voided': 'void',
      'invoice.marked_uncollectible': 'uncollectible',
    }[kind];
  return {
    source: 'stripe',
    kind,
    occurredAt: iso(at),
    subject: {
      dealId: invoice.dealId,
      providerInvoiceId: invoice.providerInvoiceId,
      billingCustomerId: invoice.customer ?? 'cus_test',
    },
    data: {
      objectId: invoice.providerInvoiceId,
      status,
      itemKey: invoice.itemKey,
      billingKey: invoice.billingKey,
      amountDue: invoice.amountDue,
      amountPaid: invoice.amountPaid,
      currency: 'jpy',
      number: invoice.number,
    },
  };
}
