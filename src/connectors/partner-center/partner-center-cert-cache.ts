export interface CertificateCacheOptions {
  /** How long a loaded value is reused before it is loaded again. */
  ttlMs: number;
  /** How long a failed load is remembered and answered again without loading. */
  failureTtlMs: number;
  /** A key is refetched ({@link CertificateCache.refetch}) at most this often. */
  refetchIntervalMs: number;
  /** Proven entries kept; the least recently used goes first. */
  maxProven: number;
  /** Unproven entries (in flight, failed, or never used to verify) kept; the oldest goes first. */
  maxUnproven: number;
  /** Clock in epoch ms. */
  now: () => number;
  /**
   * Whether a failed load is remembered for failureTtlMs (default: all). A refusal that says
   * nothing about the key (too many downloads at once) is not.
   */
  remember?: (error: unknown) => boolean;
}

interface Unproven<T> {
  /** Load start, or the time of the failure once it failed. */
  at: number;
  value: Promise<T>;
  failed: boolean;
}

interface Proven<T> {
  /** When `value` was loaded. */
  at: number;
  /** Last load attempt (for the refetch interval). */
  tried: number;
  value: T;
}

/**
 * The Partner Center certificates by URL, kept in two parts (CONTRACT §3.5, ADR 0011):
 * - unproven entries: anything an attacker can make the hub load (any URL under the pinned
 *   prefix): downloads in flight (shared by concurrent deliveries), failures (remembered for
 *   `failureTtlMs`, so the same junk URL cannot force repeated downloads) and certificates that
 *   have not verified a signature yet; a small FIFO, capped at `maxUnproven`;
 * - proven entries: certificates that verified a signature (only the holder of the private key can
 *   make one), in a map of their own that unproven entries never evict. A proven entry past its
 *   TTL is loaded again, and keeps answering if that load fails.
 */
export class CertificateCache<T> {
  private readonly proven = new Map<string, Proven<T>>();
  private readonly unproven = new Map<string, Unproven<T>>();
  private readonly refetching = new Map<string, Promise<T | undefined>>();

  constructor(
    private readonly load: (key: string) => Promise<T>,
    private readonly options: CertificateCacheOptions,
  ) {}

  /** Sizes, for tests. */
  get sizes(): { proven: number; unproven: number } {
    return { proven: this.proven.size, unproven: this.unproven.size };
  }

  /** The cached value, an in-flight load, a remembered failure, or a new load. */
  async get(key: string): Promise<T> {
    const now = this.options.now();
    const proven = this.proven.get(key);
    if (proven) {
      this.proven.delete(key);
      this.proven.set(key, proven); // most recently used last
      if (now - proven.at < this.options.ttlMs) return proven.value;
      // Expired: load it again, but keep answering with the proven value if that fails.
      return (await this.refetch(key).catch(() => undefined)) ?? proven.value;
    }
    const entry = this.unproven.get(key);
    const ttl = entry?.failed ? this.options.failureTtlMs : this.options.ttlMs;
    if (entry && now - entry.at < ttl) return entry.value;
    return this.loadUnproven(key, now);
  }

  /**
   * Records that `value`, loaded for `key`, verified a signature: from now on it lives among the
   * proven entries.
   */
  prove(key: string, value: T): void {
    const proven = this.proven.get(key);
    if (proven) {
      proven.value = value;
      return;
    }
    const entry = this.unproven.get(key);
    const at = entry && !entry.failed ? entry.at : this.options.now();
    this.unproven.delete(key);
    this.proven.set(key, { at, tried: at, value });
    while (this.proven.size > this.options.maxProven) {
      this.proven.delete(this.proven.keys().next().value as string);
    }
  }

  /**
   * Loads `key` again (a certificate replaced behind the same URL), unless it was loaded less than
   * `refetchIntervalMs` ago. A load that succeeds replaces the cached value; one that fails leaves
   * the cached value in place and rejects.
   *
   * @returns the new value, or `undefined` when it was too soon to load again
   */
  refetch(key: string): Promise<T | undefined> {
    const running = this.refetching.get(key);
    if (running) return running;
    const now = this.options.now();
    const proven = this.proven.get(key);
    const entry = this.unproven.get(key);
    const last = proven ? proven.tried : entry?.at;
    if (last === undefined || now - last < this.options.refetchIntervalMs) {
      return Promise.resolve(undefined);
    }
    const mark = (at: number) => {
      if (proven) proven.tried = at;
      else if (entry) entry.at = at;
    };
    mark(now);
    const attempt = this.load(key)
      .then(
        (value) => {
          if (this.proven.get(key) === proven && proven) Object.assign(proven, { value, at: now });
          else if (!proven)
            this.store(key, { at: now, value: Promise.resolve(value), failed: false });
          return value;
        },
        (error: unknown) => {
          if (!(this.options.remember?.(error) ?? true)) mark(last); // it never got to load
          throw error;
        },
      )
      .finally(() => this.refetching.delete(key));
    this.refetching.set(key, attempt);
    return attempt;
  }

  private loadUnproven(key: string, now: number): Promise<T> {
    const value = this.load(key);
    const entry: Unproven<T> = { at: now, value, failed: false };
    this.store(key, entry);
    value.catch((error: unknown) => {
      if (this.unproven.get(key) !== entry) return;
      if (this.options.remember?.(error) ?? true) {
        entry.failed = true;
        entry.at = this.options.now();
      } else {
        this.unproven.delete(key);
      }
    });
    return value;
  }

  private store(key: string, entry: Unproven<T>): void {
    this.unproven.delete(key);
    this.unproven.set(key, entry);
    while (this.unproven.size > this.options.maxUnproven) {
      this.unproven.delete(this.unproven.keys().next().value as string);
    }
  }
}
