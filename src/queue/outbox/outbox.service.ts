import { Injectable } from '@nestjs/common';

import { Prisma } from '../../generated/prisma/client';
import { JobDataMap } from '../job-data.types';
import { JOB_QUEUE, JobName } from '../job-name.enum';

/**
 * Writes jobs into the transactional outbox, inside the caller's transaction: the job exists if
 * and only if the caller's change committed. The relay hands it to BullMQ.
 */
@Injectable()
export class OutboxService {
  async enqueue<N extends JobName>(
    tx: Prisma.TransactionClient,
    name: N,
    jobId: string,
    data: JobDataMap[N],
  ): Promise<void> {
    // Raw SQL: it runs for most events on the hot path (src/prisma/model-columns.ts).
    await tx.$executeRaw`${this.insertSql(name, jobId, data)}`;
  }

  /**
   * The INSERT of one job's outbox row, for a statement that writes the job together with the row
   * it is for: with `onRowOf` (the name of a CTE of that statement), written only if that CTE
   * returned a row (e.g. the invoice it issues was inserted).
   */
  insertSql<N extends JobName>(
    name: N,
    jobId: string,
    data: JobDataMap[N],
    onRowOf?: string,
  ): Prisma.Sql {
    const values = Prisma.sql`${JOB_QUEUE[name]}, ${name}, ${jobId}, ${JSON.stringify(data)}::jsonb`;
    return onRowOf
      ? Prisma.sql`INSERT INTO outbox (queue, job_name, job_id, data)
                   SELECT ${values} FROM ${Prisma.raw(onRowOf)} LIMIT 1`
      : Prisma.sql`INSERT INTO outbox (queue, job_name, job_id, data) VALUES (${values})`;
  }
}
