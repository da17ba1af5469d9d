import { GroupCommit } from './group-commit';

/** A writer whose statements finish when the test says so. */
function controllableWriter() {
  const calls: { batches: number[][]; finish: (fail?: boolean) => void }[] = [];
  const write = (batches: number[][]) =>
    new Promise<number[]>((resolve, reject) => {
      calls.push({
        batches,
        finish: (fail = false) =>
          fail ? reject(new Error('boom')) : resolve(batches.map((b) => b.length)),
      });
    });
  return { calls, write };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('GroupCommit', () => {
  it('writes a lone caller at once, in a statement of its own', async () => {
    const { calls, write } = controllableWriter();
    const gc = new GroupCommit(write, { maxInFlight: 2, maxRows: 10 });
    const p = gc.submit([1, 2]);
    expect(calls).toHaveLength(1);
    calls[0].finish();
    await expect(p).resolves.toBe(2);
  });

  it('puts callers that arrive while statements are in flight into one next statement', async () => {
    const { calls, write } = controllableWriter();
    const gc = new GroupCommit(write, { maxInFlight: 1, maxRows: 10 });
    const first = gc.submit([1]);
    const rest = [gc.submit([2]), gc.submit([3, 4]), gc.submit([5])];
    expect(calls).toHaveLength(1);
    calls[0].finish();
    await first;
    await tick();
    expect(calls).toHaveLength(2);
    expect(calls[1].batches).toEqual([[2], [3, 4], [5]]);
    calls[1].finish();
    await expect(Promise.all(rest)).resolves.toEqual([1, 2, 1]);
  });

  it('never puts more than maxRows rows in one statement', async () => {
    const { calls, write } = controllableWriter();
    const gc = new GroupCommit(write, { maxInFlight: 1, maxRows: 3 });
    void gc.submit([0]);
    const later = [gc.submit([1, 2]), gc.submit([3]), gc.submit([4])];
    calls[0].finish();
    await tick();
    expect(calls[1].batches).toEqual([[1, 2], [3]]);
    calls[1].finish();
    await tick();
    expect(calls[2].batches).toEqual([[4]]);
    calls[2].finish();
    await expect(Promise.all(later)).resolves.toEqual([2, 1, 1]);
  });

  it('retries a failed shared statement caller by caller, so only the bad one fails', async () => {
    const seen: number[][][] = [];
    const gc = new GroupCommit<number, string>(
      async (batches) => {
        seen.push(batches);
        if (batches.flat().includes(13)) throw new Error('bad row 13');
        return batches.map((b) => `ok:${b.join(',')}`);
      },
      { maxInFlight: 1, maxRows: 10 },
    );
    const blocker = gc.submit([0]);
    const results = await Promise.allSettled([gc.submit([1]), gc.submit([13]), gc.submit([2])]);
    await blocker;
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(seen.slice(1)).toEqual([[[1], [13], [2]], [[1]], [[13]], [[2]]]);
  });
});
