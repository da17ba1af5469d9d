import { randomUUID } from 'node:crypto';

import { Prisma } from '../../src/generated/prisma/client';

/**
 * What every factory writes through: the Prisma client (PrismaService) or a transaction of it, so
 * a spec can seed inside the transaction it then asserts in.
 */
export type Db = Prisma.TransactionClient;

/** A short random suffix for ids that are not hub ids (CRM deal ids, envelope ids, …). */
export const uniq = (): string => randomUUID().slice(0, 8);

/** The instant factories stamp on facts when a spec gives none (a fixed, known date). */
export const FACTORY_NOW = new Date('2026-11-20T01:00:00.000Z');
