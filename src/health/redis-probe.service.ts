import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Redis } from 'ioredis';

import { AppConfig } from '../config/app-config';

/** Longest a PING may take on a connected socket (a stalled Redis) before it counts as down. */
const PING_TIMEOUT_MS = 1_000;
const RECONNECT_EVERY_MS = 500;

/**
 * Tells readiness and metrics at once whether Redis answers, on a small connection of its own.
 * BullMQ's connections wait for Redis instead: a command issued while Redis is away hangs until it
 * comes back (forever when the process started without it), which is right for producers but not
 * for a probe. This connection never queues a command: while it is not connected, ping() fails
 * immediately, and it keeps reconnecting in the background so recovery is seen within a second.
 */
@Injectable()
export class RedisProbeService implements OnModuleDestroy {
  private readonly client: Redis;
  private lastError?: string;

  constructor(config: AppConfig) {
    this.client = new Redis(config.env.REDIS_URL, {
      connectionName: 'closeloop-health',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: PING_TIMEOUT_MS,
      commandTimeout: PING_TIMEOUT_MS,
      retryStrategy: () => RECONNECT_EVERY_MS,
    });
    // Connection errors are what ping() reports; without a listener ioredis prints each one.
    this.client.on('error', (err: Error) => (this.lastError = err.message));
    this.client.on('ready', () => (this.lastError = undefined));
  }

  /** Whether the probe's connection is up right now (no round trip). */
  get connected(): boolean {
    return this.client.status === 'ready';
  }

  /**
   * Resolves when Redis answers PING. Rejects at once while disconnected, except that a connection
   * attempt under way (at boot, or a reconnect) is given up to a second to finish.
   */
  async ping(): Promise<void> {
    if (this.client.status === 'connecting' || this.client.status === 'connect') {
      await this.attemptSettled();
    }
    if (!this.connected) {
      const why = this.lastError ? `: ${this.lastError}` : '';
      throw new Error(`not connected (${this.client.status}${why})`);
    }
    await this.client.ping();
  }

  /** Resolves when the connection attempt under way succeeds or fails, or after PING_TIMEOUT_MS. */
  private attemptSettled(): Promise<void> {
    return new Promise((resolve) => {
      const events = ['ready', 'error', 'close'] as const;
      const done = () => {
        clearTimeout(timer);
        for (const e of events) this.client.off(e, done);
        resolve();
      };
      const timer = setTimeout(done, PING_TIMEOUT_MS);
      for (const e of events) this.client.once(e, done);
    });
  }

  onModuleDestroy(): void {
    this.client.disconnect();
  }
}
