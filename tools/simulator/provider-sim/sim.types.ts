import { IncomingHttpHeaders } from 'node:http';

/**
 * The provider simulator (a test, demo and benchmark aid; never a code path of the hub) is one
 * HTTP server that hands every request to the provider modules in turn. Each module speaks one
 * provider's real wire format.
 */
export type SimProviderName =
  | 'stripe'
  | 'hubspot'
  | 'docusign'
  | 'partner-center'
  /** The receiver of the hub's generic outbound reports (CONTRACT §5), not a provider API. */
  | 'reports';

export interface SimRequest {
  provider?: SimProviderName;
  method: string;
  /** Path without the query string, e.g. `/v1/invoices/in_123/finalize`. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  rawBody: Buffer;
}

export interface SimResponse {
  status: number;
  headers?: Record<string, string>;
  /** Serialised as JSON unless it is a string or Buffer. */
  body?: unknown;
}

/** Where the simulator sends the providers' signed webhooks (the hub's door). */
export interface SimWebhookTarget {
  /** Base URL of the hub, e.g. http://127.0.0.1:3000 */
  hubUrl: string;
  /** Public base URL the hub computes HubSpot v3 signatures over (defaults to hubUrl). */
  publicBaseUrl?: string;
  stripeWebhookSecret?: string;
  hubspotClientSecret?: string;
  docusignHmacKeys?: string[];
}

export interface SimProviderModule {
  readonly name: SimProviderName;
  /** Whether this module owns the request (by path). */
  matches(req: SimRequest): boolean;
  handle(req: SimRequest): Promise<SimResponse> | SimResponse;
  /** Forget all state (between tests). */
  reset(): void;
  /** Optional: the simulator's own base URL once listening (for hosted pages, OAuth redirects…). */
  setBaseUrl?(url: string): void;
  /** Optional: where to send signed webhooks (called on start and on every `setTarget`). */
  setTarget?(target: SimWebhookTarget | undefined): void;
  /**
   * Optional: the module's part of the control API, i.e. requests under `/_sim/<name>/`. Return
   * undefined when the path is not one of the module's (the simulator then answers 404).
   */
  control?(req: SimRequest): Promise<SimResponse | undefined> | SimResponse | undefined;
  /** Optional: stop timers and outgoing deliveries (called by the simulator's `close()`). */
  close?(): Promise<void> | void;
}
