import { randomUUID } from 'node:crypto';

import { Job, Queue, Worker } from 'bullmq';

import { laneDrainDeduplication } from '../../src/webhooks/event-lane';
import { waitFor } from '../support/hub';
import { TEST_REDIS_URL } from '../support/test-env';

/**
 * A lane's drain jobs on real BullMQ/Redis (docs/decisions/0007): a drain asked for while another
 * drain of the lane runs is never dropped — the running one may already be past its last look at
 * the lane — and a drain asked for now brings a delayed one forward.
 */
describe('lane drains: hand-on deduplication', () => {
  const connection = { url: TEST_REDIS_URL, maxRetriesPerRequest: null };
  let queue: Queue;
  let worker: Worker | undefined;

  beforeEach(() => {
    queue = new Queue(`lane-handon-${randomUUID()}`, { connection });
  });
  afterEach(async () => {
    await worker?.close();
    worker = undefined;
    await queue.obliterate({ force: true });
    await queue.close();
  });

  const drain = (lane: string, delayMs: number) =>
    queue.add(
      'WebhookLaneDrain',
      { lane },
      {
        delay: delayMs,
        deduplication: laneDrainDeduplication(lane, delayMs),
        removeOnComplete: true,
      },
    );

  it('a drain asked for while one runs follows it; asked for again and again, it runs once more', async () => {
    const runs: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    worker = new Worker(
      queue.name,
      async (job: Job<{ lane: string }>) => {
        runs.push(job.data.lane);
        if (runs.length === 1) await held;
      },
      { connection, concurrency: 4 },
    );
    await drain('deal:a', 0);
    await waitFor(() => runs.length === 1, { what: 'the first drain to start' });

    // The first drain is running (past its last look at the lane, say): three more asks.
    await drain('deal:a', 0);
    await drain('deal:a', 2_000);
    await drain('deal:a', 0);
    // Another lane is not held up by this one.
    await drain('deal:b', 0);
    await waitFor(() => runs.includes('deal:b'), { what: 'the other lane' });
    expect(runs.filter((l) => l === 'deal:a')).toHaveLength(1);

    release();
    await waitFor(() => runs.filter((l) => l === 'deal:a').length === 2, {
      what: 'the follow-up drain',
      timeoutMs: 5_000,
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(runs.filter((l) => l === 'deal:a')).toHaveLength(2);
    expect(await queue.getJobCounts('waiting', 'delayed', 'active')).toEqual({
      waiting: 0,
      delayed: 0,
      active: 0,
    });
  });

  it('while a drain waits, asks add nothing; a drain asked for now brings a delayed one forward', async () => {
    await drain('deal:c', 60_000);
    await drain('deal:c', 60_000);
    expect(await queue.getJobCounts('waiting', 'delayed')).toEqual({ waiting: 0, delayed: 1 });

    await drain('deal:c', 0);
    const runs: number[] = [];
    worker = new Worker(queue.name, async () => void runs.push(Date.now()), { connection });
    const asked = Date.now();
    await waitFor(() => runs.length === 1, { what: 'the brought-forward drain', timeoutMs: 5_000 });
    expect(runs[0] - asked).toBeLessThan(5_000);
    expect(await queue.getJobCounts('waiting', 'delayed')).toEqual({ waiting: 0, delayed: 0 });
  });
});
