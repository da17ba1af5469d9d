import { QueueName } from './queue-name.enum';

export enum JobName {
  /** Normalise one stored webhook event and hand it to the lifecycle. */
  WebhookEventProcess = 'WebhookEventProcess',
}

/** The queue each job runs on. */
export const JOB_QUEUE: Record<JobName, QueueName> = {
  [JobName.WebhookEventProcess]: QueueName.Webhooks,
};
