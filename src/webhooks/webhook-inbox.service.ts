import { Injectable } from '@nestjs/common';

import { PrismaService } from '../prisma/prisma.service';
import { JobName } from '../queue/job-name.enum';
import { QueueName } from '../queue/queue-name.enum';
import { ownLane } from './event-lane';
import { GroupCommit } from './group-commit';
import { IncomingEvent, WebhookSource } from './webhook.types';
import { newId } from '../common/ids';

export interface StoreResult {
  /** Ids of the events this delivery added (empty when every event was already stored). */
  stored: string[];
  duplicates: number;
}

/** A delivery Postgres refuses to store as given (e.g. `\u0000` in a JSON string): answered 400. */
export class UnstorablePayloadError extends Error {}

/** Postgres errors about the data itself, not the database's state. */
const DATA_ERRORS = new Set(['22P05', '22025', '22021', '22P02', '22001']);

/**
 * Inbox rows and their outbox rows in ONE statement: both commit or neither does, and a provider
 * event identity that is already stored inserts nothing at all (ON CONFLICT DO NOTHING).
 * See docs/decisions/0001-inbox-outbox.md.
 */
const STORE_SQL = `
WITH ins AS (
  INSERT INTO webhook_event (id, provider, provider_event_id, type, payload, headers, correlation_id,
                             subject_key, status, last_error, processed_at)
  SELECT v.id, v.provider, v.provider_event_id, v.type, v.payload, v.headers, v.correlation_id,
         v.lane, CASE WHEN v.ignored IS NULL THEN 'RECEIVED' ELSE 'IGNORED' END::"EventStatus",
         v.ignored, CASE WHEN v.ignored IS NULL THEN NULL ELSE now() END
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], $7::text[],
              $8::text[], $9::text[])
       AS v(id, provider, provider_event_id, type, payload, headers, correlation_id, lane, ignored)
  ON CONFLICT (provider, provider_event_id) DO NOTHING
  RETURNING id, correlation_id, status
), relay AS (
  INSERT INTO outbox (queue, job_name, job_id, data)
  SELECT $10, $11, ins.id, jsonb_build_object('eventId', ins.id, 'correlationId', ins.correlation_id)
  FROM ins WHERE ins.status = 'RECEIVED'
)
SELECT id FROM ins`;

interface InboxRow {
  id: string;
  provider: string;
  providerEventId: string;
  type: string;
  payload: string;
  headers: string;
  correlationId: string;
  lane: string;
  ignored: string | null;
}

@Injectable()
export class WebhookInboxService {
  /** Concurrent deliveries share statements (group commit); see group-commit.ts. */
  private readonly committer = new GroupCommit<InboxRow, Set<string>>(
    (batches) => this.write(batches),
    {
      maxInFlight: 4,
      maxRows: 500,
    },
  );

  constructor(private readonly prisma: PrismaService) {}

  async store(
    source: WebhookSource,
    events: IncomingEvent[],
    meta: { headers: Record<string, unknown>; correlationId: string; rawPayload?: string },
  ): Promise<StoreResult> {
    // A batch may repeat an identity; the first occurrence wins, like a redelivery would.
    const unique = [...new Map(events.map((e) => [e.providerEventId, e])).values()];
    const headers = JSON.stringify(meta.headers);
    const rows = unique.map((e) => {
      const id = newId('evt');
      return {
        id,
        provider: source,
        providerEventId: e.providerEventId,
        type: e.type,
        // A single event goes in as the raw JSON text: no re-serialisation.
        payload:
          unique.length === 1 && meta.rawPayload !== undefined
            ? meta.rawPayload
            : JSON.stringify(e.payload),
        headers,
        correlationId: meta.correlationId,
        lane: e.lane ?? ownLane(id),
        ignored: e.ignored ?? null,
      };
    });
    const inserted = await this.committer.submit(rows);
    const stored = rows.filter((r) => inserted.has(r.id)).map((r) => r.id);
    return { stored, duplicates: events.length - stored.length };
  }

  private async write(batches: InboxRow[][]): Promise<Set<string>[]> {
    const all = batches.flat();
    try {
      const { rows } = await this.prisma.pool.query<{ id: string }>({
        name: 'webhook_inbox_store',
        text: STORE_SQL,
        values: [
          all.map((r) => r.id),
          all.map((r) => r.provider),
          all.map((r) => r.providerEventId),
          all.map((r) => r.type),
          all.map((r) => r.payload),
          all.map((r) => r.headers),
          all.map((r) => r.correlationId),
          all.map((r) => r.lane),
          all.map((r) => r.ignored),
          QueueName.Webhooks,
          JobName.WebhookEventBatch,
        ],
      });
      const inserted = new Set(rows.map((r) => r.id));
      return batches.map((b) => new Set(b.filter((r) => inserted.has(r.id)).map((r) => r.id)));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (batches.length === 1 && code && DATA_ERRORS.has(code)) {
        throw new UnstorablePayloadError(`payload cannot be stored: ${(err as Error).message}`);
      }
      throw err;
    }
  }
}
