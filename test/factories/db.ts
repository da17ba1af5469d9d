import { randomUUID } from 'node:crypto';

import { loadConfig } from '../../src/config/app-config';
import { Prisma } from '../../src/generated/prisma/client';
import { PrismaService } from '../../src/prisma/prisma.service';
import { TEST_DATABASE_URL } from '../support/test-env';

/**
 * What every factory writes through: the Prisma client (PrismaService) or a transaction of it, so
 * a spec can seed inside the transaction it then asserts in.
 */
export type Db = Prisma.TransactionClient;

/** A short random suffix for ids that are not hub ids (CRM deal ids, envelope ids, …). */
export const uniq = (): string => randomUUID().slice(0, 8);

/** The instant factories stamp on facts when a spec gives none (a fixed, known date). */
export const FACTORY_NOW = new Date('2026-11-20T01:00:00.000Z');

/**
 * A Prisma client of the test database for specs without a Nest module (those that spawn the
 * built hub and seed its database): close it in afterAll.
 */
export function openTestPrisma(databaseUrl = TEST_DATABASE_URL): PrismaService {
  return new PrismaService(loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent' }));
}

/** Closes a client made by openTestPrisma (its pool included). */
export async function closeTestPrisma(prisma: PrismaService | undefined): Promise<void> {
  await prisma?.onModuleDestroy();
}
