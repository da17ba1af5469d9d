import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Pool } from 'pg';

import { TransientError } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { CONNECTION_OPTIONS } from '../prisma/prisma.service';

/** Queues whose jobs hold a session lock while they run: billing and connectors. */
const LOCKING_QUEUES = 2;

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
      // One lock connection per job that can run at once on the queues whose jobs take these locks
      // (billing: one invoice per key; connectors: envelope, report deliveries, CRM write-back), so a
      // job never waits for a connection, and the main pool is never used for them. Event lanes
      // take transaction-scoped locks on the main pool instead (docs/decisions/0007).
      max: config.env.WORKER_CONCURRENCY * LOCKING_QUEUES,
      connectionTimeoutMillis: 5_000,
      // Keepalives and the dead-client check: Postgres drops (and unlocks) the session of a worker
      // that died or vanished within seconds, not hours.
      options: CONNECTION_OPTIONS,
    });
    this.pool.on('error', () => undefined);
    // Once per connection: the lock wait bound.
    this.pool.on('connect', (client) => {
      client
        .query(`SET lock_timeout = ${config.env.SERIALIZATION_LOCK_TIMEOUT_MS}`)
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
