import { HeaderBag } from '../common/header.util';
import { WebhookSource } from '../config/providers';
import { NormalizedEvent } from '../domain/normalized-event';

export type { HeaderBag, WebhookSource };

/**
 * The inbound port: what a webhook door needs from a provider's adapter (CONTRACT §3) — verify a
 * delivery on its raw bytes, find the provider's events in it, and map a stored event to the
 * normalized event the core consumes. The provider doors live in their adapter folders
 * (src/connectors/<provider>/<provider>.webhook.ts, with their signature verifiers); the hub's own
 * Standard Webhooks doors (milestones, generic referrals) live in src/webhooks/providers. The
 * verifiers are framework-free: the door maps `SignatureError` to 401 and
 * `CertificateUnavailableError` to 503; any other error is a bug or a misconfiguration (500).
 */

/** Why a delivery was rejected; also the `reason` label of the rejection metric. */
export type SignatureFailure =
  'missing_signature' | 'bad_signature' | 'stale_timestamp' | 'untrusted_certificate';

/** The delivery is not authentic (or too old). The message is a short explanation, never a secret. */
export class SignatureError extends Error {
  override readonly name = 'SignatureError';

  constructor(
    readonly reason: SignatureFailure,
    message: string,
  ) {
    super(message);
  }
}

/** Transient: the signing certificate could not be fetched, so the caller answers 503 and the provider retries. */
export class CertificateUnavailableError extends Error {
  override readonly name = 'CertificateUnavailableError';
}

/** What a provider's door sees of a request: the raw bytes, never a re-serialised body. */
export interface DoorRequest {
  rawBody: Buffer;
  headers: HeaderBag;
  method: string;
  /** Path and query as received, e.g. `/webhooks/hubspot?x=1`. */
  url: string;
}

/** One provider event found in a delivery (a HubSpot batch holds several). */
export interface IncomingEvent {
  /** The provider's event identity (CONTRACT §3). */
  providerEventId: string;
  type: string;
  payload: unknown;
  /** Its lane (doorRoute); the event's own lane when the door cannot place it. */
  lane?: string;
  /** Why the hub will not use it: stored IGNORED, with no job. */
  ignored?: string;
  /**
   * Why it is not stored at all: an element of a batch the hub can neither identify nor use (a
   * HubSpot association change has no objectId). Skipped on its own: the rest of the batch is
   * stored and the delivery answers 2xx (CONTRACT §3.2). Counted and logged, never a job.
   */
  skip?: string;
}

/** A delivery the door cannot take (answers 400 and stores nothing). */
export class MalformedDeliveryError extends Error {}

/** Everything the hub knows about one provider's inbound format. */
export interface WebhookProvider {
  readonly source: WebhookSource;
  /** Throws SignatureError (401) or CertificateUnavailableError (503). */
  verify(req: DoorRequest): Promise<void> | void;
  /** Throws MalformedDeliveryError (400). */
  identify(body: unknown, req: DoorRequest): IncomingEvent[];
  /**
   * Maps a stored event to the internal shape; null for types the hub does not use (IGNORED).
   * Throws PermanentError when a used type carries invalid data.
   */
  normalize(type: string, payload: unknown): NormalizedEvent | null;
}

export function asRecord(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

export function str(v: unknown): string | undefined {
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

/** Identity parts must all be present; `|` joins them (BullMQ job ids may not contain ':'). */
export function identity(parts: unknown[], what: string): string {
  const strings = parts.map(str);
  if (strings.some((s) => s === undefined))
    throw new MalformedDeliveryError(`${what} is missing an identity field`);
  return strings.join('|');
}

/** The provider doors the adapters bring (ConnectorsModule provides them). */
export const WEBHOOK_DOOR_ADAPTERS = Symbol('WEBHOOK_DOOR_ADAPTERS');
