import { StageTrigger } from '../../src/generated/prisma/client';
import { LifecycleTrigger } from '../../src/domain/deal-stage';
import { Db, FACTORY_NOW } from './db';

/** A stage-changing fact of a deal (what the lifecycle folds). Default: now, no event, cause "test". */
export async function createStageTrigger(
  db: Db,
  over: { dealId: string; at?: Date; eventId?: string | null; cause?: string } & LifecycleTrigger,
): Promise<StageTrigger> {
  return db.stageTrigger.create({
    data: {
      dealId: over.dealId,
      at: over.at ?? FACTORY_NOW,
      type: over.type,
      target: over.type === 'crm.stage' ? over.target : null,
      eventId: over.eventId ?? null,
      cause: over.cause ?? 'test factory',
    },
  });
}
