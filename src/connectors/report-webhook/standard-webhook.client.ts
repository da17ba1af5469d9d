import { PinoLogger } from 'nestjs-pino';

import { PermanentError, TransientError } from '../../common/errors';
import { AppConfig } from '../../config/app-config';
import { Env } from '../../config/env.schema';
import { MetricsService } from '../../observability/metrics.service';
import { signStandardWebhook } from '../../common/standard-webhooks';
import { isTransientStatus, mapUnknownFailure, parseRetryAfter } from '../provider-call';

/** How much of a receiver's error body ends up in the error message. */
const MAX_ERROR_BODY = 500;
/** How much of a receiver's error body is read at all. */
const MAX_READ_BYTES = 8 * 1024;
/** `webhook-id` must not contain `.` (it is a separator of the signed content) nor whitespace. */
const WEBHOOK_ID = /^[^\s.]{1,255}$/;

/** Settings that hold a string (a URL or a `whsec_` secret). */
type StringSetting = {
  [K in keyof Env]-?: Env[K] extends string | undefined ? K : never;
}[keyof Env];

/** One signed outbound endpoint: where it is configured and how it is named. */
export interface StandardWebhookTarget {
  /** The `provider` label of metrics.providerCalls, e.g. `report-webhook`. */
  provider: string;
  /** Names the endpoint in errors and logs, e.g. `report webhook`. */
  label: string;
  /** The setting holding the receiver's URL, e.g. REFERRAL_REPORT_WEBHOOK_URL. */
  urlSetting: StringSetting;
  /** The setting holding the `whsec_…` signing secret. */
  secretSetting: StringSetting;
}

/** One message: `{ type, data }` sent with `webhook-id` = `id`. */
export interface StandardWebhookMessage {
  /** Stable per message and the same on every retry, so receivers dedupe (provider-facts §5). */
  id: string;
  type: string;
  data: Record<string, unknown>;
}

/**
 * The sending half of every signed outbound webhook of the hub (reports, CONTRACT §5; alerts,
 * CONTRACT §2): a Standard Webhooks POST (provider-facts §5) of `{ type, data }` to the target's
 * URL, signed with its secret. Written once here so the report and alert clients classify
 * failures the same way and the spine retries and dead-letters both alike.
 *
 * Any 2xx is delivered. TransientError: network, timeout (PROVIDER_TIMEOUT_MS), 408/409/425/429/5xx
 * honouring Retry-After. PermanentError: 410 (endpoint disabled), 3xx (redirects are not followed),
 * other 4xx with the receiver's body (truncated), unconfigured, an id that cannot be a webhook-id.
 * The constructor never throws: an unconfigured target fails when it is used.
 */
export class StandardWebhookClient {
  constructor(
    private readonly target: StandardWebhookTarget,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    /** The owning client's logger (its context names who sent). */
    private readonly logger: PinoLogger,
  ) {}

  /** POSTs one message; `logFields` are added to the delivery's log lines. */
  async send(
    message: StandardWebhookMessage,
    logFields: Record<string, unknown> = {},
  ): Promise<void> {
    const { url, secret } = this.settings();
    const { label, provider } = this.target;
    if (typeof message.id !== 'string' || !WEBHOOK_ID.test(message.id)) {
      throw new PermanentError(
        `${label}: id ${JSON.stringify(message.id)} cannot be a webhook-id (1-255 characters, no "." or whitespace)`,
      );
    }
    const body = JSON.stringify({ type: message.type, data: message.data });
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'webhook-id': message.id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signStandardWebhook(secret, message.id, timestamp, body),
    };

    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.config.env.PROVIDER_TIMEOUT_MS),
      });
    } catch (err) {
      this.metrics.providerCalls.inc({ provider, status: 'error' });
      throw this.failed(message, logFields, mapUnknownFailure(provider, err));
    }
    this.metrics.providerCalls.inc({ provider, status: String(res.status) });

    if (res.status >= 200 && res.status < 300) {
      await res.body?.cancel().catch(() => undefined);
      this.logger.debug(
        { ...logFields, webhookId: message.id, status: res.status },
        `${label} delivered`,
      );
      return;
    }
    const text = await readBounded(res);
    throw this.failed(
      message,
      logFields,
      mapStandardWebhookError(this.target, res.status, res.headers, text),
    );
  }

  private settings(): { url: string; secret: string } {
    const e = this.config.env;
    const missing = [this.target.urlSetting, this.target.secretSetting].filter((name) => !e[name]);
    if (missing.length > 0) {
      throw new PermanentError(`${this.target.label} is not configured: set ${missing.join(', ')}`);
    }
    return {
      url: e[this.target.urlSetting] as string,
      secret: e[this.target.secretSetting] as string,
    };
  }

  private failed(
    message: StandardWebhookMessage,
    logFields: Record<string, unknown>,
    err: Error,
  ): Error {
    this.logger.warn(
      {
        ...logFields,
        webhookId: message.id,
        err: err.message,
        retryAfterMs: (err as TransientError).retryAfterMs,
      },
      `${this.target.label} delivery failed`,
    );
    return err;
  }
}

/** At most MAX_READ_BYTES of the body as text; never throws. */
async function readBounded(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < MAX_READ_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // A body that fails half-way still gives its status; the text is only for the message.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, MAX_READ_BYTES).toString('utf8');
}

function truncate(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat === '') return '(no body)';
  return flat.length > MAX_ERROR_BODY ? `${flat.slice(0, MAX_ERROR_BODY)}…` : flat;
}

/** A non-2xx answer of the receiver → TransientError | PermanentError (provider-facts §5). */
export function mapStandardWebhookError(
  target: Pick<StandardWebhookTarget, 'label' | 'urlSetting'>,
  status: number,
  headers: Headers,
  text: string,
  now = Date.now(),
): Error {
  const { label, urlSetting } = target;
  const message = `${label} ${status}: ${truncate(text)}`;
  if (status === 410) {
    return new PermanentError(
      `${label} 410: endpoint disabled by the receiver (fix ${urlSetting}): ${truncate(text)}`,
    );
  }
  if (isTransientStatus(status)) {
    return new TransientError(
      message,
      parseRetryAfter(headers.get('retry-after') ?? undefined, now),
    );
  }
  if (status >= 300 && status < 400) {
    return new PermanentError(
      `${label} ${status}: redirects are not followed; set ${urlSetting} to the final URL (location ${headers.get('location') ?? 'none'})`,
    );
  }
  return new PermanentError(message);
}
