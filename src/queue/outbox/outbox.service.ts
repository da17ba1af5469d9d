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
    await tx.outboxMessage.create({
      data: {
        queue: JOB_QUEUE[name],
        jobName: name,
        jobId,
        data: data as unknown as Prisma.InputJsonValue,
      },
    });
  }
}
