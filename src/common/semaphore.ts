/**
 * At most `permits` tasks run at once; the others wait in arrival order. In-process only: what
 * must hold across processes (Stripe's rate) is the rate limiters' job, this bounds the work and
 * memory one process takes on.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly permits: number) {
    if (!Number.isInteger(permits) || permits < 1) {
      throw new Error(`a semaphore needs at least one permit, got ${permits}`);
    }
  }

  /** Tasks running now (for tests and metrics). */
  get running(): number {
    return this.active;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.permits) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await task();
    } finally {
      // Hand the permit straight to the next waiter (active stays the same), else give it back.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
