/**
 * The hub's one redaction rule (CONTRACT §7: secrets and personal data redacted), used wherever
 * something a request or a provider sent is written down or shown: the headers stored with an event,
 * log lines, job attempt and dead-letter errors, and the dashboard and admin API that show them.
 */

export const REDACTED = '[redacted]';

/**
 * The request headers an operator needs to debug a delivery, stored as sent: how it was framed,
 * who sent it, its ids and timestamps, and which certificate or signature scheme it used. Every
 * other header keeps its name with its value redacted: signatures and credentials
 * (`authorization`, `proxy-authorization`, `cookie`, `cf-access-jwt-assertion`, each provider's
 * signature header), and personal data such as the client address in `x-forwarded-for`. An
 * allow-list, so a header nobody thought of is redacted rather than kept.
 */
const KEPT_HEADERS = new Set([
  'accept',
  'accept-encoding',
  'content-encoding',
  'content-length',
  'content-type',
  'user-agent',
  'x-request-id',
  // Standard Webhooks (milestones, generic referrals): the identity and the signed timestamp.
  'webhook-id',
  'webhook-timestamp',
  // HubSpot: the signed timestamp and the scheme (v1/v2/v3).
  'x-hubspot-request-timestamp',
  'x-hubspot-signature-version',
  // DocuSign Connect: the digest algorithm (HMACSHA256).
  'x-authorization-digest',
  // Partner Center: where the signing certificate was fetched from, and the algorithm.
  'x-ms-certificate-url',
  'x-ms-signature-algorithm',
]);

/** A stored header value is cut to this length: enough to read, never a whole smuggled body. */
const MAX_HEADER_VALUE = 512;

/** Request headers as stored with an event and shown to viewers: the allow-list above, the rest redacted. */
export function redactHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (!KEPT_HEADERS.has(name)) {
      out[name] = REDACTED;
    } else if (Array.isArray(value)) {
      out[name] = value.map((v) => clip(String(v)));
    } else {
      out[name] = typeof value === 'string' ? clip(value) : value;
    }
  }
  return out;
}

const clip = (v: string): string =>
  v.length > MAX_HEADER_VALUE ? `${v.slice(0, MAX_HEADER_VALUE)}…` : v;

/**
 * Secrets and personal data in free text (an error message a provider returned, a log line): each
 * match keeps what it is and loses its value.
 */
const TEXT_RULES: [RegExp, string][] = [
  // Authorization schemes: "Bearer abc", "Basic …", Partner Center's "Signature …".
  [/\b(Bearer|Basic|Signature|Token)\s+[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${REDACTED}`],
  // JSON Web Tokens (DocuSign JWT grants, Entra ID tokens, Cloudflare Access assertions).
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, REDACTED],
  // Stripe and Standard Webhooks secrets and keys.
  [/\b(whsec|whsk|sk_live|sk_test|rk_live|rk_test)_[A-Za-z0-9+/=]{6,}/g, `$1_${REDACTED}`],
  // Stripe-Signature values.
  [/\bv1=[0-9a-f]{16,}/g, `v1=${REDACTED}`],
  // Secrets in query strings or form bodies.
  [
    /\b(access_token|refresh_token|client_secret|id_token|assertion|password|code|token|secret|api_key|apikey)=[^&\s"']+/gi,
    `$1=${REDACTED}`,
  ],
  // JSON-ish "token": "value" pairs in provider error bodies.
  [
    /("(?:access_token|refresh_token|client_secret|password|secret|token|authorization)"\s*:\s*)"[^"]*"/gi,
    `$1"${REDACTED}"`,
  ],
  // E-mail addresses (personal data: customers, signers, contacts).
  [/[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/g, '[email]'],
];

/** Free text with secrets and e-mail addresses redacted (see TEXT_RULES). */
export function redactText(text: string): string {
  let out = text;
  for (const [pattern, replacement] of TEXT_RULES) out = out.replace(pattern, replacement);
  return out;
}

/**
 * Object keys whose values are secrets or personal data wherever they appear in a logged object:
 * pino's redact paths are built from them (observability/logger-options.ts).
 */
export const SECRET_KEYS = [
  'authorization',
  'cookie',
  'token',
  'accessToken',
  'refreshToken',
  'secret',
  'clientSecret',
  'password',
  'email',
  'acceptedBy',
  'customer',
  'firstname',
  'lastname',
] as const;
