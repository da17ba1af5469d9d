export enum QueueName {
  Webhooks = 'webhooks',
}
