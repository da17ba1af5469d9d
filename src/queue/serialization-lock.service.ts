import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Pool } from 'pg';

import { TransientError } from '../common/errors';
import { AppConfig } from '../config/app-config';

/**
 * Serializes work per subject (a deal): a Postgres session advisory lock on the subject key, held
 * on a connection of its own while the work runs. Postgres releases it if the worker dies. Waiting
 * longer than SERIALIZATION_LOCK_TIMEOUT_MS is a transient failure: the job retries later.
 */
@Injectable()
export class SerializationLockService implements OnModuleDestroy {
  private readonly pool: Pool;

  constructor(config: AppConfig) {
    this.pool = new Pool({
      connectionString: config.env.DATABASE_URL,
      // One lock connection per concurrently running job, never starving the main pool.
      max: config.env.WORKER_CONCURRENCY,
      connectionTimeoutMillis: 5_000,
    });
    this.pool.on('error', () => undefined);
    // Once per connection: the lock wait bound, and server-side keepalives so that Postgres drops
    // (and unlocks) the session of a worker host that vanished within about a minute, not hours.
    this.pool.on('connect', (client) => {
      client
        .query(
          `SET lock_timeout = ${config.env.SERIALIZATION_LOCK_TIMEOUT_MS};` +
            'SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3',
        )
        .catch(() => undefined);
    });
  }

  async withLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let locked = false;
    try {
      try {
        await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
      } catch (err) {
        if ((err as { code?: string }).code === '55P03') {
          throw new TransientError(`subject ${key} is busy (lock wait timed out)`, undefined, {
            cause: err,
          });
        }
        throw err;
      }
      locked = true;
      return await work();
    } finally {
      let broken = false;
      if (locked) {
        await client
          .query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key])
          .catch(() => {
            broken = true; // dropping the connection releases the lock
          });
      }
      client.release(broken);
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}
