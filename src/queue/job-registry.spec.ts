import { DiscoveryService } from '@nestjs/core';

import { JobHandler, JobHandlerInterface } from './job-handler.decorator';
import { JobName } from './job-name.enum';
import { JobRegistry, JobRegistryError } from './job-registry';

const handler = (): JobHandlerInterface => ({ handle: jest.fn().mockResolvedValue('SUCCEEDED') });
const newRegistry = (providers: unknown[] = []) =>
  new JobRegistry({ getProviders: () => providers } as unknown as DiscoveryService);
/** One handler for every job name other than WebhookEventProcess (the registry wants them all). */
const others = () =>
  Object.values(JobName)
    .filter((n) => n !== JobName.WebhookEventProcess)
    .map((n): [string, JobHandlerInterface[]] => [n, [handler()]]);

describe('JobRegistry.register', () => {
  it('accepts exactly one handler per job name and returns it', () => {
    const registry = newRegistry();
    const one = handler();
    registry.register(new Map([[JobName.WebhookEventProcess, [one]], ...others()]));
    expect(registry.get(JobName.WebhookEventProcess)).toBe(one);
    expect(registry.get('NoSuchJob')).toBeUndefined();
  });

  it('refuses a job name with no handler', () => {
    expect(() => newRegistry().register(new Map())).toThrow(JobRegistryError);
    expect(() => newRegistry().register(new Map())).toThrow(
      `job ${JobName.WebhookEventProcess} has no handler`,
    );
  });

  it('refuses a job name with two handlers', () => {
    const found = new Map([[JobName.WebhookEventProcess as string, [handler(), handler()]]]);
    expect(() => newRegistry().register(found)).toThrow(
      `job ${JobName.WebhookEventProcess} has 2 handlers`,
    );
  });

  it('refuses a handler for an unknown job name', () => {
    const found = new Map([
      [JobName.WebhookEventProcess as string, [handler()]],
      ['NoSuchJob', [handler()]],
    ]);
    const registry = newRegistry();
    expect(() => registry.register(found)).toThrow('handler for unknown job NoSuchJob');
    expect(registry.get(JobName.WebhookEventProcess)).toBeUndefined();
  });
});

describe('JobRegistry.onModuleInit (discovery of @JobHandler providers)', () => {
  @JobHandler(JobName.WebhookEventProcess)
  class ProcessHandler {
    handle = jest.fn();
  }
  @JobHandler(JobName.WebhookEventProcess)
  class SecondProcessHandler {
    handle = jest.fn();
  }
  class Unrelated {}

  const wrapper = (metatype: unknown, instance: unknown) => ({ metatype, instance });

  it('finds the one decorated provider among others', () => {
    const instance = new ProcessHandler();
    const otherHandlers = Object.values(JobName)
      .filter((n) => n !== JobName.WebhookEventProcess)
      .map((n) => {
        class Other {
          handle = jest.fn();
        }
        JobHandler(n)(Other);
        return wrapper(Other, new Other());
      });
    const registry = newRegistry([
      wrapper(Unrelated, new Unrelated()),
      wrapper(ProcessHandler, instance),
      wrapper(undefined, {}),
      ...otherHandlers,
    ]);
    registry.onModuleInit();
    expect(registry.get(JobName.WebhookEventProcess)).toBe(instance);
  });

  it('refuses to boot with two decorated providers for one job', () => {
    const registry = newRegistry([
      wrapper(ProcessHandler, new ProcessHandler()),
      wrapper(SecondProcessHandler, new SecondProcessHandler()),
    ]);
    expect(() => registry.onModuleInit()).toThrow(/has 2 handlers/);
  });

  it('refuses to boot with no decorated provider', () => {
    expect(() => newRegistry([wrapper(Unrelated, new Unrelated())]).onModuleInit()).toThrow(
      /has no handler/,
    );
  });
});
