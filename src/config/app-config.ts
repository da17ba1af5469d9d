import type { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';

import { readPemCertificateFile } from '../common/certificate.util';
import { Env, envSchema } from './env.schema';
import { ProviderKey, WEBHOOK_DOORS, WebhookSource, providerOf } from './providers';

export type Role = Env['ROLE'];

/**
 * Where Microsoft publishes the Partner Center notification certificate (provider-facts,
 * [PC-WH][3P-PC-PIN]): the default of PARTNER_CENTER_CERT_URL_PREFIXES.
 */
export const DEFAULT_PARTNER_CENTER_CERT_URL_PREFIXES = [
  'https://3psostorageacct.blob.core.windows.net/cert/',
];
export type { WebhookSource } from './providers';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

/**
 * Typed, validated configuration. Built once from the environment by loadConfig(); injected
 * everywhere as AppConfig (ConfigModule is global).
 */
export class AppConfig {
  readonly env: Readonly<Env>;

  /**
   * `files`: what loadConfig read from the certificate files the environment names
   * (PARTNER_CENTER_CA_FILE, else NODE_EXTRA_CA_CERTS).
   */
  constructor(
    env: Env,
    private readonly files: CertificateFiles = { extraCa: [] },
  ) {
    this.env = Object.freeze({ ...env });
  }

  get role(): Role {
    return this.env.ROLE;
  }
  get runsApi(): boolean {
    return this.role !== 'worker';
  }
  get runsWorker(): boolean {
    return this.role !== 'api';
  }
  get publicBaseUrl(): string {
    return (this.env.PUBLIC_BASE_URL ?? `http://localhost:${this.env.PORT}`).replace(/\/+$/, '');
  }
  get partnerCenterCertUrlPrefixes(): string[] {
    return this.env.PARTNER_CENTER_CERT_URL_PREFIXES.length > 0
      ? this.env.PARTNER_CENTER_CERT_URL_PREFIXES
      : DEFAULT_PARTNER_CENTER_CERT_URL_PREFIXES;
  }

  /**
   * The roots a Partner Center certificate must chain to (CONTRACT §3.5, provider-facts §4.3, ADR
   * 0011), PEM: exactly the certificates of PARTNER_CENTER_CA_FILE when it is set, else Node's
   * bundled roots plus those of NODE_EXTRA_CA_CERTS.
   */
  get partnerCenterTrustedRoots(): readonly string[] {
    if (this.files.partnerCenterCa) return this.files.partnerCenterCa.map((c) => c.toString());
    return [...rootCertificates, ...this.files.extraCa.map((c) => c.toString())];
  }

  get stripeConfigured(): boolean {
    return this.providerConfigured('stripe');
  }
  get hubspotConfigured(): boolean {
    return this.providerConfigured('hubspot');
  }
  get partnerCenterConfigured(): boolean {
    return this.providerConfigured('partner-center');
  }
  get docusignConfigured(): boolean {
    return this.providerConfigured('docusign');
  }

  /** Whether a provider's outbound calls can be made (the provider registry, config/providers.ts). */
  providerConfigured(key: ProviderKey): boolean {
    return providerOf(key).configured(this.env);
  }

  /**
   * The IANA zone a deal's dates are computed in (billing dates, deadlines, report dates): the
   * deal's own, else BILLING_TIMEZONE (CONTRACT §4). The one place this rule lives.
   */
  timeZoneOf(deal: { timeZone: string | null }): string {
    return deal.timeZone ?? this.env.BILLING_TIMEZONE;
  }

  /** Whether the hub has what it needs to accept (and later act on) a source's webhooks. */
  webhookConfigured(source: WebhookSource): boolean {
    return WEBHOOK_DOORS[source].configured(this.env);
  }
}

/** Certificates read at start-up from the files the environment names. */
export interface CertificateFiles {
  /** PARTNER_CENTER_CA_FILE's certificates, when it is set. */
  partnerCenterCa?: X509Certificate[];
  /** NODE_EXTRA_CA_CERTS's certificates (read only when PARTNER_CENTER_CA_FILE is unset). */
  extraCa: X509Certificate[];
}

/**
 * Reads the certificate files once, at start-up: a missing, unreadable or non-PEM file is one
 * ConfigError line naming its variable. NODE_EXTRA_CA_CERTS is read only when it matters (Partner
 * Center trust without PARTNER_CENTER_CA_FILE); Node itself merely warns about a bad one.
 */
function readCertificateFiles(env: Env): CertificateFiles {
  const read = (name: 'PARTNER_CENTER_CA_FILE' | 'NODE_EXTRA_CA_CERTS', path: string) => {
    try {
      return readPemCertificateFile(path);
    } catch (error) {
      throw new ConfigError([`${name}: ${(error as Error).message} (invalid)`]);
    }
  };
  if (env.PARTNER_CENTER_CA_FILE) {
    return {
      partnerCenterCa: read('PARTNER_CENTER_CA_FILE', env.PARTNER_CENTER_CA_FILE),
      extraCa: [],
    };
  }
  return {
    extraCa: env.NODE_EXTRA_CA_CERTS ? read('NODE_EXTRA_CA_CERTS', env.NODE_EXTRA_CA_CERTS) : [],
  };
}

/**
 * Parse and validate the environment, and read the certificate files it names; throws
 * ConfigError with one line per problem.
 */
export function loadConfig(source: Record<string, string | undefined>): AppConfig {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    // One line per variable: a list entry (PARTNER_CENTER_CERT_URL_PREFIXES.1) is reported under
    // its variable, and several issues of one variable are joined.
    const messages = new Map<string, string[]>();
    for (const issue of parsed.error.issues) {
      const [head, ...rest] = issue.path;
      const name = head === undefined ? '(environment)' : String(head);
      const entry = rest.map((p) => (typeof p === 'number' ? p + 1 : String(p))).join('.');
      const message = entry ? `entry ${entry}: ${issue.message}` : issue.message;
      messages.set(name, [...(messages.get(name) ?? []), message]);
    }
    const problems = [...messages].map(([name, list]) => {
      const value = source[name];
      const shown = value === undefined || value.trim() === '' ? 'missing' : 'invalid';
      return `${name}: ${list.join('; ')} (${shown})`;
    });
    throw new ConfigError(problems);
  }
  return new AppConfig(parsed.data, readCertificateFiles(parsed.data));
}
