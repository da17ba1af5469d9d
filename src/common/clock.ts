/**
 * The hub's one source of business time: what is due (silent approvals, monthly billing dates,
 * referral response clocks, report deadlines), and the instants the hub stamps on its own business
 * facts (won, delivered, posted, paid, reported). Every worker clock (PeriodicPass) reads it, so a
 * test or a demo can run whole hub processes on a known date (CLOCK_START) instead of today's.
 *
 * Not read from it: transport and security time, which must be the real one — signature
 * tolerances, token caches, rate-limit windows, Retry-After, job backoff — and the recording
 * timestamps Postgres fills in by itself (received_at, created_at, timeline `at`).
 */
export abstract class Clock {
  abstract now(): Date;

  nowMs(): number {
    return this.now().getTime();
  }
}

/** Real time. */
export class SystemClock extends Clock {
  now(): Date {
    return new Date();
  }
}

/**
 * Real time shifted so that the process's clock read `startAt` when it was made, then runs at real
 * speed (CLOCK_START). Processes started together agree to within their start-up skew.
 */
export class ShiftedClock extends Clock {
  private readonly offsetMs: number;

  constructor(startAt: Date, realNowMs = Date.now()) {
    super();
    this.offsetMs = startAt.getTime() - realNowMs;
  }

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

/** A clock that stands still until moved (unit tests). */
export class ManualClock extends Clock {
  private ms: number;

  constructor(at: Date | string) {
    super();
    this.ms = new Date(at).getTime();
  }

  now(): Date {
    return new Date(this.ms);
  }

  set(at: Date | string): void {
    this.ms = new Date(at).getTime();
  }

  advance(ms: number): void {
    this.ms += ms;
  }
}
