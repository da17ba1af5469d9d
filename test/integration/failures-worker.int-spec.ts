import { Queue } from 'bullmq';
import { Pool } from 'pg';

import { send } from '../../tools/simulator/signed-delivery';
import { RunningHub, startHub, testDb, truncateAll, waitFor } from '../support/hub';
import {
  DealLock,
  acceptance,
  admin,
  lockWaiters,
  attemptsOf,
  batchJobId,
  count,
  retryJobId,
  deliver,
  eventRow,
  flushTestRedis,
  milestoneDelivery,
  stopAll,
  waitForProcessed,
  waitForStatus,
  seedTestDeals,
} from '../support/failures';
import { TEST_REDIS_URL } from '../support/test-env';

/**
 * Worker processes dying or being stopped in the middle of a job. The job is held mid-handler by
 * the subject's serialization lock, which the test owns (SERIALIZATION_LOCK_TIMEOUT_MS is long, so
 * the job just waits there).
 */
const BLOCKING = { SERIALIZATION_LOCK_TIMEOUT_MS: '60000', JOB_LOCK_MS: '2000' };

/** The network error code of a request to `url` (undefined when it got an HTTP answer). */
async function connectionError(url: string): Promise<string | undefined> {
  return fetch(`${url}/health/live`).then(
    () => undefined,
    (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message,
  );
}

describe('failures: worker processes killed or stopped mid-job', () => {
  let db: Pool;
  let queue: Queue;
  const hubs: RunningHub[] = [];
  const locks: DealLock[] = [];

  async function hub(env: Record<string, string>): Promise<RunningHub> {
    const h = await startHub(env);
    hubs.push(h);
    return h;
  }

  /** Waits until the worker runs the event's (batch) job and is blocked inside the handler. */
  async function waitUntilBlocked(eventId: string): Promise<void> {
    await waitFor(
      async () =>
        (await lockWaiters(db)) >= 1 && (await queue.getJobState(batchJobId(eventId))) === 'active',
      { timeoutMs: 10_000, what: `job of ${eventId} to be active and blocked on the deal's row` },
    );
  }

  beforeAll(async () => {
    db = testDb();
    queue = new Queue('webhooks', { connection: { url: TEST_REDIS_URL } });
  });
  beforeEach(async () => {
    await truncateAll(db);
    await seedTestDeals(db);
    await flushTestRedis();
  });
  afterEach(async () => {
    await Promise.all(locks.splice(0).map((l) => l.release()));
    await stopAll(...hubs.splice(0));
  });
  afterAll(async () => {
    await queue?.close();
    await db?.end();
  });

  it('re-runs the job of a SIGKILLed worker; its effect happens once', async () => {
    const api = await hub({ ROLE: 'api' });
    const worker = await hub({ ROLE: 'worker', ...BLOCKING });
    const lock = await DealLock.hold('cl_deal_kill');
    locks.push(lock);

    const id = await deliver(api, milestoneDelivery('msg_kill_1', acceptance('cl_deal_kill')));
    await waitUntilBlocked(id);
    expect(await worker.stop('SIGKILL')).toBeNull();
    expect(worker.proc.signalCode).toBe('SIGKILL');

    // The run died mid-job: nothing was recorded, the event is still open.
    expect((await eventRow(db, id)).status).toBe('RECEIVED');
    expect(await attemptsOf(db, id)).toEqual([]);

    await lock.release();
    await hub({ ROLE: 'worker', ...BLOCKING });
    // BullMQ's stalled-job check finds the dead worker's job once its lock (2 s) expires.
    const done = await waitForProcessed(db, id, 20_000);
    expect(done.attempts).toBe(1);
    expect(done.processed_at).not.toBeNull();
    await waitFor(async () => (await queue.getJobState(batchJobId(id))) === 'completed', {
      what: 'the job to complete in BullMQ',
    });
    await new Promise((r) => setTimeout(r, 500));
    const attempts = await attemptsOf(db, id);
    expect(attempts.map((a) => [a.job_id, a.attempt, a.outcome])).toEqual([
      [batchJobId(id), 1, 'SUCCEEDED'],
    ]);
    expect((await eventRow(db, id)).processed_at).toEqual(done.processed_at);
    expect(await count(db, 'SELECT count(*) FROM dead_letter')).toBe(0);
    expect(await count(db, 'SELECT count(*) FROM outbox')).toBe(0);
  });

  it('an event that keeps killing its worker leaves its batch, then is dead-lettered on its own, and is replayable', async () => {
    const api = await hub({ ROLE: 'api' });
    const lock = await DealLock.hold('cl_deal_poison');
    locks.push(lock);
    const id = await deliver(api, milestoneDelivery('msg_poison_1', acceptance('cl_deal_poison')));

    // maxStalledCount is 3: the 4th worker death in the middle of a job exceeds it. (A killed
    // worker's Postgres session notices within 2 s and ends, releasing the lane it held.)
    // A run is the job taken again by a worker (a new processedOn) that is now blocked on the row.
    let lastRun = 0;
    const newRunBlocked = async (jobId: string) => {
      const job = await queue.getJob(jobId);
      if (!job?.processedOn || job.processedOn === lastRun) return false;
      if ((await job.getState()) !== 'active' || (await lockWaiters(db)) < 1) return false;
      lastRun = job.processedOn;
      return true;
    };
    const kill = async (times: number, jobId: string) => {
      for (let deaths = 0; deaths < times; deaths++) {
        const worker = await hub({ ROLE: 'worker', ...BLOCKING });
        await waitFor(() => newRunBlocked(jobId), {
          timeoutMs: 15_000,
          what: `run ${deaths + 1} of ${jobId} to block`,
        });
        await worker.stop('SIGKILL');
      }
    };
    await kill(4, batchJobId(id));
    expect(await attemptsOf(db, id)).toEqual([]);

    // The batch is abandoned, not parked: its events leave the lane (FAILED) and each is retried
    // in a job of its own, so only the culprit keeps failing.
    const isolated = retryJobId(id, 0);
    const fifth = await hub({ ROLE: 'worker', ...BLOCKING });
    await waitFor(
      async () => (await eventRow(db, id)).status === 'FAILED' && (await newRunBlocked(isolated)),
      { timeoutMs: 20_000, what: `${id} to be retried on its own` },
    );
    expect((await eventRow(db, id)).last_error).toMatch(/worker died mid-batch/);
    expect(await count(db, 'SELECT count(*) FROM dead_letter')).toBe(0);
    // The lone job keeps killing its worker too (the first death: the worker running it now).
    await fifth.stop('SIGKILL');
    await kill(3, isolated);

    // The next worker refuses to run it again: it must land in the dead-letter table, not only in
    // Redis's failed set, and the event must say DEAD.
    await hub({ ROLE: 'worker', ...BLOCKING });
    await waitForStatus(db, id, 'DEAD', 20_000);
    const { rows } = await db.query(
      `SELECT id, reason, error, status FROM dead_letter WHERE event_id = $1`,
      [id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ reason: 'EXHAUSTED', status: 'OPEN' });
    expect(rows[0].error).toMatch(/stalled/);
    expect((await attemptsOf(db, id)).map((a) => a.outcome)).toEqual(['DEAD']);

    // Cause gone, an admin replays it: processed once.
    await lock.release();
    const replay = await admin(api, 'POST', `/api/dead-letters/${rows[0].id}/replay`);
    expect(replay.status).toBe(202);
    await waitForProcessed(db, id);
    expect((await attemptsOf(db, id)).map((a) => a.outcome)).toEqual(['DEAD', 'SUCCEEDED']);
  });

  it('SIGTERM waits for the in-flight job, then exits 0', async () => {
    const all = await hub({ ROLE: 'all', ...BLOCKING, SHUTDOWN_TIMEOUT_MS: '10000' });
    const lock = await DealLock.hold('cl_deal_term');
    locks.push(lock);
    const id = await deliver(all, milestoneDelivery('msg_term_1', acceptance('cl_deal_term')));
    await waitUntilBlocked(id);

    const sigterm = Date.now();
    const exit = all.stop('SIGTERM');
    await new Promise((r) => setTimeout(r, 1_000));
    // Still draining: the process waits for the job instead of abandoning it...
    expect(all.proc.exitCode).toBeNull();
    expect((await eventRow(db, id)).status).toBe('RECEIVED');
    // ...but it has stopped accepting: new deliveries go to another api process.
    expect(await connectionError(all.url)).toBe('ECONNREFUSED');

    await lock.release();
    expect(await exit).toBe(0);
    expect(Date.now() - sigterm).toBeLessThan(10_000);
    // The job finished before the pools closed: processed and recorded by the stopping process.
    const done = await eventRow(db, id);
    expect(done.status).toBe('PROCESSED');
    expect(done.attempts).toBe(1);
    expect((await attemptsOf(db, id)).map((a) => a.outcome)).toEqual(['SUCCEEDED']);
    expect(await queue.getJobState(batchJobId(id))).toBe('completed');
  });

  it('a shutdown that exceeds SHUTDOWN_TIMEOUT_MS exits 1; another worker finishes the job once', async () => {
    const all = await hub({ ROLE: 'all', ...BLOCKING, SHUTDOWN_TIMEOUT_MS: '1500' });
    const lock = await DealLock.hold('cl_deal_slow');
    locks.push(lock);
    const id = await deliver(all, milestoneDelivery('msg_slow_1', acceptance('cl_deal_slow')));
    await waitUntilBlocked(id);

    const sigterm = Date.now();
    expect(await all.stop('SIGTERM')).toBe(1);
    const took = Date.now() - sigterm;
    expect(took).toBeGreaterThanOrEqual(1_400);
    expect(took).toBeLessThan(5_000);
    expect((await eventRow(db, id)).status).toBe('RECEIVED');

    await lock.release();
    await hub({ ROLE: 'worker', ...BLOCKING });
    const done = await waitForProcessed(db, id, 20_000);
    expect(done.attempts).toBe(1);
    await new Promise((r) => setTimeout(r, 500));
    expect((await attemptsOf(db, id)).map((a) => a.outcome)).toEqual(['SUCCEEDED']);
  });

  it('an api process stops accepting connections on SIGTERM and exits 0', async () => {
    const api = await hub({ ROLE: 'api' });
    const id = await deliver(api, milestoneDelivery('msg_api_term', acceptance('cl_deal_api')));
    expect(await api.stop('SIGTERM')).toBe(0);
    expect(await connectionError(api.url)).toBe('ECONNREFUSED');
    await expect(
      send(api.url, milestoneDelivery('msg_api_term_2', acceptance('cl_deal_api'))),
    ).rejects.toThrow();
    // What it acknowledged is committed and waits for a worker.
    expect((await eventRow(db, id)).status).toBe('RECEIVED');
    expect(await count(db, 'SELECT count(*) FROM outbox')).toBe(1);
  });
});
