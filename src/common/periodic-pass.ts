import { Clock } from './clock';

/**
 * Runs one pass of a worker clock every `everyMs` (timers, deadlines, alert checks): never two
 * passes of the same clock at once in a process, never keeping the process alive, and `stop()`
 * waits for the pass in flight. Each pass is given the hub's Clock time. What a pass does must be
 * safe when every worker runs it.
 */
export class PeriodicPass {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly everyMs: number,
    private readonly clock: Clock,
    private readonly pass: (now: Date) => Promise<unknown>,
    private readonly onError: (err: Error) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.pass(this.clock.now())
        .catch((err: Error) => this.onError(err))
        .finally(() => (this.running = undefined));
    }, this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
