export enum QueueName {
  Webhooks = 'webhooks',
  /** Stripe invoices (exactly once per billing key). */
  Billing = 'billing',
  /** Outbound calls other than Stripe: HubSpot write-back, DocuSign envelopes, reports, alerts. */
  Connectors = 'connectors',
}
