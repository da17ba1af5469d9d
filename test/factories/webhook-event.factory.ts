import { newId } from '../../src/common/ids';
import { NormalizedEvent, subjectKey } from '../../src/domain/normalized-event';
import { Prisma, WebhookEvent } from '../../src/generated/prisma/client';
import { Db, uniq } from './db';

export type WebhookEventOverrides = Partial<
  Omit<Prisma.WebhookEventUncheckedCreateInput, 'normalized'>
> & {
  /** The event as the door's provider normalized it: sets provider, type and lane from it. */
  normalized?: NormalizedEvent;
};

/**
 * An inbox row (webhook_event). Default: a RECEIVED milestones event with an empty payload. With
 * `normalized`, provider = its source, type = its kind, subject key = its lane.
 */
export async function createWebhookEvent(
  db: Db,
  over: WebhookEventOverrides = {},
): Promise<WebhookEvent> {
  const { normalized, ...fields } = over;
  const id = fields.id ?? newId('evt');
  return db.webhookEvent.create({
    data: {
      provider: normalized?.source ?? 'milestones',
      providerEventId: `pe_${uniq()}${uniq()}`,
      type: normalized?.kind ?? 'milestone.accepted',
      payload: {},
      headers: {},
      correlationId: `corr-${id}`,
      subjectKey: normalized ? (subjectKey(normalized.subject) ?? null) : null,
      dealId: normalized?.subject.dealId ?? null,
      ...(normalized ? { normalized: normalized as unknown as Prisma.InputJsonValue } : {}),
      ...fields,
      id,
    },
  });
}
