import 'reflect-metadata';

import { Logger } from 'nestjs-pino';

import { createApp } from './app.factory';
import { ConfigError, loadConfig } from './config/app-config';

/**
 * Entry point of both roles. SIGTERM/SIGINT: stop accepting requests, let in-flight requests and
 * jobs finish, close the pools; exit non-zero if that takes longer than SHUTDOWN_TIMEOUT_MS.
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.problems) console.error(`closeloop: configuration error: ${line}`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const app = await createApp(config);
  const logger = app.get(Logger);
  await app.listen(config.env.PORT, '0.0.0.0');
  logger.log(`closeloop ${config.role} listening on :${config.env.PORT}`, 'Main');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log(`${signal}: shutting down`, 'Main');
    setTimeout(() => {
      logger.error(
        `shutdown took longer than ${config.env.SHUTDOWN_TIMEOUT_MS} ms; exiting`,
        'Main',
      );
      process.exit(1);
    }, config.env.SHUTDOWN_TIMEOUT_MS).unref();
    // Stop accepting first (Nest would close the HTTP server only after the destroy hooks, i.e.
    // after the workers drained), let in-flight requests finish, then drain jobs and close pools.
    app
      .getHttpAdapter()
      .close()
      .then(() => app.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error(`shutdown failed: ${(err as Error).message}`, 'Main');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
