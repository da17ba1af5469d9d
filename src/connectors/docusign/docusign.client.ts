import { CONTRACT_ID_FIELD, DEAL_ID_FIELD } from './docusign-fields';
import { readFileSync } from 'node:fs';

import { Injectable } from '@nestjs/common';
import type {
  DocusignCallback,
  DocusignHttpResponse,
  Envelope,
  EnvelopeDefinition,
  EnvelopesApi,
  EnvelopesInformation,
  EnvelopeSummary,
} from 'docusign-esign';
import { PinoLogger } from 'nestjs-pino';

import { PermanentError, TransientError } from '../../common/errors';
import { withTimeout } from '../../common/with-timeout';
import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../observability/metrics.service';
import { ESignaturePort, EnvelopeDocumentKind } from '../../ports/e-signature.port';
import {
  headerValue,
  isTransientStatus,
  mapUnknownFailure,
  parseRetryAfter,
} from '../provider-call';
import { CachedToken, TokenCache } from '../token-cache';
import { CreateEnvelopeInput, EnvelopeView } from '../../ports/e-signature.port';

type DocusignSdk = typeof import('docusign-esign');
let loaded: DocusignSdk | undefined;
/**
 * docusign-esign, loaded on first use: its generated models cost ~40 MB of memory that processes
 * which never call DocuSign (every api process, a hub without DocuSign) need not carry.
 */
function sdk(): DocusignSdk {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (loaded ??= require('docusign-esign') as DocusignSdk);
}

const PROVIDER = 'docusign';
const SCOPES = ['signature', 'impersonation'];
const TOKEN_LIFETIME_S = 3600;
/** Mint a new token this long before the current one expires (JWT grant has no refresh token). */
const REFRESH_MARGIN_MS = 10 * 60_000;
/** Envelope custom field that ties an envelope to its deal (CONTRACT §3.1). */
/** When DocuSign's API limits are hit without a usable reset hint. */
const DEFAULT_LIMIT_RETRY_MS = 60_000;
const MAX_LIMIT_RETRY_MS = 3_600_000;
/** How much of a streamed error body (a document download's) is read for DocuSign's error. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const PDF_MAGIC = Buffer.from('%PDF-');

interface AxiosErrorLike {
  code?: string;
  message?: string;
  response?: { status?: number; data?: unknown; headers?: unknown };
}

/**
 * The hub's only way to DocuSign eSignature REST v2.1 (docusign-esign 10).
 *
 * Auth: JWT grant against DOCUSIGN_OAUTH_BASE through an ApiClient used for nothing else —
 * setBasePath() silently re-derives the OAuth host (provider-facts §1.5), so the REST client never
 * issues tokens. The token is cached until 10 minutes before expiry and shared by concurrent
 * callers (one refresh in flight). REST base is DOCUSIGN_API_BASE (userinfo is not consulted). A
 * 401 from REST drops the cached token once and retries once.
 *
 * DocuSign has no idempotency keys: an envelope created by an attempt whose outcome is unknown is
 * found again with findEnvelopeByDealId (custom field closeloop_deal_id) before creating another.
 *
 * Documents (downloadDocument) come back as bytes: the SDK streams a PDF answer into a Buffer,
 * and an error answer's stream is read here for DocuSign's errorCode.
 *
 * Errors: TransientError (network, timeouts, 408/409/425/429/5xx, API-limit errors with the reset
 * hint) or PermanentError (other 4xx with DocuSign's errorCode and message; consent_required with
 * the consent URL; unconfigured).
 */
@Injectable()
export class DocusignClient implements ESignaturePort {
  readonly provider = 'docusign';
  private readonly tokens = new TokenCache(() => this.requestToken());
  private privateKey?: Buffer;

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(DocusignClient.name);
  }

  /** Sends an envelope from DOCUSIGN_TEMPLATE_ID to one signer, tagged with the deal id. */
  async createEnvelope(input: CreateEnvelopeInput): Promise<EnvelopeView> {
    const env = this.settings();
    const envelopeDefinition: EnvelopeDefinition = {
      templateId: env.templateId,
      status: 'sent',
      emailSubject: input.emailSubject,
      templateRoles: [
        {
          email: input.signer.email,
          name: input.signer.name,
          roleName: env.templateRole,
          tabs: {
            textTabs: Object.entries(input.textTabs).map(([tabLabel, value]) => ({
              tabLabel,
              value,
            })),
          },
        },
      ],
      customFields: {
        textCustomFields: [
          { name: DEAL_ID_FIELD, value: input.dealId, show: 'false', required: 'false' },
          { name: CONTRACT_ID_FIELD, value: input.contractId, show: 'false', required: 'false' },
        ],
      },
    };
    const summary = await this.rest<EnvelopeSummary>('envelopes.create', (api, cb) =>
      api.createEnvelope(env.accountId, { envelopeDefinition }, cb),
    );
    if (!summary?.envelopeId) {
      throw new TransientError('docusign createEnvelope answered without an envelopeId');
    }
    return {
      envelopeId: summary.envelopeId,
      status: summary.status ?? 'sent',
      dealId: input.dealId,
      contractId: input.contractId,
    };
  }

  /**
   * The most recent envelope carrying custom fields closeloop_deal_id = dealId and
   * closeloop_contract_id = contractId whose status changed since `since`, or null. An envelope that
   * names the deal without the contract (made outside the hub) is never adopted.
   */
  async findEnvelopeByDealId(
    dealId: string,
    contractId: string,
    since: Date,
  ): Promise<EnvelopeView | null> {
    const env = this.settings();
    const info = await this.rest<EnvelopesInformation>('envelopes.listStatusChanges', (api, cb) =>
      api.listStatusChanges(
        env.accountId,
        {
          fromDate: since.toISOString(),
          customField: `${DEAL_ID_FIELD}=${dealId}`,
          include: 'custom_fields',
        },
        cb,
      ),
    );
    const matches = (info?.envelopes ?? []).filter((e) => {
      if (!e.envelopeId) return false;
      const value = fieldOf(e, DEAL_ID_FIELD);
      // DocuSign filtered on the deal server-side; double-check when the field came back.
      return (
        (value === undefined || value === dealId) && fieldOf(e, CONTRACT_ID_FIELD) === contractId
      );
    });
    if (matches.length === 0) return null;
    matches.sort((a, b) => (a.createdDateTime ?? '').localeCompare(b.createdDateTime ?? ''));
    const latest = matches[matches.length - 1];
    return {
      envelopeId: latest.envelopeId!,
      status: latest.status ?? 'unknown',
      dealId,
      contractId,
    };
  }

  /**
   * The envelope's documents as PDF bytes (GET …/envelopes/{id}/documents/combined?certificate=true,
   * or …/documents/certificate). The SDK streams the body into a Buffer; anything that is not a PDF
   * (an empty body, a string, an HTML page) is refused rather than handed on as a contract.
   */
  async downloadDocument(envelopeId: string, kind: EnvelopeDocumentKind): Promise<Buffer> {
    const env = this.settings();
    const data = await this.rest<Buffer | string>(`envelopes.getDocument.${kind}`, (api, cb) =>
      kind === 'combined'
        ? api.getDocument(env.accountId, envelopeId, 'combined', { certificate: 'true' }, cb)
        : api.getDocument(env.accountId, envelopeId, 'certificate', {}, cb),
    );
    // The SDK answers a Buffer; a string only if a base64 transfer encoding was asked for (never).
    const bytes = Buffer.isBuffer(data)
      ? data
      : Buffer.from(typeof data === 'string' ? data : '', 'latin1');
    if (bytes.length < PDF_MAGIC.length || !bytes.subarray(0, PDF_MAGIC.length).equals(PDF_MAGIC)) {
      throw new PermanentError(
        `docusign ${kind} document of envelope ${envelopeId} is not a PDF (${bytes.length} bytes)`,
      );
    }
    return bytes;
  }

  // ---------------------------------------------------------------------------------------------

  private settings() {
    const e = this.config.env;
    if (
      !this.config.docusignConfigured ||
      !e.DOCUSIGN_INTEGRATION_KEY ||
      !e.DOCUSIGN_USER_ID ||
      !e.DOCUSIGN_ACCOUNT_ID ||
      !e.DOCUSIGN_TEMPLATE_ID ||
      (!e.DOCUSIGN_PRIVATE_KEY && !e.DOCUSIGN_PRIVATE_KEY_FILE)
    ) {
      throw new PermanentError(
        'docusign is not configured: set DOCUSIGN_INTEGRATION_KEY, DOCUSIGN_USER_ID, ' +
          'DOCUSIGN_ACCOUNT_ID, DOCUSIGN_TEMPLATE_ID and DOCUSIGN_PRIVATE_KEY (or DOCUSIGN_PRIVATE_KEY_FILE)',
      );
    }
    return {
      integrationKey: e.DOCUSIGN_INTEGRATION_KEY,
      userId: e.DOCUSIGN_USER_ID,
      accountId: e.DOCUSIGN_ACCOUNT_ID,
      templateId: e.DOCUSIGN_TEMPLATE_ID,
      templateRole: e.DOCUSIGN_TEMPLATE_ROLE,
      apiBase: e.DOCUSIGN_API_BASE.replace(/\/+$/, ''),
      oauthBase: e.DOCUSIGN_OAUTH_BASE,
    };
  }

  /** One REST call with the cached token; on 401 the token is dropped and the call retried once. */
  private async rest<T>(
    op: string,
    invoke: (api: EnvelopesApi, cb: DocusignCallback<T>) => unknown,
  ): Promise<T | null | undefined> {
    const env = this.settings();
    for (let attempt = 1; ; attempt++) {
      const token = await this.tokens.get();
      const apiClient = new (sdk().ApiClient)({ basePath: env.apiBase });
      apiClient.timeout = this.config.env.PROVIDER_TIMEOUT_MS;
      apiClient.addDefaultHeader('Authorization', `Bearer ${token}`);
      const api = new (sdk().EnvelopesApi)(apiClient);
      try {
        return await this.send(op, (cb: DocusignCallback<T>) => invoke(api, cb));
      } catch (err) {
        await readStreamedErrorBody(err, this.config.env.PROVIDER_TIMEOUT_MS);
        const status = (err as AxiosErrorLike).response?.status;
        if (status === 401 && attempt === 1) {
          this.logger.info({ op }, 'docusign answered 401: minting a new token and retrying once');
          this.tokens.invalidate(token);
          continue;
        }
        const mapped = mapDocusignError(err, env);
        this.logger.warn(
          { op, err: mapped.message, retryAfterMs: (mapped as TransientError).retryAfterMs },
          'docusign call failed',
        );
        throw mapped;
      }
    }
  }

  /** Runs a callback-style SDK call (the callback form exposes the HTTP status for metrics). */
  private send<T>(
    op: string,
    invoke: (cb: DocusignCallback<T>) => unknown,
  ): Promise<T | null | undefined> {
    const call = new Promise<T | null | undefined>((resolve, reject) => {
      invoke((error, data, response?: DocusignHttpResponse) => {
        if (error) {
          const status = (error as AxiosErrorLike).response?.status;
          this.metrics.providerCalls.inc({ provider: PROVIDER, status: String(status ?? 'error') });
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        this.metrics.providerCalls.inc({
          provider: PROVIDER,
          status: String(response?.status ?? 200),
        });
        resolve(data);
      });
    });
    // axios enforces apiClient.timeout; this only guards against a callback that never comes.
    return withTimeout(call, this.config.env.PROVIDER_TIMEOUT_MS + 1_000, `docusign ${op}`);
  }

  private async requestToken(): Promise<CachedToken> {
    const env = this.settings();
    // A client used only for auth: never setBasePath() on it (that resets the OAuth host).
    const auth = new (sdk().ApiClient)();
    auth.setOAuthBasePath(env.oauthBase);
    let response;
    try {
      // The SDK sends the token request without a timeout; bound it here.
      response = await withTimeout(
        auth.requestJWTUserToken(
          env.integrationKey,
          env.userId,
          SCOPES,
          this.loadPrivateKey(),
          TOKEN_LIFETIME_S,
        ),
        this.config.env.PROVIDER_TIMEOUT_MS,
        'docusign token request',
      );
    } catch (err) {
      if (err instanceof PermanentError) throw err;
      const status = (err as AxiosErrorLike).response?.status;
      this.metrics.providerCalls.inc({ provider: PROVIDER, status: String(status ?? 'error') });
      const mapped = mapDocusignError(err, env);
      this.logger.warn({ err: mapped.message }, 'docusign token request failed');
      throw mapped;
    }
    this.metrics.providerCalls.inc({ provider: PROVIDER, status: String(response.status ?? 200) });
    const value = response.body?.access_token;
    if (!value) throw new TransientError('docusign token response carried no access_token');
    const lifetimeMs = (Number(response.body.expires_in) || TOKEN_LIFETIME_S) * 1000;
    const margin = Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2);
    const token = { value, refreshAt: Date.now() + lifetimeMs - margin };
    return token;
  }

  private loadPrivateKey(): Buffer {
    if (this.privateKey) return this.privateKey;
    const e = this.config.env;
    let pem: string;
    if (e.DOCUSIGN_PRIVATE_KEY) {
      // Accept a PEM whose newlines were escaped to fit one environment line.
      pem = e.DOCUSIGN_PRIVATE_KEY.replace(/\\n/g, '\n');
    } else {
      try {
        pem = readFileSync(e.DOCUSIGN_PRIVATE_KEY_FILE!, 'utf8');
      } catch (err) {
        throw new PermanentError(
          `docusign private key: cannot read DOCUSIGN_PRIVATE_KEY_FILE (${(err as Error).message})`,
          { cause: err },
        );
      }
    }
    this.privateKey = Buffer.from(pem);
    return this.privateKey;
  }
}

/**
 * A document download asks axios for a stream, so its error answer arrives unread: read it (bounded
 * in size and time) and put DocuSign's JSON error (or its text) where mapDocusignError looks.
 */
async function readStreamedErrorBody(err: unknown, timeoutMs: number): Promise<void> {
  const response = (err as AxiosErrorLike | null)?.response;
  const data = response?.data as NodeJS.ReadableStream | undefined;
  if (!response || !data || typeof data !== 'object' || typeof data.on !== 'function') return;
  const read = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    data.on('data', (chunk: Buffer | string) => {
      if (size >= MAX_ERROR_BODY_BYTES) return;
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      chunks.push(buf);
      size += buf.length;
    });
    data.on('end', () => resolve(Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY_BYTES)));
    data.on('error', reject);
  });
  try {
    const text = (await withTimeout(read, timeoutMs, 'docusign error body')).toString('utf8');
    try {
      response.data = JSON.parse(text) as unknown;
    } catch {
      response.data = text;
    }
  } catch {
    response.data = undefined;
  }
}

function fieldOf(envelope: Envelope, name: string): string | undefined {
  return envelope.customFields?.textCustomFields?.find((f) => f.name === name)?.value;
}

/** DocuSign SDK (axios) error → TransientError | PermanentError (CONTRACT §7, provider-facts §1.5–1.6). */
export function mapDocusignError(
  err: unknown,
  env: { oauthBase: string; integrationKey: string },
  now = Date.now(),
): Error {
  if (err instanceof TransientError || err instanceof PermanentError) return err;
  const e = err as AxiosErrorLike | null;
  const status = e?.response?.status;
  if (!e || typeof status !== 'number') return mapUnknownFailure(PROVIDER, err);
  const data = (e.response?.data && typeof e.response.data === 'object' ? e.response.data : {}) as {
    errorCode?: string;
    message?: string;
    error?: string;
    error_description?: string;
  };
  const errorCode = data.errorCode ?? data.error;
  const detail =
    data.message ??
    data.error_description ??
    (typeof e.response?.data === 'string' && e.response.data ? e.response.data : e.message);
  const message = `${PROVIDER} ${status}${errorCode ? ` ${errorCode}` : ''}: ${detail ?? 'request failed'}`;
  const options = { cause: err };
  const headers = e.response?.headers;

  if (errorCode === 'consent_required') {
    const consentUrl =
      `https://${env.oauthBase}/oauth/auth?response_type=code&scope=${SCOPES.join('%20')}` +
      `&client_id=${encodeURIComponent(env.integrationKey)}&redirect_uri=<a redirect URI registered for the integration key>`;
    return new PermanentError(
      `${message} — the user must grant consent once for the integration key; open ${consentUrl}`,
      options,
    );
  }
  if (status === 429 || /LIMIT_EXCEEDED/i.test(errorCode ?? '')) {
    return new TransientError(message, limitRetryAfter(headers, now), options);
  }
  if (isTransientStatus(status)) {
    return new TransientError(
      message,
      parseRetryAfter(headerValue(headers, 'retry-after'), now),
      options,
    );
  }
  return new PermanentError(message, options);
}

/** Retry-After, else X-RateLimit-Reset (epoch seconds), capped at an hour. */
function limitRetryAfter(headers: unknown, now: number): number {
  const retryAfter = parseRetryAfter(headerValue(headers, 'retry-after'), now);
  if (retryAfter !== undefined) return Math.min(retryAfter, MAX_LIMIT_RETRY_MS);
  const reset = Number(headerValue(headers, 'x-ratelimit-reset'));
  if (Number.isFinite(reset) && reset > 0) {
    return Math.min(Math.max(reset * 1000 - now, 1_000), MAX_LIMIT_RETRY_MS);
  }
  return DEFAULT_LIMIT_RETRY_MS;
}
