import { execFileSync } from 'node:child_process';

import { Redis } from 'ioredis';

import { TEST_DATABASE_URL, TEST_REDIS_URL } from './test-env';

/** Once per jest run: a freshly migrated test database and an empty test Redis database. */
export default async function globalSetup(): Promise<void> {
  execFileSync(process.execPath, ['src/cli/db.mjs', 'reset'], {
    env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL },
    stdio: 'inherit',
  });
  const redis = new Redis(TEST_REDIS_URL);
  await redis.flushdb();
  redis.disconnect();
}
