/**
 * Environment of the integration tests: a database of their own (reset once per run by
 * global-setup) and a Redis database of their own, with test secrets for every provider.
 */
export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/closeloop_test';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/7';

export const TEST_SECRETS = {
  ADMIN_TOKEN: 'test-admin-token-0123456789',
  DOCUSIGN_CONNECT_HMAC_KEYS: 'docusign-key-one,docusign-key-two',
  HUBSPOT_CLIENT_SECRET: 'hubspot-client-secret',
  STRIPE_WEBHOOK_SECRET: 'whsec_test_stripe_secret',
  MILESTONE_WEBHOOK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  REFERRAL_WEBHOOK_SECRET: 'whsec_c2VjcmV0LWZvci1yZWZlcnJhbHMtMTIzNDU2',
};

/** Secret of the simulator's report receiver (the hub's REFERRAL_REPORT_WEBHOOK_SECRET in e2e runs). */
export const TEST_REPORT_WEBHOOK_SECRET = 'whsec_cmVwb3J0LXJlY2VpdmVyLXNlY3JldC0xMjM0NTY=';

/** The environment a hub under test runs with (merge overrides per test). */
export function hubEnv(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    LOG_LEVEL: 'warn',
    PUBLIC_BASE_URL: 'https://hub.example.test',
    JOB_BACKOFF_BASE_MS: '50',
    JOB_BACKOFF_MAX_MS: '500',
    OUTBOX_POLL_MS: '20',
    // The suite's refusal tests send hundreds of wrong tokens from 127.0.0.1 within minutes; the
    // throttle's own tests (test/integration/security.int-spec.ts) run with the real limits.
    AUTH_FAILURES_PER_IP: '1000000',
    AUTH_FAILURES_PER_TOKEN_PREFIX: '1000000',
    ...TEST_SECRETS,
    ...overrides,
  };
  return Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined),
  );
}
