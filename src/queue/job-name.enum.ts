import { QueueName } from './queue-name.enum';

export enum JobName {
  /** Normalise one stored webhook event and hand it to the lifecycle. */
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
}

/** The queue each job runs on. */
export const JOB_QUEUE: Record<JobName, QueueName> = {
  [JobName.WebhookEventProcess]: QueueName.Webhooks,
  [JobName.BillingInvoiceIssue]: QueueName.Billing,
  [JobName.ContractEnvelopeCreate]: QueueName.Connectors,
  [JobName.CrmDealSync]: QueueName.Connectors,
  [JobName.ReportDeliver]: QueueName.Connectors,
  [JobName.AlertDeliver]: QueueName.Connectors,
};
