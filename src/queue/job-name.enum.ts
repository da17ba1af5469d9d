import { QueueName } from './queue-name.enum';

export enum JobName {
  /** A batch of stored webhook events: decided at once or drained through their lanes. */
  WebhookEventBatch = 'WebhookEventBatch',
  /** Carry on draining one lane (a drain that ran out of time, or the recovery sweep). */
  WebhookLaneDrain = 'WebhookLaneDrain',
  /** One stored webhook event on its own: a replay, or the retry of a failed event. */
  WebhookEventProcess = 'WebhookEventProcess',
  /** Create (or find) the Stripe invoice of one billing key, then finalize and send it. */
  BillingInvoiceIssue = 'BillingInvoiceIssue',
  /** Create the deal's one DocuSign envelope from the template. */
  ContractEnvelopeCreate = 'ContractEnvelopeCreate',
  /** Write the deal's billing state, notes and won stage back to HubSpot. */
  CrmDealSync = 'CrmDealSync',
  /** Deliver one report to its referral platform (Partner Center API or the generic webhook). */
  ReportDeliver = 'ReportDeliver',
  /** Deliver one alert to ALERT_WEBHOOK_URL. */
  AlertDeliver = 'AlertDeliver',
  /** Create the deal's one outbound co-sell referral on Partner Center (CONTRACT §5). */
  ReferralCosellCreate = 'ReferralCosellCreate',
}

/** The queue each job runs on. */
export const JOB_QUEUE: Record<JobName, QueueName> = {
  [JobName.WebhookEventBatch]: QueueName.Webhooks,
  [JobName.WebhookLaneDrain]: QueueName.Webhooks,
  [JobName.WebhookEventProcess]: QueueName.Webhooks,
  [JobName.BillingInvoiceIssue]: QueueName.Billing,
  [JobName.ContractEnvelopeCreate]: QueueName.Connectors,
  [JobName.CrmDealSync]: QueueName.Connectors,
  [JobName.ReportDeliver]: QueueName.Connectors,
  [JobName.AlertDeliver]: QueueName.Connectors,
  [JobName.ReferralCosellCreate]: QueueName.Connectors,
};
