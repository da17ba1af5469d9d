import { JobName } from './job-name.enum';

/** Every job carries the correlation id of the request that caused it (logs join on it). */
export interface BaseJobData {
  correlationId: string;
  /** The inbox event this job works for, when there is one (attempts and dead letters link to it). */
  eventId?: string;
}

export interface WebhookEventProcessData extends BaseJobData {
  eventId: string;
}

/** The door's outbox rows carry one event each; the relay sends them to BullMQ in batches. */
export interface WebhookEventBatchData extends BaseJobData {
  eventIds: string[];
}

export interface WebhookLaneDrainData extends BaseJobData {
  lane: string;
}

export interface BillingInvoiceIssueData extends BaseJobData {
  billingKey: string;
  dealId: string;
}

export interface ContractEnvelopeCreateData extends BaseJobData {
  dealId: string;
}

export interface CrmDealSyncData extends BaseJobData {
  dealId: string;
}

export interface ReportDeliverData extends BaseJobData {
  reportId: string;
  dealId: string;
}

export interface AlertDeliverData extends BaseJobData {
  alertId: string;
}

export interface ReferralCosellCreateData extends BaseJobData {
  dealId: string;
}

export interface JobDataMap {
  [JobName.WebhookEventBatch]: WebhookEventBatchData;
  [JobName.WebhookLaneDrain]: WebhookLaneDrainData;
  [JobName.WebhookEventProcess]: WebhookEventProcessData;
  [JobName.BillingInvoiceIssue]: BillingInvoiceIssueData;
  [JobName.ContractEnvelopeCreate]: ContractEnvelopeCreateData;
  [JobName.CrmDealSync]: CrmDealSyncData;
  [JobName.ReportDeliver]: ReportDeliverData;
  [JobName.AlertDeliver]: AlertDeliverData;
  [JobName.ReferralCosellCreate]: ReferralCosellCreateData;
}
