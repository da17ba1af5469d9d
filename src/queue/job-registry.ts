import { Injectable, OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';

import { JOB_HANDLER, JobHandlerInterface } from './job-handler.decorator';
import { JobName } from './job-name.enum';

export class JobRegistryError extends Error {}

/**
 * Finds every @JobHandler provider and refuses to boot unless each JobName has exactly one
 * (like Immich's job repository set-up).
 */
@Injectable()
export class JobRegistry implements OnModuleInit {
  private readonly handlers = new Map<string, JobHandlerInterface>();

  constructor(private readonly discovery: DiscoveryService) {}

  onModuleInit(): void {
    const found = new Map<string, JobHandlerInterface[]>();
    for (const wrapper of this.discovery.getProviders()) {
      const { metatype, instance } = wrapper;
      if (!metatype || !instance) continue;
      const name = Reflect.getMetadata(JOB_HANDLER, metatype) as string | undefined;
      if (name === undefined) continue;
      found.set(name, [...(found.get(name) ?? []), instance as JobHandlerInterface]);
    }
    this.register(found);
  }

  /** Exposed for tests; the check itself. */
  register(found: Map<string, JobHandlerInterface[]>): void {
    const problems: string[] = [];
    for (const name of Object.values(JobName)) {
      const list = found.get(name) ?? [];
      if (list.length === 0) problems.push(`job ${name} has no handler`);
      if (list.length > 1) problems.push(`job ${name} has ${list.length} handlers`);
    }
    for (const name of found.keys()) {
      if (!(Object.values(JobName) as string[]).includes(name))
        problems.push(`handler for unknown job ${name}`);
    }
    if (problems.length > 0) throw new JobRegistryError(`Job registry: ${problems.join('; ')}`);
    for (const [name, [handler]] of found) this.handlers.set(name, handler);
  }

  get(name: string): JobHandlerInterface | undefined {
    return this.handlers.get(name);
  }
}
