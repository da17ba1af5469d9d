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
    await tx.$executeRaw`
      INSERT INTO outbox (queue, job_name, job_id, data)
      VALUES (${JOB_QUEUE[name]}, ${name}, ${jobId}, ${JSON.stringify(data)}::jsonb)`;
  }
}
