import { Deal } from '../generated/prisma/client';
import { DEAL_COLUMNS } from '../prisma/model-columns';
import { Tx } from './lifecycle.types';

/**
 * Reading a deal row for a change: every change to a deal happens in one transaction with its
 * row locked (FOR UPDATE), so one deal's events apply one at a time whatever the number of workers.
 */

/** The deal, locked for the rest of the transaction, in one statement; undefined if there is none. */
export async function tryLockDeal(tx: Tx, dealId: string): Promise<Deal | undefined> {
  const [deal] = await tx.$queryRaw<Deal[]>`
    SELECT ${DEAL_COLUMNS} FROM deal WHERE id = ${dealId} FOR UPDATE`;
  return deal;
}

/** Locks a deal row for the rest of the transaction and returns it. */
export async function lockDeal(tx: Tx, dealId: string): Promise<Deal> {
  // No such deal: Prisma's own not-found error, as before.
  return (await tryLockDeal(tx, dealId)) ?? tx.deal.findUniqueOrThrow({ where: { id: dealId } });
}

/** The deal an event's subject names (hub id, else CRM id), locked; undefined if there is none. */
export async function findDeal(
  tx: Tx,
  subject: { dealId?: string; crmDealId?: string },
): Promise<Deal | undefined> {
  if (subject.dealId) return tryLockDeal(tx, subject.dealId);
  const found = subject.crmDealId
    ? await tx.deal.findUnique({ where: { crmDealId: subject.crmDealId }, select: { id: true } })
    : null;
  return found ? lockDeal(tx, found.id) : undefined;
}
