import { PermanentError } from '../common/errors';
import { PrismaService } from '../prisma/prisma.service';
import { EventRow } from './event-pipeline.types';

const SELECT_EVENT = `SELECT id, provider, type, status::text AS status, payload, subject_key,
                             correlation_id, received_at, attempts, attempt_base,
                             replay_count
                      FROM webhook_event`;
/**
 * A batch's rows by primary key alone; those no longer RECEIVED are dropped in code. (With the
 * status in the WHERE clause the generic plan of this prepared statement ANDs in a scan of every
 * RECEIVED row's index entry: a cost that grows with the backlog.)
 */
const LOAD_BATCH = {
  name: 'pipeline_load_batch',
  text: `${SELECT_EVENT} WHERE id = ANY($1::text[]) ORDER BY id`,
};
const LOAD_LANE = {
  name: 'pipeline_load_lane',
  text: `${SELECT_EVENT} WHERE subject_key = $1 AND status = 'RECEIVED' ORDER BY id LIMIT $2`,
};
const LOAD_ONE = { name: 'pipeline_load_one', text: `${SELECT_EVENT} WHERE id = $1` };
const LANE_WAITING = {
  name: 'pipeline_lane_waiting',
  text: `SELECT EXISTS (SELECT 1 FROM webhook_event WHERE subject_key = $1 AND status = 'RECEIVED') AS waiting`,
};

/** The event pipeline's reads of inbox rows: a batch, a lane's next events, one event. */
export class EventLoader {
  constructor(private readonly prisma: PrismaService) {}

  /** A batch's rows (whatever their status: the caller keeps those still RECEIVED). */
  async batch(eventIds: string[]): Promise<EventRow[]> {
    const { rows } = await this.prisma.pool.query<EventRow>({
      ...LOAD_BATCH,
      values: [eventIds],
    });
    return rows;
  }

  /** A lane's RECEIVED events in arrival order, at most `limit`. */
  async lane(lane: string, limit: number): Promise<EventRow[]> {
    const { rows } = await this.prisma.pool.query<EventRow>({
      ...LOAD_LANE,
      values: [lane, limit],
    });
    return rows;
  }

  /** Whether a lane has RECEIVED events waiting. */
  async laneWaiting(lane: string): Promise<boolean> {
    const { rows: w } = await this.prisma.pool.query<{ waiting: boolean }>({
      ...LANE_WAITING,
      values: [lane],
    });
    return w[0].waiting;
  }

  async one(eventId: string): Promise<EventRow> {
    const { rows } = await this.prisma.pool.query<EventRow>({ ...LOAD_ONE, values: [eventId] });
    if (!rows[0]) throw new PermanentError(`event ${eventId} does not exist`);
    return rows[0];
  }
}
