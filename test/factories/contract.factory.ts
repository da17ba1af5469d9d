import { newId } from '../../src/common/ids';
import { Contract, Prisma } from '../../src/generated/prisma/client';
import { Db, FACTORY_NOW, uniq } from './db';

export type ContractOverrides = Partial<Prisma.ContractUncheckedCreateInput> & { dealId: string };

/** A deal's DocuSign contract. Default: SENT, with a fresh envelope id and sentAt. */
export async function createContract(db: Db, over: ContractOverrides): Promise<Contract> {
  const status = over.status ?? 'SENT';
  return db.contract.create({
    data: {
      id: newId('ctr'),
      envelopeId: status === 'PENDING' || status === 'CREATING' ? null : `env-${uniq()}-${uniq()}`,
      sentAt: status === 'PENDING' || status === 'CREATING' ? null : FACTORY_NOW,
      completedAt: status === 'COMPLETED' ? FACTORY_NOW : null,
      ...over,
      status,
    },
  });
}
