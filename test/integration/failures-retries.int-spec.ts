import { Pool } from 'pg';

import { RunningHub, startHub, testDb, truncateAll, waitFor } from '../support/hub';
import {
  DealLock,
  acceptance,
  admin,
  attemptsOf,
  batchJobId,
  count,
  deliver,
  eventRow,
  flushTestRedis,
  milestoneDelivery,
  retryJobId,
  stopAll,
  waitForProcessed,
  waitForStatus,
  seedTestDeals,
} from '../support/failures';

/**
 * Retries and dead letters through production code only: a transient failure is the worker
 * timing out on a subject's serialization lock that the test holds; a permanent failure is a
 * milestone acceptance that names no deal (payload validation).
 */

interface DeadLetterJson {
  id: string;
  eventId: string;
  reason: string;
  error: string;
  attempts: number;
  status: string;
  event: { provider: string; type: string; providerEventId: string } | null;
}

async function deadLetters(hub: RunningHub, status?: string): Promise<DeadLetterJson[]> {
  const res = await admin(hub, 'GET', `/api/dead-letters${status ? `?status=${status}` : ''}`);
  expect(res.status).toBe(200);
  return (res.body as { items: DeadLetterJson[] }).items;
}

describe('failures: transient retries and permanent errors', () => {
  let db: Pool;
  let hub: RunningHub | undefined;
  const locks: DealLock[] = [];

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await seedTestDeals(db);
    await flushTestRedis();
    hub = await startHub({
      SERIALIZATION_LOCK_TIMEOUT_MS: '200',
      JOB_ATTEMPTS: '10',
      JOB_BACKOFF_BASE_MS: '50',
      JOB_BACKOFF_MAX_MS: '200',
    });
  });
  afterEach(async () => {
    await Promise.all(locks.splice(0).map((l) => l.release()));
  });
  afterAll(async () => {
    await stopAll(hub);
    await db?.end();
  });

  it('retries a transient failure with backoff, then succeeds exactly once', async () => {
    const lock = await DealLock.hold('cl_deal_transient');
    locks.push(lock);
    const id = await deliver(
      hub!,
      milestoneDelivery('msg_transient_1', acceptance('cl_deal_transient')),
    );

    // While the subject is busy every attempt times out on the lock: a transient failure.
    await waitFor(
      async () => (await attemptsOf(db, id)).filter((a) => a.outcome === 'RETRYING').length >= 2,
      { timeoutMs: 15_000, what: 'two RETRYING attempts' },
    );
    const failed = await eventRow(db, id);
    expect(failed.status).toBe('FAILED');
    expect(failed.last_error).toMatch(/deal:cl_deal_transient is busy \(lock wait timed out\)/);
    expect(await count(db, 'SELECT count(*) FROM dead_letter')).toBe(0);

    await lock.release();
    const done = await waitForProcessed(db, id);

    const attempts = await attemptsOf(db, id);
    const retrying = attempts.filter((a) => a.outcome === 'RETRYING');
    const succeeded = attempts.filter((a) => a.outcome === 'SUCCEEDED');
    expect(retrying.length).toBeGreaterThanOrEqual(2);
    expect(retrying.length).toBeLessThan(10);
    expect(succeeded).toHaveLength(1);
    // Attempts numbered 1..n in order, the success last: the first in the door's batch job, each
    // retry a job of its own scheduled from Postgres (the n-th retry follows attempt n).
    expect(attempts.map((a) => a.attempt)).toEqual(attempts.map((_, i) => i + 1));
    expect(attempts[attempts.length - 1].outcome).toBe('SUCCEEDED');
    expect(attempts.map((a) => a.job_id)).toEqual(
      attempts.map((_, i) => (i === 0 ? batchJobId(id) : retryJobId(id, i))),
    );
    for (const a of retrying) expect(a.error).toMatch(/TransientError: .*lock wait timed out/);
    // Every run counted on the event; the error cleared by the success.
    expect(done.attempts).toBe(retrying.length + 1);
    expect(done.last_error).toBeNull();
    expect(done.processed_at).not.toBeNull();
    expect(await count(db, 'SELECT count(*) FROM dead_letter')).toBe(0);

    // Nothing runs again afterwards.
    await new Promise((r) => setTimeout(r, 500));
    expect(await attemptsOf(db, id)).toHaveLength(attempts.length);
  });

  it('dead-letters a permanent error at once, after exactly one attempt', async () => {
    const id = await deliver(
      hub!,
      milestoneDelivery('msg_permanent_1', {
        itemKey: 'design',
        acceptedAt: '2026-11-23T10:00:00Z',
      }),
    );
    const dead = await waitForStatus(db, id, 'DEAD');
    expect(dead.attempts).toBe(1);
    expect(dead.last_error).toMatch(/dealId or crmDealId is required/);

    // Give a (wrong) retry every chance to happen: backoff here is at most 200 ms.
    await new Promise((r) => setTimeout(r, 800));
    const attempts = await attemptsOf(db, id);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ attempt: 1, outcome: 'DEAD' });

    const { rows } = await db.query(
      `SELECT reason, error, attempts, status, job_id FROM dead_letter WHERE event_id = $1`,
      [id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      reason: 'PERMANENT',
      attempts: 1,
      status: 'OPEN',
      job_id: retryJobId(id, 1),
    });
    expect(rows[0].error).toMatch(
      /PermanentError: invalid milestone.accepted payload: .*dealId or crmDealId is required/,
    );

    const listed = await deadLetters(hub!);
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({
      eventId: id,
      reason: 'PERMANENT',
      attempts: 1,
      status: 'OPEN',
      event: {
        provider: 'milestones',
        type: 'milestone.accepted',
        providerEventId: 'msg_permanent_1',
      },
    });
    expect(listed[0].error).toMatch(/dealId or crmDealId is required/);

    const events = await admin(hub!, 'GET', '/api/events?status=DEAD');
    expect((events.body as { items: { id: string }[] }).items.map((e) => e.id)).toEqual([id]);
  });
});

describe('failures: exhausted retries, dead letters and their replay', () => {
  let db: Pool;
  let hub: RunningHub | undefined;
  const locks: DealLock[] = [];

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await seedTestDeals(db);
    await flushTestRedis();
    hub = await startHub({
      SERIALIZATION_LOCK_TIMEOUT_MS: '200',
      JOB_ATTEMPTS: '3',
      JOB_BACKOFF_BASE_MS: '50',
      JOB_BACKOFF_MAX_MS: '200',
    });
  });
  afterAll(async () => {
    await Promise.all(locks.splice(0).map((l) => l.release()));
    await stopAll(hub);
    await db?.end();
  });

  it('dead-letters after JOB_ATTEMPTS, survives a Redis flush, replays once, discards', async () => {
    const lock = await DealLock.hold('cl_deal_exhausted');
    locks.push(lock);
    const id = await deliver(
      hub!,
      milestoneDelivery('msg_exhausted_1', acceptance('cl_deal_exhausted')),
    );

    const dead = await waitForStatus(db, id, 'DEAD');
    expect(dead.attempts).toBe(3);
    const attempts = await attemptsOf(db, id);
    expect(attempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'RETRYING'],
      [2, 'RETRYING'],
      [3, 'DEAD'],
    ]);
    const [letter] = await deadLetters(hub!);
    expect(letter).toMatchObject({ eventId: id, reason: 'EXHAUSTED', attempts: 3, status: 'OPEN' });
    expect(letter.error).toMatch(/lock wait timed out/);

    // Dead letters live in Postgres: wiping Redis loses none of them.
    await flushTestRedis();
    const afterFlush = await deadLetters(hub!);
    expect(afterFlush.map((d) => d.id)).toEqual([letter.id]);

    // Replay with the cause gone: processed once.
    await lock.release();
    const replay = await admin(hub!, 'POST', `/api/dead-letters/${letter.id}/replay`);
    expect(replay.status).toBe(202);
    expect(replay.body).toMatchObject({ deadLetterId: letter.id, eventId: id, status: 'REPLAYED' });
    const done = await waitForProcessed(db, id);
    expect(done.replay_count).toBe(1);
    const after = await attemptsOf(db, id);
    expect(after.filter((a) => a.outcome === 'SUCCEEDED')).toHaveLength(1);
    expect(after[after.length - 1]).toMatchObject({
      job_id: `${letter.id}-replay`,
      outcome: 'SUCCEEDED',
    });

    // A dead letter is replayed at most once, and a replayed one cannot be discarded.
    const again = await admin(hub!, 'POST', `/api/dead-letters/${letter.id}/replay`);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: { code: 'DEAD_LETTER_NOT_OPEN' } });
    expect((await admin(hub!, 'DELETE', `/api/dead-letters/${letter.id}`)).status).toBe(409);
    expect(await deadLetters(hub!)).toEqual([]);
    expect((await deadLetters(hub!, 'REPLAYED')).map((d) => d.id)).toEqual([letter.id]);
    await new Promise((r) => setTimeout(r, 300));
    expect((await attemptsOf(db, id)).filter((a) => a.outcome === 'SUCCEEDED')).toHaveLength(1);

    // Discarding an open dead letter: 204, gone from the open list, listed as DISCARDED.
    const badId = await deliver(
      hub!,
      milestoneDelivery('msg_exhausted_bad', { itemKey: 'design' }),
    );
    await waitForStatus(db, badId, 'DEAD');
    const [open] = await deadLetters(hub!);
    expect(open).toMatchObject({ eventId: badId, reason: 'PERMANENT' });
    const discard = await admin(hub!, 'DELETE', `/api/dead-letters/${open.id}`);
    expect(discard.status).toBe(204);
    expect(await deadLetters(hub!)).toEqual([]);
    expect((await deadLetters(hub!, 'DISCARDED')).map((d) => d.id)).toEqual([open.id]);
    expect((await admin(hub!, 'DELETE', `/api/dead-letters/${open.id}`)).status).toBe(409);
    expect((await admin(hub!, 'POST', `/api/dead-letters/${open.id}/replay`)).status).toBe(409);
    expect((await admin(hub!, 'DELETE', '/api/dead-letters/dl_nope')).status).toBe(404);
    // The discarded event stays DEAD, and nothing was enqueued for it.
    expect((await eventRow(db, badId)).status).toBe('DEAD');
    expect(await count(db, 'SELECT count(*) FROM outbox')).toBe(0);
  });
});
