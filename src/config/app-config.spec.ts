import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createPartnerCenterTestCa } from '../../tools/simulator/partner-center-cert';
import {
  AppConfig,
  ConfigError,
  DEFAULT_PARTNER_CENTER_CERT_URL_PREFIXES,
  WebhookSource,
  loadConfig,
} from './app-config';

/** The problems loadConfig reports for an environment (fails the test if it does not throw). */
function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected loadConfig to reject the environment');
}

const PARTNER_CENTER = {
  PARTNER_CENTER_TENANT_ID: 'tenant',
  PARTNER_CENTER_CLIENT_ID: 'client',
  PARTNER_CENTER_CLIENT_SECRET: 'secret',
  PARTNER_CENTER_REFRESH_TOKEN: 'refresh',
};

describe('loadConfig defaults (CONTRACT §2)', () => {
  const config = loadConfig({});

  it('uses the documented defaults when nothing is set', () => {
    expect(config.env.DATABASE_URL).toBe('postgresql://postgres@127.0.0.1:5432/closeloop');
    expect(config.env.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(config.env.PORT).toBe(3000);
    expect(config.role).toBe('all');
    expect(config.runsApi).toBe(true);
    expect(config.runsWorker).toBe(true);
    expect(config.publicBaseUrl).toBe('http://localhost:3000');
    expect(config.env.ADMIN_TOKEN).toBeUndefined();
    expect(config.env.DOCUSIGN_CONNECT_HMAC_KEYS).toEqual([]);
    expect(config.env.HUBSPOT_CLIENT_SECRET).toBeUndefined();
    expect(config.env.STRIPE_WEBHOOK_SECRET).toBeUndefined();
    expect(config.env.MILESTONE_WEBHOOK_SECRET).toBeUndefined();
    expect(config.env.REFERRAL_WEBHOOK_SECRET).toBeUndefined();
    expect(config.partnerCenterCertUrlPrefixes).toEqual(DEFAULT_PARTNER_CENTER_CERT_URL_PREFIXES);
    expect(config.env.DOCUSIGN_API_BASE).toBe('https://demo.docusign.net/restapi');
    expect(config.env.DOCUSIGN_OAUTH_BASE).toBe('account-d.docusign.com');
    expect(config.env.PARTNER_CENTER_API_BASE).toBe('https://api.partner.microsoft.com');
    expect(config.env.BILLING_TIMEZONE).toBe('Asia/Tokyo');
    expect(config.env.METRICS_TOKEN).toBeUndefined();
    expect(config.env.DOCS_PUBLIC).toBe(true);
    expect(config.env.TRUST_PROXY).toBe(false);
    expect(config.env.RETENTION_DAYS).toBe(400);
    expect(config.env.PARTNER_CENTER_CA_FILE).toBeUndefined();
  });

  it('derives PUBLIC_BASE_URL from PORT and treats blank values as unset', () => {
    const c = loadConfig({ PORT: '8081', DATABASE_URL: '  ', ROLE: '' });
    expect(c.publicBaseUrl).toBe('http://localhost:8081');
    expect(c.env.DATABASE_URL).toBe('postgresql://postgres@127.0.0.1:5432/closeloop');
    expect(c.role).toBe('all');
  });

  it("a deal's time zone is its own, else BILLING_TIMEZONE (Asia/Tokyo unless set)", () => {
    expect(loadConfig({}).timeZoneOf({ timeZone: null })).toBe('Asia/Tokyo');
    const c = loadConfig({ BILLING_TIMEZONE: 'Europe/Berlin' });
    expect(c.timeZoneOf({ timeZone: null })).toBe('Europe/Berlin');
    expect(c.timeZoneOf({ timeZone: 'America/New_York' })).toBe('America/New_York');
  });

  it('takes the configured values, splits comma lists and trims a trailing slash', () => {
    const c = loadConfig({
      DATABASE_URL: 'postgres://u:p@db:5433/hub',
      REDIS_URL: 'rediss://cache:6380/2',
      PORT: '4000',
      ROLE: 'worker',
      PUBLIC_BASE_URL: 'https://hooks.example.com/closeloop/',
      DOCUSIGN_CONNECT_HMAC_KEYS: ' one, two ,,three ',
      PARTNER_CENTER_CERT_URL_PREFIXES: 'https://a.example/cert/,http://127.0.0.1:9/cert/',
      BILLING_TIMEZONE: 'Europe/Paris',
    });
    expect(c.env.DATABASE_URL).toBe('postgres://u:p@db:5433/hub');
    expect(c.env.PORT).toBe(4000);
    expect(c.role).toBe('worker');
    expect(c.runsApi).toBe(false);
    expect(c.runsWorker).toBe(true);
    expect(c.publicBaseUrl).toBe('https://hooks.example.com/closeloop');
    expect(c.env.DOCUSIGN_CONNECT_HMAC_KEYS).toEqual(['one', 'two', 'three']);
    expect(c.partnerCenterCertUrlPrefixes).toEqual([
      'https://a.example/cert/',
      'http://127.0.0.1:9/cert/',
    ]);
    expect(c.env.BILLING_TIMEZONE).toBe('Europe/Paris');
    expect(loadConfig({ ROLE: 'api' }).runsWorker).toBe(false);
  });
});

describe('loadConfig errors: one line per bad or missing variable, naming it', () => {
  it.each([
    ['DATABASE_URL', 'not a url'],
    ['DATABASE_URL', 'mysql://root@127.0.0.1/closeloop'],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['ROLE', 'foo'],
    ['PUBLIC_BASE_URL', 'hub.example.com'],
    ['ADMIN_TOKEN', 'short'],
    ['METRICS_TOKEN', 'fifteen-chars!!'],
    ['DOCS_PUBLIC', 'yes'],
    ['DOCS_PUBLIC', 'TRUE'],
    ['DOCS_PUBLIC', '0'],
    ['STRIPE_WEBHOOK_SECRET', 'sk_test_123'],
    ['MILESTONE_WEBHOOK_SECRET', 'not-a-whsec-secret'],
    ['REFERRAL_WEBHOOK_SECRET', 'whsec_c2hvcnQ='],
    ['PARTNER_CENTER_CERT_URL_PREFIXES', 'https://ok.example/cert/,ftp://bad.example/'],
    ['DOCUSIGN_OAUTH_BASE', 'https://account-d.docusign.com'],
    ['BILLING_TIMEZONE', 'Mars/Olympus_Mons'],
    ['LOG_LEVEL', 'loud'],
    ['TRUST_PROXY', 'true'],
    ['TRUST_PROXY', '10.0.0.0/33'],
    ['TRUST_PROXY', '10.0.0.1,proxy.example'],
    ['RETENTION_DAYS', '0'],
    ['RETENTION_DAYS', 'forever'],
  ])('%s=%s is rejected with a line naming it', (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name}: .+ \\(invalid\\)$`));
  });

  it('METRICS_TOKEN and DOCS_PUBLIC say what they need in one line each', () => {
    expect(problemsOf({ METRICS_TOKEN: 'short', DOCS_PUBLIC: 'off' })).toEqual([
      'METRICS_TOKEN: must be at least 16 characters (invalid)',
      'DOCS_PUBLIC: must be true or false (invalid)',
    ]);
  });

  it('a bad entry of a comma list is reported under its variable, naming the entry', () => {
    expect(
      problemsOf({ PARTNER_CENTER_CERT_URL_PREFIXES: 'https://ok.example/cert/,ftp://bad/' }),
    ).toEqual(['PARTNER_CENTER_CERT_URL_PREFIXES: entry 2: must be a https or http URL (invalid)']);
  });

  it('a Standard Webhooks secret that is not whsec_<base64> gets one line saying so', () => {
    expect(problemsOf({ MILESTONE_WEBHOOK_SECRET: 'plain' })).toEqual([
      'MILESTONE_WEBHOOK_SECRET: must be whsec_ followed by base64 (invalid)',
    ]);
  });

  it('reports every problem at once, one line each', () => {
    const problems = problemsOf({
      DATABASE_URL: 'nope',
      STRIPE_WEBHOOK_SECRET: 'sk_live_x',
      ROLE: 'foo',
      BILLING_TIMEZONE: 'Nowhere/Town',
    });
    expect(problems).toHaveLength(4);
    for (const name of ['DATABASE_URL', 'STRIPE_WEBHOOK_SECRET', 'ROLE', 'BILLING_TIMEZONE']) {
      expect(problems.filter((p) => p.startsWith(`${name}: `))).toHaveLength(1);
    }
    expect(problems.find((p) => p.startsWith('STRIPE_WEBHOOK_SECRET'))).toContain('whsec_');
  });

  it('a partial PARTNER_CENTER_* group names each missing variable', () => {
    const problems = problemsOf({ PARTNER_CENTER_CLIENT_ID: 'client' });
    expect(problems.sort()).toEqual([
      expect.stringMatching(/^PARTNER_CENTER_CLIENT_SECRET: .*required.* \(missing\)$/),
      expect.stringMatching(/^PARTNER_CENTER_REFRESH_TOKEN: .*required.* \(missing\)$/),
      expect.stringMatching(/^PARTNER_CENTER_TENANT_ID: .*required.* \(missing\)$/),
    ]);
    expect(() => loadConfig(PARTNER_CENTER)).not.toThrow();
  });

  it('a partial DocuSign API group names what is missing, including the private key', () => {
    const problems = problemsOf({ DOCUSIGN_INTEGRATION_KEY: 'ik' });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'DOCUSIGN_ACCOUNT_ID',
      'DOCUSIGN_PRIVATE_KEY',
      'DOCUSIGN_TEMPLATE_ID',
      'DOCUSIGN_USER_ID',
    ]);
  });

  it('an outbound webhook URL without its secret names the secret', () => {
    expect(problemsOf({ ALERT_WEBHOOK_URL: 'https://alerts.example/hook' })).toEqual([
      expect.stringMatching(/^ALERT_WEBHOOK_SECRET: .* \(missing\)$/),
    ]);
    expect(problemsOf({ REFERRAL_REPORT_WEBHOOK_URL: 'https://p.example/hook' })).toEqual([
      expect.stringMatching(/^REFERRAL_REPORT_WEBHOOK_SECRET: .* \(missing\)$/),
    ]);
  });

  it('STRIPE_RECONCILIATION_RATE_PER_SEC defaults to 5 and must stay below STRIPE_RATE_LIMIT_PER_SEC', () => {
    expect(loadConfig({}).env.STRIPE_RECONCILIATION_RATE_PER_SEC).toBe(5);
    const set = loadConfig({
      STRIPE_RATE_LIMIT_PER_SEC: '10',
      STRIPE_RECONCILIATION_RATE_PER_SEC: '9',
    });
    expect(set.env.STRIPE_RECONCILIATION_RATE_PER_SEC).toBe(9);

    // Equal is refused too: billing must keep calls of its own.
    expect(
      problemsOf({ STRIPE_RATE_LIMIT_PER_SEC: '10', STRIPE_RECONCILIATION_RATE_PER_SEC: '10' }),
    ).toEqual([
      'STRIPE_RECONCILIATION_RATE_PER_SEC: must be smaller than STRIPE_RATE_LIMIT_PER_SEC (10) so that billing keeps Stripe calls of its own; it is 10 (default 5) (invalid)',
    ]);
    // A shared limit of 5 or less refuses the default until a smaller share is set.
    expect(problemsOf({ STRIPE_RATE_LIMIT_PER_SEC: '5' })).toEqual([
      expect.stringMatching(
        /^STRIPE_RECONCILIATION_RATE_PER_SEC: must be smaller than STRIPE_RATE_LIMIT_PER_SEC \(5\) .*it is 5 \(default 5\) \(missing\)$/,
      ),
    ]);
    expect(
      loadConfig({ STRIPE_RATE_LIMIT_PER_SEC: '5', STRIPE_RECONCILIATION_RATE_PER_SEC: '4' }).env
        .STRIPE_RECONCILIATION_RATE_PER_SEC,
    ).toBe(4);
    for (const bad of ['0', 'fast', '2.5']) {
      expect(problemsOf({ STRIPE_RECONCILIATION_RATE_PER_SEC: bad })).toEqual([
        expect.stringMatching(/^STRIPE_RECONCILIATION_RATE_PER_SEC: .+ \(invalid\)$/),
      ]);
    }
  });

  it('a missing, unreadable or non-PEM PARTNER_CENTER_CA_FILE is one line naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'closeloop-config-'));
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    const badBlock = join(dir, 'bad.pem');
    writeFileSync(badBlock, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(problemsOf({ PARTNER_CENTER_CA_FILE: join(dir, 'missing.pem') })).toEqual([
      `PARTNER_CENTER_CA_FILE: cannot read ${join(dir, 'missing.pem')} (ENOENT) (invalid)`,
    ]);
    expect(problemsOf({ PARTNER_CENTER_CA_FILE: dir })).toEqual([
      `PARTNER_CENTER_CA_FILE: cannot read ${dir} (EISDIR) (invalid)`,
    ]);
    expect(problemsOf({ PARTNER_CENTER_CA_FILE: notPem })).toEqual([
      `PARTNER_CENTER_CA_FILE: ${notPem} holds no PEM certificate (invalid)`,
    ]);
    expect(problemsOf({ PARTNER_CENTER_CA_FILE: badBlock })).toEqual([
      `PARTNER_CENTER_CA_FILE: ${badBlock} holds a PEM block that is not an X.509 certificate (invalid)`,
    ]);
  });

  it('NODE_EXTRA_CA_CERTS is read (Partner Center roots) only without PARTNER_CENTER_CA_FILE', () => {
    const dir = mkdtempSync(join(tmpdir(), 'closeloop-config-'));
    const missing = join(dir, 'missing.pem');
    expect(problemsOf({ NODE_EXTRA_CA_CERTS: missing })).toEqual([
      `NODE_EXTRA_CA_CERTS: cannot read ${missing} (ENOENT) (invalid)`,
    ]);
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, createPartnerCenterTestCa().rootPem);
    const config = loadConfig({ NODE_EXTRA_CA_CERTS: missing, PARTNER_CENTER_CA_FILE: ca });
    expect(config.partnerCenterTrustedRoots).toHaveLength(1);
  });

  it('ConfigError lists the problems in its message', () => {
    const err = (() => {
      try {
        loadConfig({ ROLE: 'foo' });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err?.message).toMatch(/ROLE/);
  });
});

describe('TRUST_PROXY (CONTRACT §2): off unless told which proxies to believe', () => {
  it.each([
    ['off', false],
    ['false', false],
    ['0', false],
    ['1', 1],
    ['2', 2],
    ['10.0.0.1', ['10.0.0.1']],
    ['10.0.0.0/8, ::1 ,loopback', ['10.0.0.0/8', '::1', 'loopback']],
  ])('%s → %j', (value, expected) => {
    expect(loadConfig({ TRUST_PROXY: value }).env.TRUST_PROXY).toEqual(expected);
  });
});

describe('METRICS_TOKEN and DOCS_PUBLIC (CONTRACT §2, §7)', () => {
  it('takes a metrics token of 16 characters or more, trimmed', () => {
    expect(loadConfig({ METRICS_TOKEN: ' sixteen-chars-ok ' }).env.METRICS_TOKEN).toBe(
      'sixteen-chars-ok',
    );
  });

  it('a blank METRICS_TOKEN leaves /metrics open', () => {
    expect(loadConfig({ METRICS_TOKEN: '  ' }).env.METRICS_TOKEN).toBeUndefined();
  });

  it.each([
    ['false', false],
    ['true', true],
    [' false ', false],
    ['', true],
  ])('DOCS_PUBLIC=%j is %s', (value, expected) => {
    expect(loadConfig({ DOCS_PUBLIC: value }).env.DOCS_PUBLIC).toBe(expected);
  });
});

describe('AppConfig.webhookConfigured', () => {
  const sources: WebhookSource[] = [
    'docusign',
    'hubspot',
    'stripe',
    'milestones',
    'partner-center',
    'generic',
  ];
  const configured = (c: AppConfig) => sources.filter((s) => c.webhookConfigured(s));

  it('is false for every source without credentials (their webhooks answer 503)', () => {
    expect(configured(loadConfig({}))).toEqual([]);
  });

  it.each<[WebhookSource, Record<string, string>]>([
    ['docusign', { DOCUSIGN_CONNECT_HMAC_KEYS: 'k1' }],
    ['hubspot', { HUBSPOT_CLIENT_SECRET: 'hs-secret' }],
    ['stripe', { STRIPE_WEBHOOK_SECRET: 'whsec_abc' }],
    ['milestones', { MILESTONE_WEBHOOK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }],
    ['generic', { REFERRAL_WEBHOOK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }],
    ['partner-center', PARTNER_CENTER],
  ])('%s is configured by its own secret only', (source, env) => {
    expect(configured(loadConfig(env))).toEqual([source]);
  });

  it('an empty DocuSign key list is not configured', () => {
    expect(loadConfig({ DOCUSIGN_CONNECT_HMAC_KEYS: ' , ' }).webhookConfigured('docusign')).toBe(
      false,
    );
  });
});
