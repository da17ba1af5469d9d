import { ChildProcess, spawn } from 'node:child_process';

import { Redis } from 'ioredis';
import { Client, Pool } from 'pg';

import { Delivery, send, standardDelivery } from '../../tools/simulator/signed-delivery';
import { RunningHub, freePort, waitFor } from './hub';
import { TEST_DATABASE_URL, TEST_SECRETS } from './test-env';

/**
 * Helpers of the failure-handling integration tests: a private redis-server that a test may kill,
 * a Postgres advisory lock held on a subject key (blocks a job inside its handler, through
 * production code only), signed milestone deliveries, and small queries on the hub's tables.
 */

/** A redis-server of the test's own, on a free port; never the shared one on 6379. */
export class OwnRedis {
  private proc?: ChildProcess;
  private exited?: Promise<void>;

  private constructor(readonly port: number) {}

  static async start(): Promise<OwnRedis> {
    const redis = new OwnRedis(await freePort());
    await redis.restart();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts redis-server on the same port, empty (no persistence), and waits for PING. */
  async restart(): Promise<void> {
    if (this.running) throw new Error('redis-server is already running');
    const proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
        const client = new Redis(this.url, {
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        try {
          await client.connect();
          return (await client.ping()) === 'PONG';
        } finally {
          client.disconnect();
        }
      },
      { timeoutMs: 10_000, what: `redis-server on ${this.port}` },
    );
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Kills redis-server hard (SIGKILL): no goodbye to clients, data gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.proc!.kill('SIGKILL');
    await this.exited;
  }
}

export { flushTestRedis } from './hub';

/**
 * Holds a deal's row lock (`SELECT … FOR UPDATE` in an open transaction, as another transaction of
 * the hub would), on a connection of its own. While held, the worker's transaction for an event of
 * that deal blocks on the row until the lock is released or its lock_timeout
 * (SERIALIZATION_LOCK_TIMEOUT_MS) fires — a transient failure of that event.
 */
export class DealLock {
  private released = false;

  private constructor(
    readonly dealId: string,
    private readonly client: Client,
  ) {}

  static async hold(dealId: string): Promise<DealLock> {
    const client = new Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    await client.query('BEGIN');
    const { rowCount } = await client.query('SELECT id FROM deal WHERE id = $1 FOR UPDATE', [
      dealId,
    ]);
    if (rowCount !== 1) {
      await client.end();
      throw new Error(`DealLock: no deal ${dealId} (seed it first)`);
    }
    return new DealLock(dealId, client);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.client.query('COMMIT');
    await this.client.end();
  }
}

/** How many sessions of the test database are waiting for a lock (jobs blocked on a row). */
export async function lockWaiters(db: Pool): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    // A row-lock wait is a wait on the holder's transaction id, which pg_locks lists without a
    // database: find the waiters by their session's database instead.
    `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE NOT l.granted AND a.datname = current_database()`,
  );
  return rows[0].n;
}

/**
 * The BullMQ job that carries one event the door stored on its own (the relay batches the door's
 * events; a lone event is a batch of one, named after it — docs/decisions/0007).
 */
export const batchJobId = (eventId: string): string => `events|${eventId}|1`;

/** The job that runs an event on its own after its n-th attempt (a retry, or an isolated run). */
export const retryJobId = (eventId: string, attempt: number, replays = 0): string =>
  `${eventId}|r${replays}|a${attempt}`;

/** A signed milestone delivery (Standard Webhooks); `data` defaults to a valid acceptance. */
export function milestoneDelivery(
  id: string,
  data: Record<string, unknown>,
  type = 'milestone.accepted',
): Delivery {
  return standardDelivery(
    '/webhooks/milestones',
    { type, data },
    { secret: TEST_SECRETS.MILESTONE_WEBHOOK_SECRET, id },
  );
}

export function acceptance(dealId: string): Record<string, unknown> {
  return {
    dealId,
    itemKey: 'design',
    acceptedAt: '2026-11-23T10:00:00Z',
    acceptedBy: 'client@example.com',
    progressPercent: 100,
  };
}

/** Sends a delivery and returns the stored event id (asserting the door answered 200). */
export async function deliver(hub: RunningHub, d: Delivery): Promise<string> {
  const res = await send(hub.url, d);
  if (res.status !== 200) {
    throw new Error(`door answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  const ids = (res.body as { eventIds: string[] }).eventIds;
  if (ids.length !== 1) throw new Error(`expected one stored event, got ${JSON.stringify(ids)}`);
  return ids[0];
}

export interface EventRow {
  id: string;
  status: string;
  attempts: number;
  processed_at: Date | null;
  last_error: string | null;
  replay_count: number;
}

export async function eventRow(db: Pool, id: string): Promise<EventRow> {
  const { rows } = await db.query<EventRow>(
    `SELECT id, status, attempts, processed_at, last_error, replay_count
       FROM webhook_event WHERE id = $1`,
    [id],
  );
  if (!rows[0]) throw new Error(`no webhook_event ${id}`);
  return rows[0];
}

export async function waitForStatus(
  db: Pool,
  id: string,
  status: string,
  timeoutMs = 20_000,
): Promise<EventRow> {
  let last: EventRow | undefined;
  try {
    return (await waitFor<EventRow | undefined>(
      async () => {
        last = await eventRow(db, id);
        return last.status === status ? last : undefined;
      },
      { timeoutMs, what: `event ${id} to be ${status}` },
    )) as EventRow;
  } catch (err) {
    throw new Error(`${(err as Error).message} (last seen: ${JSON.stringify(last)})`);
  }
}

/**
 * Waits until an event is PROCESSED and its SUCCEEDED job_attempt is written (the runner records
 * the attempt just after the handler's own commit, so the two become visible one after the other).
 */
export async function waitForProcessed(db: Pool, id: string, timeoutMs = 20_000) {
  const row = await waitForStatus(db, id, 'PROCESSED', timeoutMs);
  await waitFor(async () => (await attemptsOf(db, id)).some((a) => a.outcome === 'SUCCEEDED'), {
    timeoutMs: 5_000,
    what: `the SUCCEEDED attempt of ${id}`,
  });
  return row;
}

export interface AttemptRow {
  job_id: string;
  attempt: number;
  outcome: string;
  error: string | null;
}

export async function attemptsOf(db: Pool, eventId: string): Promise<AttemptRow[]> {
  const { rows } = await db.query<AttemptRow>(
    `SELECT job_id, attempt, outcome, error FROM job_attempt
      WHERE event_id = $1 ORDER BY id`,
    [eventId],
  );
  return rows;
}

export async function count(db: Pool, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT (${sql})::int AS n`, params);
  return rows[0].n;
}

/** Admin API call with the bootstrap admin token. */
export async function admin(
  hub: RunningHub,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${hub.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

/** Stops every hub given (SIGTERM, then SIGKILL if it does not exit in time), ignoring failures. */
export async function stopAll(...hubs: (RunningHub | undefined)[]): Promise<void> {
  await Promise.all(
    hubs.map(async (hub) => {
      if (!hub) return;
      const timer = setTimeout(() => hub.proc.kill('SIGKILL'), 10_000);
      try {
        await hub.stop('SIGTERM');
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}

/** The hub deals the failure tests' milestone deliveries name (a milestone for an unknown deal is refused). */
export const FAILURE_TEST_DEALS = [
  'cl_deal_warm',
  'cl_deal_rd_0',
  'cl_deal_rd_1',
  'cl_deal_rd_2',
  'cl_deal_transient',
  'cl_deal_exhausted',
  'cl_deal_kill',
  'cl_deal_poison',
  'cl_deal_term',
  'cl_deal_slow',
  'cl_deal_api',
  ...Array.from({ length: 20 }, (_, i) => `cl_deal_scale_${i}`),
];

export async function seedTestDeals(
  db: Pool,
  ids: readonly string[] = FAILURE_TEST_DEALS,
): Promise<void> {
  await db.query(
    `INSERT INTO deal (id, name, stage, source, currency, updated_at)
     SELECT id, 'Test deal ' || id, 'NEGOTIATING', 'admin', 'jpy', now() FROM unnest($1::text[]) AS id
     ON CONFLICT (id) DO NOTHING`,
    [ids],
  );
}
