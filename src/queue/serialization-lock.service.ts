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

  constructor(private readonly config: AppConfig) {
    this.pool = new Pool({
      connectionString: config.env.DATABASE_URL,
      // One lock connection per concurrently running job, never starving the main pool.
      max: config.env.WORKER_CONCURRENCY,
      connectionTimeoutMillis: 5_000,
    });
    this.pool.on('error', () => undefined);
  }

  async withLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let locked = false;
    try {
      await client.query(`SELECT set_config('lock_timeout', $1, false)`, [
        `${this.config.env.SERIALIZATION_LOCK_TIMEOUT_MS}ms`,
      ]);
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
