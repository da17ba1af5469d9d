import { execFileSync } from 'node:child_process';

import { flushTestRedis } from './hub';
import { TEST_DATABASE_URL } from './test-env';

/** Once per jest run: a freshly migrated test database and an empty test Redis database. */
export default async function globalSetup(): Promise<void> {
  execFileSync(process.execPath, ['src/ops/db.mjs', 'reset'], {
    env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL },
    stdio: 'inherit',
  });
  await flushTestRedis();
}
