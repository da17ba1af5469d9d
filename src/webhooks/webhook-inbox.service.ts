import { Injectable } from '@nestjs/common';

import { PrismaService } from '../prisma/prisma.service';
import { JobName } from '../queue/job-name.enum';
import { QueueName } from '../queue/queue-name.enum';
import { ownLane } from './event-lane';
import { GroupCommit } from './group-commit';
import { IncomingEvent, WebhookSource } from '../ports/webhook-door.port';
import { newId } from '../common/ids';

export interface StoreResult {
  /** Ids of the events this delivery added (empty when every event was already stored). */
  stored: string[];
  duplicates: number;
}

/** A delivery Postgres refuses to store as given (e.g. `\u0000` in a JSON string): answered 400. */
export class UnstorablePayloadError extends Error {}

/**
 * Postgres errors about the data itself, not the database's state: 22003 is a JSON number no
 * numeric holds (`1e1000000`), the others text jsonb cannot hold (`\u0000`, a lone surrogate, …).
 */
const DATA_ERRORS = new Set(['22P05', '22025', '22021', '22P02', '22001', '22003']);

/**
 * Inbox rows and their outbox rows in ONE statement: both commit or neither does, and a provider
 * event identity that is already stored inserts nothing at all (ON CONFLICT DO NOTHING).
 * See docs/decisions/0001-inbox-outbox.md.
 *
 * The rows travel as one JSON array ($1, see rowsJson): each payload is embedded as the verified
 * JSON text it arrived as, so nothing is escaped per row (pg's encoding of text[] parameters
 * escaped every quote of every payload: ~5 % of the api's CPU at the door, bench profile).
 */
const STORE_SQL = `
WITH ins AS (
  INSERT INTO webhook_event (id, provider, provider_event_id, type, payload, headers, correlation_id,
                             subject_key, status, last_error, processed_at)
  SELECT v.id, v.provider, v.provider_event_id, v.type, v.payload, v.headers, v.correlation_id,
         v.lane, CASE WHEN v.ignored IS NULL THEN 'RECEIVED' ELSE 'IGNORED' END::"EventStatus",
         v.ignored, CASE WHEN v.ignored IS NULL THEN NULL ELSE now() END
  FROM json_to_recordset($1::json)
       AS v(id text, provider text, provider_event_id text, type text, payload jsonb, headers jsonb,
            correlation_id text, lane text, ignored text)
  ON CONFLICT (provider, provider_event_id) DO NOTHING
  RETURNING id, correlation_id, status
), relay AS (
  INSERT INTO outbox (queue, job_name, job_id, data)
  SELECT $2, $3, ins.id, jsonb_build_object('eventId', ins.id, 'correlationId', ins.correlation_id)
  FROM ins WHERE ins.status = 'RECEIVED'
)
SELECT id FROM ins`;

interface InboxRow {
  id: string;
  provider: string;
  providerEventId: string;
  type: string;
  /** JSON text (valid: the door parsed it, or JSON.stringify made it). */
  payload: string;
  /** JSON text. */
  headers: string;
  correlationId: string;
  lane: string;
  ignored: string | null;
}

/**
 * An element of a batch as the JSON text stored for it. A number JSON.parse made Infinity of
 * (`1e1000000`) would silently become null: it is unstorable, as the raw text would be for Postgres.
 */
function storableJson(payload: unknown): string {
  return JSON.stringify(payload, (_key, value: unknown) => {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new UnstorablePayloadError('payload cannot be stored: a number out of range');
    }
    return value;
  });
}

@Injectable()
export class WebhookInboxService {
  /**
   * Concurrent deliveries share statements (group commit); see group-commit.ts. Two statements in
   * flight: one commits while the next fills. With four, a busy door wrote batches of ~2–3 rows and
   * Postgres spent ~150 µs per delivery; with two, ~85 µs and the door took ~25 % more (bench,
   * c=10 and c=50, alternating runs).
   */
  private readonly committer = new GroupCommit<InboxRow, Set<string>>(
    (batches) => this.write(batches),
    {
      maxInFlight: 2,
      maxRows: 500,
    },
  );

  constructor(private readonly prisma: PrismaService) {}

  async store(
    source: WebhookSource,
    events: IncomingEvent[],
    meta: { headers: Record<string, unknown>; correlationId: string; rawPayload?: string },
  ): Promise<StoreResult> {
    // A batch may repeat an identity; the first occurrence wins, like a redelivery would (a Map
    // built from the pairs would keep the last one's value).
    const firsts = new Map<string, IncomingEvent>();
    for (const e of events) if (!firsts.has(e.providerEventId)) firsts.set(e.providerEventId, e);
    const unique = [...firsts.values()];
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
            : storableJson(e.payload),
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
        values: [rowsJson(all), QueueName.Webhooks, JobName.WebhookEventBatch],
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

/**
 * The rows as one JSON array for json_to_recordset. payload and headers are JSON texts already and
 * go in as they are; the short strings are quoted by JSON.stringify.
 */
export function rowsJson(rows: InboxRow[]): string {
  const q = JSON.stringify;
  return `[${rows
    .map(
      (r) =>
        `{"id":${q(r.id)},"provider":${q(r.provider)},"provider_event_id":${q(r.providerEventId)},` +
        `"type":${q(r.type)},"payload":${r.payload},"headers":${r.headers},` +
        `"correlation_id":${q(r.correlationId)},"lane":${q(r.lane)},"ignored":${q(r.ignored)}}`,
    )
    .join(',')}]`;
}
