import { Injectable } from '@nestjs/common';
import { v7 as uuidv7 } from 'uuid';

import { PrismaService } from '../prisma/prisma.service';
import { JobName } from '../queue/job-name.enum';
import { QueueName } from '../queue/queue-name.enum';
import { IncomingEvent, WebhookSource } from './webhook.types';

export interface StoreResult {
  /** Ids of the events this delivery added (empty when every event was already stored). */
  stored: string[];
  duplicates: number;
}

/**
 * Inbox row and outbox row in ONE statement: both commit or neither does, and a provider event
 * identity that is already stored inserts nothing at all (ON CONFLICT DO NOTHING). One round trip
 * per delivery, whatever the batch size. See docs/decisions/0001-inbox-outbox.md.
 */
const STORE_SQL = `
WITH ins AS (
  INSERT INTO webhook_event (id, provider, provider_event_id, type, payload, headers, correlation_id)
  SELECT u.id, $1, u.provider_event_id, u.type, u.payload, $5::jsonb, $6
    FROM unnest($2::text[], $3::text[], $4::text[], $7::jsonb[]) AS u(id, provider_event_id, type, payload)
  ON CONFLICT (provider, provider_event_id) DO NOTHING
  RETURNING id
), relay AS (
  INSERT INTO outbox (queue, job_name, job_id, data)
  SELECT $8, $9, ins.id, jsonb_build_object('eventId', ins.id, 'correlationId', $6::text) FROM ins
)
SELECT id FROM ins`;

@Injectable()
export class WebhookInboxService {
  constructor(private readonly prisma: PrismaService) {}

  async store(
    source: WebhookSource,
    events: IncomingEvent[],
    meta: { headers: Record<string, unknown>; correlationId: string; rawPayload?: string },
  ): Promise<StoreResult> {
    // A batch may repeat an identity; the first occurrence wins, like a redelivery would.
    const unique = [...new Map(events.map((e) => [e.providerEventId, e])).values()];
    const payloads =
      unique.length === 1 && meta.rawPayload !== undefined
        ? [meta.rawPayload] // single event: the raw JSON text goes in as is, no re-serialisation
        : unique.map((e) => JSON.stringify(e.payload));
    const { rows } = await this.prisma.pool.query<{ id: string }>({
      name: 'webhook_inbox_store',
      text: STORE_SQL,
      values: [
        source,
        unique.map(() => `evt_${uuidv7()}`),
        unique.map((e) => e.providerEventId),
        unique.map((e) => e.type),
        JSON.stringify(meta.headers),
        meta.correlationId,
        payloads,
        QueueName.Webhooks,
        JobName.WebhookEventProcess,
      ],
    });
    return { stored: rows.map((r) => r.id), duplicates: events.length - rows.length };
  }
}
