import { Client } from '@hubspot/api-client';
import { AssociationSpecAssociationCategoryEnum } from '@hubspot/api-client/lib/codegen/crm/objects/notes';
import { FilterOperatorEnum } from '@hubspot/api-client/lib/codegen/crm/deals';
import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { PermanentError, TransientError } from '../../common/errors';
import { withTimeout } from '../../common/with-timeout';
import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../observability/metrics.service';
import {
  headerValue,
  isTransientStatus,
  mapUnknownFailure,
  parseRetryAfter,
} from '../provider-call';
import { CrmDealSnapshot } from './hubspot.types';

const PROVIDER = 'hubspot';

/** Deal properties the hub reads (CONTRACT §3.2). */
export const DEAL_PROPERTIES = [
  'dealname',
  'amount',
  'deal_currency_code',
  'dealstage',
  'pipeline',
  'closedate',
  'closeloop_billing_plan',
  'closeloop_referral_platform',
  'closeloop_referral_id',
  // Co-sell out (CONTRACT §5): the request, and the referral's notes.
  'closeloop_cosell',
  'description',
] as const;
const CONTACT_PROPERTIES = ['email', 'firstname', 'lastname', 'phone'];
/** The name, and the address a Partner Center co-sell referral's customer profile needs. */
const COMPANY_PROPERTIES = ['name', 'address', 'address2', 'city', 'state', 'zip', 'country'];
/** AssociationTypes.noteToDeal (provider-facts §2.4). */
const NOTE_TO_DEAL = 214;

const TEN_SECONDS = 10_000;
const ONE_SECOND = 1_000;
/** A DAILY limit resets at midnight; a job must not sleep that long, so we retry within the hour. */
const DAILY_RETRY_CAP_MS = 3_600_000;

interface ApiExceptionLike {
  code: number;
  body: unknown;
  headers: Record<string, string> | undefined;
  message: string;
}

interface AssociatedIdLike {
  id: string;
  type?: string;
}

/**
 * The hub's only way to HubSpot (CRM v3 through @hubspot/api-client 13).
 *
 * ONE SDK Client per process, built on first use with numberOfApiCallRetries 0 and no limiter: the
 * SDK's retry and limiter decorators live in a process-global singleton that every `new Client()`
 * (and setAccessToken) resets for all clients in the process (provider-facts §2.4), so we set them
 * explicitly once and never construct a second Client. Our job queue owns retries: a 429 or 5xx
 * becomes a TransientError with HubSpot's own back-off hint and the job is retried later.
 *
 * Errors: TransientError (network, timeouts, 408/409/425/429/5xx; 429 honours Retry-After and the
 * body's policyName) or PermanentError (other 4xx with HubSpot's message; unconfigured).
 */
@Injectable()
export class HubspotClient {
  private sdk?: Client;

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(HubspotClient.name);
  }

  /**
   * The deal with the properties of CONTRACT §3.2, its primary (else first) contact and company;
   * null when HubSpot answers 404 (deleted or unknown deal).
   */
  async getDeal(crmDealId: string): Promise<CrmDealSnapshot | null> {
    const deal = await this.call('deals.getById', (c, o) =>
      c.crm.deals.basicApi.getByIdWithHttpInfo(
        crmDealId,
        [...DEAL_PROPERTIES],
        undefined,
        ['contacts', 'companies'],
        undefined,
        undefined,
        o,
      ),
    ).catch(notFoundAsNull);
    if (!deal) return null;
    const data = deal.data;
    const associations = (data.associations ?? {}) as Record<
      string,
      { results?: AssociatedIdLike[] } | undefined
    >;
    const contactId = pickAssociated(associations.contacts?.results);
    const companyId = pickAssociated(associations.companies?.results);

    const [contact, company] = await Promise.all([
      contactId
        ? this.call('contacts.getById', (c, o) =>
            c.crm.contacts.basicApi.getByIdWithHttpInfo(
              contactId,
              CONTACT_PROPERTIES,
              undefined,
              undefined,
              undefined,
              undefined,
              o,
            ),
          ).catch(notFoundAsNull)
        : null,
      companyId
        ? this.call('companies.getById', (c, o) =>
            c.crm.companies.basicApi.getByIdWithHttpInfo(
              companyId,
              COMPANY_PROPERTIES,
              undefined,
              undefined,
              undefined,
              undefined,
              o,
            ),
          ).catch(notFoundAsNull)
        : null,
    ]);

    const props = data.properties ?? {};
    const properties: CrmDealSnapshot['properties'] = {};
    for (const name of DEAL_PROPERTIES) properties[name] = props[name] ?? null;
    const snapshot: CrmDealSnapshot = { id: data.id, properties };
    if (data.archived !== undefined) snapshot.archived = data.archived;
    if (contact) {
      const p = contact.data.properties ?? {};
      snapshot.contact = {
        id: contact.data.id,
        email: p.email ?? null,
        firstname: p.firstname ?? null,
        lastname: p.lastname ?? null,
        phone: p.phone ?? null,
      };
    }
    if (company) {
      const p = company.data.properties ?? {};
      snapshot.company = {
        id: company.data.id,
        name: p.name ?? null,
        address: p.address ?? null,
        address2: p.address2 ?? null,
        city: p.city ?? null,
        state: p.state ?? null,
        zip: p.zip ?? null,
        country: p.country ?? null,
      };
    }
    return snapshot;
  }

  /** Creates a deal with the given properties (strings); returns its id. */
  async createDeal(properties: Record<string, string>): Promise<string> {
    const created = await this.call('deals.create', (c, o) =>
      c.crm.deals.basicApi.createWithHttpInfo({ properties, associations: [] }, o),
    );
    return created.data.id;
  }

  /**
   * Ids of the deals whose `property` equals `value` (CRM search API). HubSpot indexes new deals
   * for search after a few seconds, so a deal created moments ago may not be found yet.
   */
  async findDealIds(property: string, value: string): Promise<string[]> {
    const found = await this.call('deals.search', (c, o) =>
      c.crm.deals.searchApi.doSearchWithHttpInfo(
        {
          filterGroups: [
            { filters: [{ propertyName: property, operator: FilterOperatorEnum.Eq, value }] },
          ],
          properties: [property],
          limit: 10,
        },
        o,
      ),
    );
    return found.data.results.map((d) => d.id);
  }

  /** PATCH the deal's properties (values are strings, as HubSpot stores them). */
  async updateDeal(crmDealId: string, properties: Record<string, string>): Promise<void> {
    await this.call('deals.update', (c, o) =>
      c.crm.deals.basicApi.updateWithHttpInfo(crmDealId, { properties }, undefined, o),
    );
  }

  /**
   * A note on the deal's timeline; returns the note id. HubSpot has no idempotency keys, so a
   * retried job may leave a second identical note (harmless for a log entry).
   */
  async createNote(crmDealId: string, body: string, at: Date): Promise<string> {
    const created = await this.call('notes.create', (c, o) =>
      c.crm.objects.notes.basicApi.createWithHttpInfo(
        {
          properties: { hs_note_body: body, hs_timestamp: at.toISOString() },
          associations: [
            {
              to: { id: crmDealId },
              types: [
                {
                  associationCategory: AssociationSpecAssociationCategoryEnum.HubspotDefined,
                  associationTypeId: NOTE_TO_DEAL,
                },
              ],
            },
          ],
        },
        o,
      ),
    );
    return created.data.id;
  }

  // ---------------------------------------------------------------------------------------------

  private client(): Client {
    if (this.sdk) return this.sdk;
    const env = this.config.env;
    if (!env.HUBSPOT_ACCESS_TOKEN) {
      throw new PermanentError('hubspot is not configured: set HUBSPOT_ACCESS_TOKEN');
    }
    this.sdk = new Client({
      accessToken: env.HUBSPOT_ACCESS_TOKEN,
      ...(env.HUBSPOT_API_BASE ? { basePath: env.HUBSPOT_API_BASE.replace(/\/+$/, '') } : {}),
      // Explicitly no SDK retries and no SDK limiter: the queue retries with backoff (see above).
      numberOfApiCallRetries: 0,
    });
    return this.sdk;
  }

  /**
   * Per-call SDK options counting every HTTP response in metrics. (13.5's generated APIs ignore
   * the Client-level `middleware` setting unless call-time middleware is given, so it goes here.)
   */
  private readonly callOptions = {
    middlewareMergeStrategy: 'append' as const,
    middleware: [
      {
        pre: <C>(ctx: C): Promise<C> => Promise.resolve(ctx),
        post: <C>(ctx: C): Promise<C> => {
          const status = (ctx as { httpStatusCode?: number }).httpStatusCode;
          this.metrics.providerCalls.inc({ provider: PROVIDER, status: String(status ?? 'error') });
          return Promise.resolve(ctx);
        },
      },
    ],
  };

  private async call<T>(
    op: string,
    fn: (client: Client, options: HubspotClient['callOptions']) => Promise<T>,
  ): Promise<T> {
    const client = this.client();
    try {
      // The SDK (node-fetch 2) has no request timeout of its own; bound the wait here.
      return await withTimeout(
        fn(client, this.callOptions),
        this.config.env.PROVIDER_TIMEOUT_MS,
        `hubspot ${op}`,
      );
    } catch (err) {
      if (!isApiException(err)) {
        this.metrics.providerCalls.inc({ provider: PROVIDER, status: 'error' });
      }
      const mapped = mapHubspotError(err);
      if (!(isApiException(err) && err.code === 404)) {
        this.logger.warn(
          { op, err: mapped.message, retryAfterMs: (mapped as TransientError).retryAfterMs },
          'hubspot call failed',
        );
      }
      throw mapped;
    }
  }
}

function isApiException(err: unknown): err is ApiExceptionLike {
  // Each generated API module has its own ApiException class, so match the shape, not the class.
  return (
    !!err &&
    typeof err === 'object' &&
    typeof (err as { code?: unknown }).code === 'number' &&
    'body' in err &&
    'headers' in err
  );
}

/** Marks a mapped 404 so getDeal can turn it into null. */
class HubspotNotFound extends PermanentError {}

function notFoundAsNull(err: unknown): null {
  if (err instanceof HubspotNotFound) return null;
  throw err;
}

function pickAssociated(results: AssociatedIdLike[] | undefined): string | undefined {
  if (!results || results.length === 0) return undefined;
  const primary = results.find((r) => /primary/i.test(r.type ?? ''));
  return (primary ?? results[0]).id;
}

/** HubSpot SDK error → TransientError | PermanentError (CONTRACT §7, provider-facts §2.5). */
export function mapHubspotError(err: unknown, now = Date.now()): Error {
  if (err instanceof TransientError || err instanceof PermanentError) return err;
  if (!isApiException(err)) return mapUnknownFailure(PROVIDER, err);
  const status = err.code;
  const body = (err.body && typeof err.body === 'object' ? err.body : {}) as {
    message?: string;
    category?: string;
    policyName?: string;
  };
  const detail = body.message ?? (typeof err.body === 'string' ? err.body : err.message);
  const category = body.category ? ` ${body.category}` : '';
  const message = `${PROVIDER} ${status}${category}: ${detail}`;
  const options = { cause: err };

  if (status === 429) {
    return new TransientError(message, hubspotRetryAfter(err.headers, body, now), options);
  }
  if (isTransientStatus(status)) {
    return new TransientError(
      message,
      parseRetryAfter(headerValue(err.headers, 'retry-after')),
      options,
    );
  }
  if (status === 404) return new HubspotNotFound(message, options);
  return new PermanentError(message, options);
}

function hubspotRetryAfter(
  headers: Record<string, string> | undefined,
  body: { message?: string; policyName?: string },
  now: number,
): number {
  const retryAfter = parseRetryAfter(headerValue(headers, 'retry-after'), now);
  if (retryAfter !== undefined) return retryAfter;
  const policy = (body.policyName ?? '').toUpperCase();
  if (policy === 'DAILY' || headerValue(headers, 'x-hubspot-ratelimit-daily-remaining') === '0') {
    const nextMidnightUtc = new Date(now);
    nextMidnightUtc.setUTCHours(24, 0, 0, 0);
    return Math.min(nextMidnightUtc.getTime() - now, DAILY_RETRY_CAP_MS);
  }
  if (policy === 'TEN_SECONDLY_ROLLING') {
    const interval = Number(headerValue(headers, 'x-hubspot-ratelimit-interval-milliseconds'));
    return Number.isFinite(interval) && interval > 0 ? interval : TEN_SECONDS;
  }
  if (policy.includes('SECONDLY') || /secondly limit/i.test(body.message ?? '')) return ONE_SECOND;
  if (headerValue(headers, 'x-hubspot-ratelimit-secondly-remaining') === '0') return ONE_SECOND;
  // Unknown policy: the burst window is ten seconds.
  return TEN_SECONDS;
}
