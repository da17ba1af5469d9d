import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';

import { SimProviderName } from './sim.types';

/** One provider request the simulator received (control API requests are not logged). */
export interface SimRequestLogEntry {
  /** Increasing sequence number (1-based, never reused within one simulator). */
  seq: number;
  provider?: SimProviderName;
  method: string;
  path: string;
  idempotencyKey?: string;
  /** Status answered (or, for `dropped: 'after'`, the status the module produced); undefined while in flight. */
  status?: number;
  /** Arrival time, ms since the epoch with sub-ms resolution (performance.timeOrigin + performance.now()). */
  at: number;
  /** Time the response was written (or the socket destroyed), same clock as `at`. */
  doneAt?: number;
  /** Set when a fault rule destroyed the connection. */
  dropped?: 'before' | 'after';
  /** What a fault rule did to the request, e.g. `status 500`, `delay 200ms`, `drop after`. */
  fault?: string;
}

export interface SimRequestFilter {
  provider?: string;
  method?: string;
  pathPrefix?: string;
  /** Only entries with seq greater than this. */
  afterSeq?: number;
}

export const now = (): number => performance.timeOrigin + performance.now();

/**
 * Bounded in-memory request log. `on('request', cb)` fires when a request arrives (status still
 * undefined); `on('response', cb)` fires once it has been answered or dropped.
 */
export class SimRequestLog extends EventEmitter {
  private entries: SimRequestLogEntry[] = [];
  private seq = 0;

  constructor(readonly capacity = 50_000) {
    super();
    this.setMaxListeners(100);
  }

  record(init: Omit<SimRequestLogEntry, 'seq' | 'at'> & { at?: number }): SimRequestLogEntry {
    const entry: SimRequestLogEntry = { ...init, seq: ++this.seq, at: init.at ?? now() };
    this.entries.push(entry);
    // Trim in batches so that recording stays O(1) amortised.
    if (this.entries.length > this.capacity + Math.max(1, this.capacity >> 4)) {
      this.entries.splice(0, this.entries.length - this.capacity);
    }
    if (this.listenerCount('request') > 0) this.emit('request', entry);
    return entry;
  }

  complete(entry: SimRequestLogEntry, status: number | undefined): void {
    entry.status = status;
    entry.doneAt = now();
    if (this.listenerCount('response') > 0) this.emit('response', entry);
  }

  /** Entries (oldest first) matching the filter. */
  list(filter: SimRequestFilter = {}): SimRequestLogEntry[] {
    const { provider, pathPrefix, afterSeq } = filter;
    const method = filter.method?.toUpperCase();
    return this.entries.filter(
      (e) =>
        (provider === undefined || e.provider === provider) &&
        (method === undefined || e.method === method) &&
        (pathPrefix === undefined || e.path.startsWith(pathPrefix)) &&
        (afterSeq === undefined || e.seq > afterSeq),
    );
  }

  count(filter: SimRequestFilter = {}): number {
    return this.list(filter).length;
  }

  /** The newest entry (optionally matching a filter). */
  last(filter: SimRequestFilter = {}): SimRequestLogEntry | undefined {
    const list = this.list(filter);
    return list[list.length - 1];
  }

  get size(): number {
    return this.entries.length;
  }

  /** The seq of the newest entry ever recorded (0 before the first), for `afterSeq` filters. */
  get lastSeq(): number {
    return this.seq;
  }

  /** Forget the entries (listeners stay attached). */
  clear(): void {
    this.entries = [];
  }
}
