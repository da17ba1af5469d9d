import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { hubEnv } from '../support/test-env';

// As test/support/hub.ts runs it (TEST_HUB_MAIN: a copy of the build).
const MAIN = path.resolve(
  process.env.TEST_HUB_MAIN ?? path.join(__dirname, '../../dist/src/main.js'),
);

/** Starts the built hub with `env` added; it is expected to stop at once. */
function start(env: Record<string, string>) {
  const run = spawnSync(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH, ...hubEnv(env) },
    encoding: 'utf8',
    timeout: 30_000,
  });
  // Node's own warning about NODE_EXTRA_CA_CERTS aside, the hub's lines.
  const lines = run.stderr
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('closeloop:'));
  return { status: run.status, lines };
}

/*
 * The roots a Partner Center certificate must chain to are read once, at start-up (CONTRACT §3.5,
 * ADR 0011): a file that cannot serve stops the hub with one line naming its variable.
 */
describe('Partner Center trust at start-up', () => {
  it('a missing or non-PEM PARTNER_CENTER_CA_FILE stops the hub with one line naming it', () => {
    expect(start({ PARTNER_CENTER_CA_FILE: '/nonexistent/partner-center-ca.pem' })).toEqual({
      status: 78,
      lines: [
        'closeloop: configuration error: PARTNER_CENTER_CA_FILE: cannot read /nonexistent/partner-center-ca.pem (ENOENT) (invalid)',
      ],
    });
    expect(start({ PARTNER_CENTER_CA_FILE: __filename })).toEqual({
      status: 78,
      lines: [
        `closeloop: configuration error: PARTNER_CENTER_CA_FILE: ${__filename} holds no PEM certificate (invalid)`,
      ],
    });
  });

  it('an unreadable NODE_EXTRA_CA_CERTS stops the hub too when it would be trusted', () => {
    expect(start({ NODE_EXTRA_CA_CERTS: '/nonexistent/extra-ca.pem' })).toEqual({
      status: 78,
      lines: [
        'closeloop: configuration error: NODE_EXTRA_CA_CERTS: cannot read /nonexistent/extra-ca.pem (ENOENT) (invalid)',
      ],
    });
  });
});
