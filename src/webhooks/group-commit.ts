/**
 * Group commit: concurrent callers' rows are written by one statement. At most `maxInFlight`
 * statements run at once; whatever arrives meanwhile waits and goes into the next statement, so
 * a lone request is written at once and a busy door writes many rows per round trip (the floor's
 * measured limit is single-row commits, shared/bench/floor/README.md). Every caller still waits
 * for the commit that holds its rows: acknowledgement semantics are unchanged.
 *
 * A failed batch of several callers is retried caller by caller, so one bad row (say, a payload
 * Postgres cannot store) fails only its own delivery.
 */
export class GroupCommit<Row, Result> {
  private readonly waiting: {
    rows: Row[];
    resolve: (r: Result) => void;
    reject: (e: unknown) => void;
  }[] = [];
  private inFlight = 0;

  constructor(
    /** Writes the rows in one statement; returns, per caller, its result. */
    private readonly write: (batches: Row[][]) => Promise<Result[]>,
    private readonly opts: { maxInFlight: number; maxRows: number },
  ) {}

  submit(rows: Row[]): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.waiting.push({ rows, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.opts.maxInFlight && this.waiting.length > 0) {
      const batch = [this.waiting.shift()!];
      let rows = batch[0].rows.length;
      while (this.waiting.length > 0 && rows + this.waiting[0].rows.length <= this.opts.maxRows) {
        rows += this.waiting[0].rows.length;
        batch.push(this.waiting.shift()!);
      }
      this.inFlight++;
      void this.flush(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async flush(batch: typeof this.waiting): Promise<void> {
    try {
      const results = await this.write(batch.map((b) => b.rows));
      batch.forEach((b, i) => b.resolve(results[i]));
    } catch (err) {
      if (batch.length === 1) return batch[0].reject(err);
      for (const b of batch) {
        await this.write([b.rows]).then(([r]) => b.resolve(r), b.reject);
      }
    }
  }
}
