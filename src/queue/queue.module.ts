import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';

import { AppConfig } from '../config/app-config';
import { OutboxService } from './outbox/outbox.service';
import { QueueName } from './queue-name.enum';
import { SerializationLockService } from './serialization-lock.service';

/**
 * Producer side of the queues (both roles): BullMQ Queue instances, the outbox writer and the
 * per-subject serialization lock (its pool connects only when first used).
 */
@Module({
  imports: [
    BullModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        // Producers fail fast instead of buffering while Redis is away; the outbox keeps the work.
        connection: { url: config.env.REDIS_URL, maxRetriesPerRequest: 2, connectTimeout: 2_000 },
      }),
    }),
    ...Object.values(QueueName).map((name) => BullModule.registerQueue({ name })),
  ],
  providers: [OutboxService, SerializationLockService],
  exports: [BullModule, OutboxService, SerializationLockService],
})
export class QueueModule {}
