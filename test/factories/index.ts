/**
 * Data factories for the tests that run against the real Postgres (test/integration): typed rows
 * with sensible defaults, overrides per call and fresh ids (newId), written through the Prisma
 * client or a transaction of it. Billing items come from the hub's own plan parser.
 */
export * from './db';
export * from './plan.factory';
export * from './deal.factory';
export * from './billing-item.factory';
export * from './stage-trigger.factory';
export * from './invoice.factory';
export * from './report.factory';
export * from './contract.factory';
export * from './webhook-event.factory';
export * from './ops.factory';
export * from './event.factory';
