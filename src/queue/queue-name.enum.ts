export enum QueueName {
  Webhooks = 'webhooks',
  /** Stripe invoices (exactly once per billing key). */
  Billing = 'billing',
  /** Outbound CRM and e-signature calls (HubSpot write-back, DocuSign envelopes). */
  Connectors = 'connectors',
}
