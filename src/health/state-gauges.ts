import { getQueueToken } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { Queue } from 'bullmq';
import { Gauge } from 'prom-client';

import { withTimeout } from '../common/with-timeout';
import { MetricsService } from '../observability/metrics.service';
import { PrismaService } from '../prisma/prisma.service';
import { QueueName } from '../queue/queue-name.enum';
import { RedisProbeService } from './redis-probe.service';

const QUEUE_DEPTH_TIMEOUT_MS = 2_000;

/**
 * The gauges of shared state on the process's metrics registry (CONTRACT §7): read from
 * Redis/Postgres at scrape time, so every process reports the same cluster-wide figure.
 */
@Injectable()
export class StateGauges {
  constructor(
    metrics: MetricsService,
    prisma: PrismaService,
    moduleRef: ModuleRef,
    redis: RedisProbeService,
  ) {
    const registry = metrics.registry;
    new Gauge({
      name: 'closeloop_queue_depth',
      help: 'BullMQ jobs by queue and state',
      labelNames: ['queue', 'state'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        // Without Redis the depth is unknown: leave the series out rather than hold the scrape
        // (BullMQ waits for Redis to come back) and lose every other metric with it.
        if (!redis.connected) return;
        const names = Object.values(QueueName);
        const counts = await withTimeout(
          Promise.all(
            names.map((name) =>
              moduleRef
                .get<Queue>(getQueueToken(name), { strict: false })
                .getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized'),
            ),
          ),
          QUEUE_DEPTH_TIMEOUT_MS,
          'queue depth',
        ).catch(() => undefined);
        if (!counts) return;
        names.forEach((name, i) => {
          for (const [state, n] of Object.entries(counts[i])) this.set({ queue: name, state }, n);
        });
      },
    });
    new Gauge({
      name: 'closeloop_dead_letters_open',
      help: 'Dead letters waiting for an admin (replay or delete)',
      registers: [registry],
      async collect() {
        this.set(await prisma.deadLetter.count({ where: { status: 'OPEN' } }));
      },
    });
    new Gauge({
      name: 'closeloop_outbox_backlog',
      help: 'Committed jobs due and not yet handed to Redis (retries still in their backoff excluded)',
      registers: [registry],
      async collect() {
        this.set(await prisma.outboxMessage.count({ where: { availableAt: { lte: new Date() } } }));
      },
    });
  }
}
