import { Env } from './env.schema';

/**
 * The provider registry (issue 11): every provider the hub speaks to, which port its adapter
 * serves (src/ports; adapters in src/connectors/<provider>), which webhook door it has, and what
 * configures it. Read by config (what is configured), the webhook door (its sources and the
 * referral platforms it accepts), alerts (which provider a failing job calls), the dashboard (the
 * connector overview, the event filters) and the admin API (its filters). Adding a provider starts
 * here (docs/adding-a-provider.md).
 */

/** The ports a provider's adapter can serve (src/ports). */
export type PortName = 'crm' | 'e-signature' | 'invoicing' | 'referral-platform' | 'alert-channel';

/** The signed webhook doors (CONTRACT §3): a provider's, or the hub's own Standard Webhooks doors. */
export const WEBHOOK_SOURCES = [
  'docusign',
  'hubspot',
  'stripe',
  'milestones',
  'partner-center',
  'generic',
] as const;
export type WebhookSource = (typeof WEBHOOK_SOURCES)[number];

export interface WebhookDoor {
  source: WebhookSource;
  /** Whether the hub has what it needs to accept (and later act on) the door's webhooks. */
  configured(env: Env): boolean;
  /** Served at /webhooks/referrals/<source> (CONTRACT §3.5) rather than /webhooks/<source>. */
  referralDoor?: boolean;
}

export interface ProviderEntry {
  /** The provider's key: events, metrics, job attempts and the dashboard carry it. */
  key: string;
  label: string;
  port: PortName;
  /** The report channel it delivers (referral platforms only). */
  channel?: 'partner-center' | 'webhook';
  /** Whether its outbound calls can be made (credentials or URL set). */
  configured(env: Env): boolean;
}

export const PROVIDERS = [
  {
    key: 'stripe',
    label: 'Stripe',
    port: 'invoicing',
    configured: (e) => e.STRIPE_SECRET_KEY !== undefined,
  },
  {
    key: 'hubspot',
    label: 'HubSpot',
    port: 'crm',
    configured: (e) => e.HUBSPOT_ACCESS_TOKEN !== undefined,
  },
  {
    key: 'docusign',
    label: 'DocuSign',
    port: 'e-signature',
    configured: (e) =>
      e.DOCUSIGN_INTEGRATION_KEY !== undefined && e.DOCUSIGN_TEMPLATE_ID !== undefined,
  },
  {
    key: 'partner-center',
    label: 'Partner Center',
    port: 'referral-platform',
    channel: 'partner-center',
    // App + user credentials (the env schema requires all four together).
    configured: (e) => e.PARTNER_CENTER_CLIENT_ID !== undefined,
  },
  {
    key: 'report-webhook',
    label: 'report webhook',
    port: 'referral-platform',
    channel: 'webhook',
    configured: (e) => e.REFERRAL_REPORT_WEBHOOK_URL !== undefined,
  },
  {
    key: 'alert-webhook',
    label: 'alert webhook',
    port: 'alert-channel',
    configured: (e) => e.ALERT_WEBHOOK_URL !== undefined,
  },
] as const satisfies readonly ProviderEntry[];

export type ProviderKey = (typeof PROVIDERS)[number]['key'];

export const WEBHOOK_DOORS: Readonly<Record<WebhookSource, WebhookDoor>> = {
  docusign: { source: 'docusign', configured: (e) => e.DOCUSIGN_CONNECT_HMAC_KEYS.length > 0 },
  hubspot: { source: 'hubspot', configured: (e) => e.HUBSPOT_CLIENT_SECRET !== undefined },
  stripe: { source: 'stripe', configured: (e) => e.STRIPE_WEBHOOK_SECRET !== undefined },
  milestones: {
    source: 'milestones',
    configured: (e) => e.MILESTONE_WEBHOOK_SECRET !== undefined,
  },
  // The webhook is thin: without API credentials the referral could never be read.
  'partner-center': {
    source: 'partner-center',
    referralDoor: true,
    configured: (e) => e.PARTNER_CENTER_CLIENT_ID !== undefined,
  },
  generic: {
    source: 'generic',
    referralDoor: true,
    configured: (e) => e.REFERRAL_WEBHOOK_SECRET !== undefined,
  },
};

/**
 * The referral platforms with a door of their own (today Partner Center): only that door may speak
 * for them, so the generic door refuses their names (CONTRACT §3.5).
 */
export const BUILT_IN_REFERRAL_PLATFORMS: readonly WebhookSource[] = Object.values(WEBHOOK_DOORS)
  .filter((door) => door.referralDoor && door.source !== 'generic')
  .map((door) => door.source);

/** The provider entry of a key. */
export function providerOf(key: ProviderKey): ProviderEntry {
  return PROVIDERS.find((p) => p.key === key)!;
}

/** The provider serving a port (the first, for ports with one provider at a time). */
export function providerFor(port: PortName): ProviderEntry {
  return PROVIDERS.find((p) => p.port === port)!;
}
