import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { PermanentError, TransientError } from '../../common/errors';
import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../health/metrics.service';
import { signStandardWebhook } from '../../webhooks/signatures/standard-webhooks-signature.verifier';
import { isTransientStatus, mapUnknownFailure, parseRetryAfter } from '../provider-call';

const PROVIDER = 'report-webhook';
/** How much of a receiver's error body ends up in the error message. */
const MAX_ERROR_BODY = 500;
/** How much of a receiver's error body is read at all. */
const MAX_READ_BYTES = 8 * 1024;
/** `webhook-id` must not contain `.` (it is a separator of the signed content) nor whitespace. */
const WEBHOOK_ID = /^[^\s.]{1,255}$/;

/** One outbound report (CONTRACT §5). */
export interface OutboundReport {
  /** Stable per report: sent as `webhook-id`, so receivers dedupe retries. */
  reportId: string;
  /** Report kind, e.g. `won` or `confirmed_amount`. */
  kind: string;
  /** Event type, e.g. `referral.report.confirmed_amount`. */
  type: string;
  /** The report's fields (CONTRACT §5); `reportId` and `kind` are added when missing. */
  data: Record<string, unknown>;
}

/**
 * Generic signed outbound reports (CONTRACT §5): a Standard Webhooks POST (provider-facts §5) of
 * `{ type, data }` to REFERRAL_REPORT_WEBHOOK_URL, signed with REFERRAL_REPORT_WEBHOOK_SECRET.
 * `webhook-id` is the report's stable `reportId`, so every retry of a report carries the same id.
 *
 * Any 2xx is delivered. TransientError: network, timeout (PROVIDER_TIMEOUT_MS), 408/409/425/429/5xx
 * honouring Retry-After. PermanentError: 410 (endpoint disabled), 3xx (redirects are not followed),
 * other 4xx with the receiver's body (truncated), unconfigured. The constructor never throws.
 */
@Injectable()
export class ReportWebhookClient {
  constructor(
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(ReportWebhookClient.name);
  }

  async send(report: OutboundReport): Promise<void> {
    const { url, secret } = this.settings();
    const body = JSON.stringify({ type: report.type, data: reportData(report) });
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'webhook-id': report.reportId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signStandardWebhook(secret, report.reportId, timestamp, body),
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
      this.metrics.providerCalls.inc({ provider: PROVIDER, status: 'error' });
      throw this.failed(report, mapUnknownFailure(PROVIDER, err));
    }
    this.metrics.providerCalls.inc({ provider: PROVIDER, status: String(res.status) });

    if (res.status >= 200 && res.status < 300) {
      await res.body?.cancel().catch(() => undefined);
      this.logger.debug({ reportId: report.reportId, status: res.status }, 'report delivered');
      return;
    }
    const text = await readBounded(res);
    throw this.failed(report, mapReportWebhookError(res.status, res.headers, text));
  }

  private settings(): { url: string; secret: string } {
    const e = this.config.env;
    const missing = (
      ['REFERRAL_REPORT_WEBHOOK_URL', 'REFERRAL_REPORT_WEBHOOK_SECRET'] as const
    ).filter((name) => !e[name]);
    if (missing.length > 0) {
      throw new PermanentError(`report webhook is not configured: set ${missing.join(', ')}`);
    }
    return { url: e.REFERRAL_REPORT_WEBHOOK_URL!, secret: e.REFERRAL_REPORT_WEBHOOK_SECRET! };
  }

  private failed(report: OutboundReport, err: Error): Error {
    this.logger.warn(
      {
        reportId: report.reportId,
        kind: report.kind,
        err: err.message,
        retryAfterMs: (err as TransientError).retryAfterMs,
      },
      'report webhook delivery failed',
    );
    return err;
  }
}

/** `data` with the report's id and kind; a conflicting value in `data` is a bug, not a retry. */
function reportData(report: OutboundReport): Record<string, unknown> {
  if (typeof report.reportId !== 'string' || !WEBHOOK_ID.test(report.reportId)) {
    throw new PermanentError(
      `report id ${JSON.stringify(report.reportId)} cannot be a webhook-id (1-255 characters, no "." or whitespace)`,
    );
  }
  if (typeof report.type !== 'string' || report.type === '') {
    throw new PermanentError(`report ${report.reportId} has no type`);
  }
  const data = report.data ?? {};
  for (const key of ['reportId', 'kind'] as const) {
    if (data[key] !== undefined && data[key] !== report[key]) {
      throw new PermanentError(
        `report ${report.reportId}: data.${key} ${JSON.stringify(data[key])} differs from ${JSON.stringify(report[key])}`,
      );
    }
  }
  return { reportId: report.reportId, kind: report.kind, ...data };
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
export function mapReportWebhookError(
  status: number,
  headers: Headers,
  text: string,
  now = Date.now(),
): Error {
  const message = `report webhook ${status}: ${truncate(text)}`;
  if (status === 410) {
    return new PermanentError(
      `report webhook 410: endpoint disabled by the receiver (fix REFERRAL_REPORT_WEBHOOK_URL): ${truncate(text)}`,
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
      `report webhook ${status}: redirects are not followed; set REFERRAL_REPORT_WEBHOOK_URL to the final URL (location ${headers.get('location') ?? 'none'})`,
    );
  }
  return new PermanentError(message);
}
