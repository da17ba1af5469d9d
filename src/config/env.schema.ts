import { isIP } from 'node:net';

import { z } from 'zod';

import { CRM_TARGETS } from '../domain/deal-stage';

/**
 * The environment of CONTRACT §2 (plus a few optional tuning knobs, documented in the README).
 * Parsed once at start-up by loadConfig(); nothing else reads process.env.
 */
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const csv = optionalString.transform((v) =>
  v === undefined
    ? []
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
);

const int = (def: number, min = 0) =>
  optionalString.pipe(
    z
      .string()
      .regex(/^\d+$/, 'must be a whole number')
      .transform(Number)
      .pipe(z.number().int().min(min))
      .optional()
      .transform((v) => v ?? def),
  );

const url = (protocols: string[]) =>
  z.url({
    protocol: new RegExp(`^(${protocols.join('|')})$`),
    error: `must be a ${protocols.join(' or ')} URL`,
  });

const standardWebhookSecret = optionalString.pipe(
  z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, {
      message: 'must be whsec_ followed by base64',
      abort: true,
    })
    .refine((v) => Buffer.from(v.slice(6), 'base64').length >= 16, 'key is shorter than 16 bytes')
    .optional(),
);

export const envSchema = z
  .object({
    DATABASE_URL: optionalString.pipe(
      url(['postgres', 'postgresql']).default('postgresql://postgres@127.0.0.1:5432/closeloop'),
    ),
    REDIS_URL: optionalString.pipe(url(['redis', 'rediss']).default('redis://127.0.0.1:6379')),
    PORT: int(3000, 1).pipe(z.number().max(65535)),
    ROLE: optionalString.pipe(z.enum(['api', 'worker', 'all']).default('all')),
    PUBLIC_BASE_URL: optionalString.pipe(url(['http', 'https']).optional()),
    ADMIN_TOKEN: optionalString.pipe(
      z.string().min(16, 'must be at least 16 characters').optional(),
    ),
    /** When set, GET /metrics (every role) needs `Authorization: Bearer <METRICS_TOKEN>`. */
    METRICS_TOKEN: optionalString.pipe(
      z.string().min(16, 'must be at least 16 characters').optional(),
    ),
    /** false: /docs (Swagger UI, /docs-json, /docs-yaml) is served to admin tokens only. */
    DOCS_PUBLIC: optionalString
      .pipe(z.enum(['true', 'false'], { error: 'must be true or false' }).default('true'))
      .transform((v) => v === 'true'),
    DOCUSIGN_CONNECT_HMAC_KEYS: csv,
    HUBSPOT_CLIENT_SECRET: optionalString,
    STRIPE_WEBHOOK_SECRET: optionalString.pipe(
      z.string().startsWith('whsec_', 'must start with whsec_').optional(),
    ),
    MILESTONE_WEBHOOK_SECRET: standardWebhookSecret,
    REFERRAL_WEBHOOK_SECRET: standardWebhookSecret,
    PARTNER_CENTER_CERT_URL_PREFIXES: csv.pipe(z.array(url(['https', 'http']))),
    /**
     * PEM file of the roots a Partner Center certificate must chain to. Unset: Node's bundled roots
     * plus NODE_EXTRA_CA_CERTS (provider-facts §4.3: verify the chain).
     */
    PARTNER_CENTER_CA_FILE: optionalString,
    /**
     * Node reads this PEM file itself for TLS; the hub reads it too, as trusted roots of Partner
     * Center certificates beside Node's bundled ones, when PARTNER_CENTER_CA_FILE is unset.
     */
    NODE_EXTRA_CA_CERTS: optionalString,
    STRIPE_SECRET_KEY: optionalString,
    STRIPE_API_BASE: optionalString.pipe(url(['http', 'https']).optional()),
    HUBSPOT_ACCESS_TOKEN: optionalString,
    HUBSPOT_API_BASE: optionalString.pipe(url(['http', 'https']).optional()),
    DOCUSIGN_INTEGRATION_KEY: optionalString,
    DOCUSIGN_USER_ID: optionalString,
    DOCUSIGN_ACCOUNT_ID: optionalString,
    DOCUSIGN_PRIVATE_KEY: optionalString,
    DOCUSIGN_PRIVATE_KEY_FILE: optionalString,
    DOCUSIGN_TEMPLATE_ID: optionalString,
    DOCUSIGN_API_BASE: optionalString.pipe(
      url(['http', 'https']).default('https://demo.docusign.net/restapi'),
    ),
    DOCUSIGN_OAUTH_BASE: optionalString.pipe(
      z
        .string()
        .regex(/^[A-Za-z0-9.-]+(:\d+)?$/, 'must be host[:port] without a scheme')
        .default('account-d.docusign.com'),
    ),
    PARTNER_CENTER_TENANT_ID: optionalString,
    PARTNER_CENTER_CLIENT_ID: optionalString,
    PARTNER_CENTER_CLIENT_SECRET: optionalString,
    PARTNER_CENTER_REFRESH_TOKEN: optionalString,
    PARTNER_CENTER_API_BASE: optionalString.pipe(
      url(['http', 'https']).default('https://api.partner.microsoft.com'),
    ),
    PARTNER_CENTER_TOKEN_URL: optionalString.pipe(url(['http', 'https']).optional()),
    REFERRAL_REPORT_WEBHOOK_URL: optionalString.pipe(url(['http', 'https']).optional()),
    REFERRAL_REPORT_WEBHOOK_SECRET: standardWebhookSecret,
    /**
     * Referral platforms without an API (their reports go to the manual queue even when
     * REFERRAL_REPORT_WEBHOOK_URL is set), e.g. PRONI アイミツ.
     */
    REFERRAL_MANUAL_PLATFORMS: optionalString
      .pipe(z.string().default('aimitsu,proni'))
      .transform((v) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ),
    /**
     * Create the HubSpot deal (with closeloop_referral_platform / closeloop_referral_id) when a
     * referral deal without one is accepted, instead of waiting for someone to create it.
     */
    REFERRAL_CREATE_CRM_DEALS: optionalString
      .pipe(z.enum(['true', 'false']).default('false'))
      .transform((v) => v === 'true'),
    ALERT_WEBHOOK_URL: optionalString.pipe(url(['http', 'https']).optional()),
    ALERT_WEBHOOK_SECRET: standardWebhookSecret,
    /**
     * Which clients' X-Forwarded-* headers are believed (CONTRACT §2): off (default), a hop count, or
     * comma-separated proxy addresses/CIDRs (proxy-addr's names loopback, linklocal, uniquelocal too).
     */
    TRUST_PROXY: optionalString.pipe(
      z
        .string()
        .transform((v, ctx): false | number | string[] => {
          if (/^(off|false|0|no)$/i.test(v)) return false;
          if (/^\d+$/.test(v)) return Number(v);
          const list = v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
          const bad = list.find((entry) => !isProxyAddress(entry));
          if (bad !== undefined || list.length === 0) {
            ctx.addIssue({
              code: 'custom',
              message: `must be off, a hop count, or proxy addresses/CIDRs (got ${JSON.stringify(bad ?? v)})`,
            });
            return z.NEVER;
          }
          return list;
        })
        .optional()
        .transform((v) => v ?? false),
    ),
    /**
     * Days after which webhook payloads and headers, job attempts and expired sessions are purged
     * (CONTRACT §2); identities, invoices, reports, audit log and timelines are kept.
     */
    RETENTION_DAYS: int(400, 1),
    BILLING_TIMEZONE: optionalString.pipe(
      z
        .string()
        .refine(isTimeZone, 'must be an IANA time zone such as Asia/Tokyo')
        .default('Asia/Tokyo'),
    ),
    // Tuning (optional, not part of the contract).
    LOG_LEVEL: optionalString.pipe(
      z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    ),
    WORKER_CONCURRENCY: int(16, 1),
    JOB_ATTEMPTS: int(8, 1),
    JOB_BACKOFF_BASE_MS: int(1000, 1),
    JOB_BACKOFF_MAX_MS: int(300_000, 1),
    JOB_LOCK_MS: int(30_000, 1000),
    SERIALIZATION_LOCK_TIMEOUT_MS: int(10_000, 100),
    OUTBOX_POLL_MS: int(50, 5),
    /** Events per WebhookEventBatch job (the relay's unit of work for the webhooks queue). */
    EVENT_BATCH_SIZE: int(100, 1),
    /** Events of one lane applied per transaction. */
    LANE_BATCH: int(50, 1),
    /** How long one job drains a lane before handing it on to a WebhookLaneDrain job. */
    LANE_DRAIN_MS: int(2_000, 10),
    /** How often each worker's recovery sweep looks for pending work without a job. */
    RECOVERY_SWEEP_MS: int(15_000, 100),
    /** How long work stays untouched before the sweep hands it out again (0 once Redis lost data). */
    RECOVERY_GRACE_MS: int(30_000, 0),
    OUTBOX_BACKLOG_READY_LIMIT: int(10_000, 1),
    SHUTDOWN_TIMEOUT_MS: int(25_000, 1000),
    DB_POOL_SIZE: int(10, 1),
    /**
     * Failed token authentications (admin API, dashboard login, docs, /metrics, /health/ready)
     * allowed per client IP and per presented token's first characters within
     * AUTH_FAILURE_WINDOW_SECONDS; the next attempt answers 429 (src/security/auth-throttle.service.ts).
     */
    AUTH_FAILURES_PER_IP: int(10, 1),
    AUTH_FAILURES_PER_TOKEN_PREFIX: int(20, 1),
    AUTH_FAILURE_WINDOW_SECONDS: int(300, 1),
    // Connectors and billing (optional tuning).
    /** Outbound Stripe calls per second, shared by every worker process (Stripe's default limit is 25/s). */
    STRIPE_RATE_LIMIT_PER_SEC: int(25, 1),
    /**
     * Reconciliation's own share of those calls per second (also counted in the shared limit, so
     * billing keeps the rest); must be smaller than STRIPE_RATE_LIMIT_PER_SEC.
     */
    STRIPE_RECONCILIATION_RATE_PER_SEC: int(5, 1),
    STRIPE_DAYS_UNTIL_DUE: int(30, 1),
    /** Timeout of one outbound provider call (Stripe, HubSpot, DocuSign). */
    PROVIDER_TIMEOUT_MS: int(20_000, 100),
    /** HubSpot pipeline overrides: JSON {"<pipelineId>": {"<stageId>": "WON", ...}, ...}. */
    HUBSPOT_PIPELINE_STAGES: optionalString.pipe(
      z
        .string()
        .transform((v, ctx) => {
          try {
            return JSON.parse(v) as unknown;
          } catch {
            ctx.addIssue({ code: 'custom', message: 'must be JSON' });
            return z.NEVER;
          }
        })
        .pipe(
          z.record(
            z.string(),
            z.record(
              z.string(),
              z.enum(CRM_TARGETS, {
                error: 'stage must be APPOINTMENT, NEGOTIATING, CONTRACT_SENT, WON or LOST',
              }),
            ),
          ),
        )
        .optional(),
    ),
    /** roleName of the signer in the DocuSign template. */
    DOCUSIGN_TEMPLATE_ROLE: optionalString.pipe(z.string().default('signer')),
    /** How often the worker looks for due timers (silent approvals, monthly invoices). */
    LIFECYCLE_TIMER_MS: int(10_000, 100),
    /**
     * Runs the hub's business clock (src/common/clock.ts) from this instant at real speed instead of
     * today's date: for tests and demos that need a known date. Never set in production.
     */
    CLOCK_START: optionalString.pipe(
      z.iso
        .datetime({
          offset: true,
          error: 'must be an ISO 8601 instant such as 2026-11-01T00:00:00Z',
        })
        .transform((v) => new Date(v))
        .optional(),
    ),
  })
  .superRefine((env, ctx) => {
    const groups: Record<string, (keyof typeof env)[]> = {
      'Partner Center API': [
        'PARTNER_CENTER_TENANT_ID',
        'PARTNER_CENTER_CLIENT_ID',
        'PARTNER_CENTER_CLIENT_SECRET',
        'PARTNER_CENTER_REFRESH_TOKEN',
      ],
      DocuSign: [
        'DOCUSIGN_INTEGRATION_KEY',
        'DOCUSIGN_USER_ID',
        'DOCUSIGN_ACCOUNT_ID',
        'DOCUSIGN_TEMPLATE_ID',
      ],
    };
    // A feature is configured when any of its variables is set; then all of them are needed.
    for (const [feature, names] of Object.entries(groups)) {
      if (!names.some((n) => env[n] !== undefined)) continue;
      for (const n of names.filter((name) => env[name] === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: [n],
          message: `is required when ${feature} is configured`,
        });
      }
    }
    if (
      env.DOCUSIGN_INTEGRATION_KEY &&
      !env.DOCUSIGN_PRIVATE_KEY &&
      !env.DOCUSIGN_PRIVATE_KEY_FILE
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['DOCUSIGN_PRIVATE_KEY'],
        message: 'or DOCUSIGN_PRIVATE_KEY_FILE is required when DocuSign is configured',
      });
    }
    if (env.REFERRAL_REPORT_WEBHOOK_URL && !env.REFERRAL_REPORT_WEBHOOK_SECRET) {
      ctx.addIssue({
        code: 'custom',
        path: ['REFERRAL_REPORT_WEBHOOK_SECRET'],
        message: 'is required when REFERRAL_REPORT_WEBHOOK_URL is set',
      });
    }
    if (env.STRIPE_RECONCILIATION_RATE_PER_SEC >= env.STRIPE_RATE_LIMIT_PER_SEC) {
      ctx.addIssue({
        code: 'custom',
        path: ['STRIPE_RECONCILIATION_RATE_PER_SEC'],
        message: `must be smaller than STRIPE_RATE_LIMIT_PER_SEC (${env.STRIPE_RATE_LIMIT_PER_SEC}) so that billing keeps Stripe calls of its own; it is ${env.STRIPE_RECONCILIATION_RATE_PER_SEC} (default 5)`,
      });
    }
    if (env.ALERT_WEBHOOK_URL && !env.ALERT_WEBHOOK_SECRET) {
      ctx.addIssue({
        code: 'custom',
        path: ['ALERT_WEBHOOK_SECRET'],
        message: 'is required when ALERT_WEBHOOK_URL is set',
      });
    }
  });

export type Env = z.output<typeof envSchema>;

/** An address or CIDR proxy-addr understands (Fastify's trustProxy), or one of its names. */
function isProxyAddress(entry: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return true;
  const [address, bits, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  if (!/^\d+$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
