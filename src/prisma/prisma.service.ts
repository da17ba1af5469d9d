import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Pool } from 'pg';

import { AppConfig } from '../config/app-config';
import { Prisma, PrismaClient } from '../generated/prisma/client';
import { TransactionCapturingPg, withTransactionConnection } from './direct-raw';

/** Server settings of every session the hub opens (PostgreSQL 14+; Linux). */
export const CONNECTION_OPTIONS =
  '-c client_connection_check_interval=2000 -c tcp_keepalives_idle=30 ' +
  '-c tcp_keepalives_interval=10 -c tcp_keepalives_count=3';

/**
 * The Prisma client over one pg Pool. The pool is also exposed for the few statements Prisma
 * cannot express well (the inbox's insert-with-outbox statement, session advisory locks).
 */
@Injectable()
export class PrismaService extends PrismaClient implements OnModuleDestroy {
  readonly pool: Pool;

  constructor(config: AppConfig) {
    const pool = new Pool({
      connectionString: config.env.DATABASE_URL,
      max: config.env.DB_POOL_SIZE,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      // A session whose process died (SIGKILL, a lost host) while it waited for a lock notices
      // within 2 s and ends, releasing its transaction's locks (a lane, a deal row) at once.
      options: CONNECTION_OPTIONS,
    });
    // A broken idle connection must not crash the process; the pool replaces it.
    pool.on('error', () => undefined);
    super({ adapter: new TransactionCapturingPg(pool) });
    this.pool = pool;
  }

  /**
   * An interactive transaction (as `$transaction(fn, options)`) whose `tx.$queryRaw`,
   * `$executeRaw` and their Unsafe forms run straight on the transaction's pg connection, with
   * Prisma's result types (src/prisma/direct-raw.ts): for hot transactions made mostly of raw SQL.
   */
  transaction<T>(
    fn: (tx: Prisma.TransactionClient) => Promise<T>,
    options?: { maxWait?: number; timeout?: number },
  ): Promise<T> {
    return withTransactionConnection((wrap) => this.$transaction((tx) => fn(wrap(tx)), options));
  }

  async onModuleDestroy(): Promise<void> {
    await this.$disconnect();
    await this.pool.end().catch(() => undefined);
  }
}
