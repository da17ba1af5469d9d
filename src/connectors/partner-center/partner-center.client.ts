import { randomUUID } from 'node:crypto';

import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { PermanentError, TransientError } from '../../common/errors';
import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../observability/metrics.service';
import { mapUnknownFailure } from '../provider-call';
import { CachedToken, TokenCache } from '../token-cache';
import {
  HttpResult,
  TokenResponse,
  mapPartnerCenterError,
  mapTokenError,
  parseJson,
  parseReferral,
  referralPath,
  toReferralId,
} from './partner-center.mapper';
import { assertPatchOps } from './partner-center.patch';
import { JsonPatchOp, Referral } from './partner-center.types';
import {
  NewReferral,
  externalReferenceFilter,
  parseReferralList,
} from './partner-center-cosell.mapper';

export {
  PartnerCenterNotFoundError,
  PartnerCenterPreconditionFailedError,
  mapPartnerCenterError,
  referralIdFromResourceUri,
} from './partner-center.mapper';
export { statusPatch } from './partner-center.patch';

/** The referrals collection (create, list). */
function referralsPath(): string {
  return '/v1.0/engagements/referrals';
}

const PROVIDER = 'partner-center';

/** Resource (audience) of Partner Center's REST API tokens (provider-facts §4.1). */
export const PARTNER_CENTER_RESOURCE = 'https://api.partner.microsoft.com';

/** The access token is renewed this long before it expires. */
const TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;
/** Used when a token response carries no usable expires_in (Entra ID's usual lifetime). */
const DEFAULT_TOKEN_LIFETIME_S = 3600;

interface Settings {
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  apiBase: string;
  tokenUrl: string;
}

/**
 * The hub's only way to the Partner Center Referrals API (provider-facts §4), over Node's fetch.
 *
 * Auth is App+User (the only kind these endpoints document): the refresh token of a user with the
 * Referrals Admin or Referrals User role, redeemed for an access token with the app's client id and
 * secret (the Secure Application Model; the docs' ROPC sample cannot work with enforced MFA). The
 * access token is cached until 5 minutes before it expires, and concurrent callers share one
 * in-flight refresh. When Entra ID rotates the refresh token, the new one is kept in memory and used
 * for the next refresh (a restart falls back to PARTNER_CENTER_REFRESH_TOKEN, which stays valid
 * until it expires or is revoked).
 *
 * Every call goes to PARTNER_CENTER_API_BASE, never to a host named in a webhook's ResourceUri
 * (CONTRACT §5): only the referral id is taken from a ResourceUri.
 *
 * Errors: TransientError (network, timeouts, 408/409/425/429/5xx honouring Retry-After; 412 as
 * {@link PartnerCenterPreconditionFailedError}) or PermanentError (other 4xx with Partner Center's
 * message, 404 as {@link PartnerCenterNotFoundError}, invalid_grant, unconfigured). A 401 drops the
 * cached token, refreshes once and retries once. The constructor never throws: the module is built
 * in every role, configured or not.
 */
@Injectable()
export class PartnerCenterClient {
  private readonly tokens = new TokenCache(() => this.requestToken());
  /** The refresh token Entra ID returned last (rotation); preferred over the configured one. */
  private rotatedRefreshToken?: string;

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(PartnerCenterClient.name);
  }

  /**
   * GET `${PARTNER_CENTER_API_BASE}/v1.0/engagements/referrals/{id}`. Accepts a referral id or a
   * webhook's ResourceUri, of which only the id is used.
   *
   * @throws PartnerCenterNotFoundError on 404
   */
  async getReferral(idOrResourceUri: string): Promise<Referral> {
    const id = toReferralId(idOrResourceUri);
    const result = await this.request('referrals.get', 'GET', referralPath(id));
    return parseReferral(result);
  }

  /**
   * PATCH the referral with a JSON Patch array (only `replace` and `add`, checked before sending),
   * `If-Match: <eTag>` when given and `Prefer: return=representation`; returns the updated referral
   * (re-read when Partner Center answers without a body).
   *
   * @throws PartnerCenterPreconditionFailedError (transient) on 412: re-read and retry
   */
  async patchReferral(id: string, ops: JsonPatchOp[], eTag?: string): Promise<Referral> {
    const referralId = toReferralId(id);
    assertPatchOps(ops);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      prefer: 'return=representation',
    };
    if (eTag) headers['if-match'] = eTag;
    const result = await this.request('referrals.patch', 'PATCH', referralPath(referralId), {
      body: JSON.stringify(ops),
      headers,
    });
    if (result.text.trim() === '') return this.getReferral(referralId);
    return parseReferral(result);
  }

  /**
   * POST `${PARTNER_CENTER_API_BASE}/v1.0/engagements/referrals` (create a referral, [PC-CREATE]);
   * returns the created referral. Partner Center takes no idempotency key: a caller whose answer
   * was lost finds the referral again by its externalReferenceId
   * ({@link findReferralsByExternalReference}) before posting again.
   */
  async createReferral(body: NewReferral): Promise<Referral> {
    const result = await this.request('referrals.create', 'POST', referralsPath(), {
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
    return parseReferral(result);
  }

  /**
   * GET `${PARTNER_CENTER_API_BASE}/v1.0/engagements/referrals?$filter=externalReferenceId eq '…'`:
   * the referrals the partner created for one of its own records (the CRM deal id).
   */
  async findReferralsByExternalReference(externalReferenceId: string): Promise<Referral[]> {
    const query = new URLSearchParams({ $filter: externalReferenceFilter(externalReferenceId) });
    const result = await this.request(
      'referrals.list',
      'GET',
      `${referralsPath()}?${query.toString().replace(/\+/g, '%20')}`,
    );
    return parseReferralList(result);
  }

  // ---------------------------------------------------------------------------------------------

  private settings(): Settings {
    const e = this.config.env;
    const required = [
      'PARTNER_CENTER_TENANT_ID',
      'PARTNER_CENTER_CLIENT_ID',
      'PARTNER_CENTER_CLIENT_SECRET',
      'PARTNER_CENTER_REFRESH_TOKEN',
    ] as const;
    const missing = required.filter((name) => !e[name]);
    if (missing.length > 0) {
      throw new PermanentError(`partner center is not configured: set ${missing.join(', ')}`);
    }
    return {
      clientId: e.PARTNER_CENTER_CLIENT_ID!,
      clientSecret: e.PARTNER_CENTER_CLIENT_SECRET!,
      refreshToken: e.PARTNER_CENTER_REFRESH_TOKEN!,
      apiBase: e.PARTNER_CENTER_API_BASE.replace(/\/+$/, ''),
      tokenUrl:
        e.PARTNER_CENTER_TOKEN_URL ??
        `https://login.microsoftonline.com/${encodeURIComponent(e.PARTNER_CENTER_TENANT_ID!)}/oauth2/token`,
    };
  }

  /** One API call with the cached token; on 401 the token is dropped and the call retried once. */
  private async request(
    op: string,
    method: 'GET' | 'PATCH' | 'POST',
    path: string,
    opts: { body?: string; headers?: Record<string, string> } = {},
  ): Promise<HttpResult> {
    const url = `${this.settings().apiBase}${path}`;
    for (let attempt = 1; ; attempt++) {
      const token = await this.tokens.get();
      const requestId = randomUUID();
      const result = await this.send(op, url, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          'ms-requestid': requestId,
          ...opts.headers,
        },
        body: opts.body,
      });
      if (result.status === 401 && attempt === 1) {
        this.logger.info({ op, requestId }, 'partner-center answered 401: refreshing the token');
        this.tokens.invalidate(token);
        continue;
      }
      if (result.status < 200 || result.status >= 300) {
        throw this.failed(op, mapPartnerCenterError(result.status, result.headers, result.text), {
          requestId,
        });
      }
      return result;
    }
  }

  /** fetch with PROVIDER_TIMEOUT_MS (covering the body), no redirects, metrics per response. */
  private async send(op: string, url: string, init: RequestInit): Promise<HttpResult> {
    let res: Response;
    try {
      res = await fetch(url, {
        ...init,
        redirect: 'error',
        signal: AbortSignal.timeout(this.config.env.PROVIDER_TIMEOUT_MS),
      });
    } catch (err) {
      this.metrics.providerCalls.inc({ provider: PROVIDER, status: 'error' });
      throw this.failed(op, mapUnknownFailure(PROVIDER, err));
    }
    this.metrics.providerCalls.inc({ provider: PROVIDER, status: String(res.status) });
    try {
      // The same timeout signal bounds the body.
      return { status: res.status, headers: res.headers, text: await res.text() };
    } catch (err) {
      throw this.failed(op, mapUnknownFailure(PROVIDER, err));
    }
  }

  private failed(op: string, err: Error, extra: Record<string, unknown> = {}): Error {
    this.logger.warn(
      { op, ...extra, err: err.message, retryAfterMs: (err as TransientError).retryAfterMs },
      'partner-center call failed',
    );
    return err;
  }

  /**
   * Redeems the refresh token. Entra ID's v1 endpoint (`/oauth2/token`) with
   * `resource=https://api.partner.microsoft.com` is the default, because provider-facts §4.1 gives
   * Partner Center's auth as a token for that resource/audience and the Secure Application Model
   * samples redeem partner refresh tokens there; v2 (`/oauth2/v2.0/token`) would need
   * `scope=https://api.partner.microsoft.com/.default offline_access` instead. When
   * PARTNER_CENTER_TOKEN_URL points at a v2 endpoint the v2 form is sent, otherwise the v1 form.
   */
  private async requestToken(): Promise<CachedToken> {
    const s = this.settings();
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: s.clientId,
      client_secret: s.clientSecret,
      refresh_token: this.rotatedRefreshToken ?? s.refreshToken,
    });
    if (/\/oauth2\/v2\.0\/token\/?$/i.test(new URL(s.tokenUrl).pathname)) {
      form.set('scope', `${PARTNER_CENTER_RESOURCE}/.default offline_access`);
    } else {
      form.set('resource', PARTNER_CENTER_RESOURCE);
    }
    const result = await this.send('token', s.tokenUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: form.toString(),
    });
    const body = (parseJson(result.text) ?? {}) as TokenResponse;
    if (result.status < 200 || result.status >= 300) {
      throw this.failed('token', mapTokenError(result.status, result.headers, body, result.text));
    }
    if (typeof body.access_token !== 'string' || body.access_token === '') {
      throw this.failed(
        'token',
        new TransientError('partner-center token response had no access_token'),
      );
    }
    if (typeof body.refresh_token === 'string' && body.refresh_token !== '') {
      this.rotatedRefreshToken = body.refresh_token;
    }
    // v1 sends expires_in as a string ("3599"), v2 as a number.
    const seconds = Number(body.expires_in);
    const lifetimeMs =
      (Number.isFinite(seconds) && seconds > 0 ? seconds : DEFAULT_TOKEN_LIFETIME_S) * 1000;
    const margin = Math.min(TOKEN_REFRESH_MARGIN_MS, lifetimeMs / 2);
    const token = { value: body.access_token, refreshAt: Date.now() + lifetimeMs - margin };
    return token;
  }
}
