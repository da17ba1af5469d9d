import { Inject, Injectable, OnModuleDestroy, Optional } from '@nestjs/common';
import { Redis } from 'ioredis';
import { PinoLogger } from 'nestjs-pino';
import {
  RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import Stripe from 'stripe';

import { PermanentError, TransientError } from '../../common/errors';
import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../observability/metrics.service';
import { InvoicingBudget, InvoicingPort } from '../../ports/invoicing.port';
import { sha256Hex, sleep } from '../provider-call';
import {
  PROVIDER,
  draftInvoiceRequest,
  idempotencyKey,
  invoiceLineRequest,
  mapStripeError,
  taxRateRequest,
  searchValue,
  toInvoiceView,
} from './stripe.mapper';
import {
  DraftInvoiceInput,
  CustomerContact,
  EnsureCustomerInput,
  InvoiceLineInput,
  InvoiceView,
} from '../../ports/invoicing.port';

export { idempotencyKey, mapStripeError, searchValue, toInvoiceView } from './stripe.mapper';

/**
 * Optional injection token: a limiter to use instead of the Redis-backed one (tests, benchmarks).
 * Any rate-limiter-flexible limiter works; one point is consumed per HTTP request to Stripe.
 */
export const STRIPE_RATE_LIMITER = Symbol('STRIPE_RATE_LIMITER');
/** Optional injection token: reconciliation's own limiter (see StripeBudget), as above. */
export const STRIPE_RECONCILIATION_RATE_LIMITER = Symbol('STRIPE_RECONCILIATION_RATE_LIMITER');

/**
 * Whose allowance a Stripe call spends. Every call takes a slot of the shared per-account limiter
 * (STRIPE_RATE_LIMIT_PER_SEC); a `reconciliation` call first takes a slot of reconciliation's own
 * limiter (STRIPE_RECONCILIATION_RATE_PER_SEC, smaller), then the shared one. So reconciliation
 * takes at most its own rate out of the shared allowance, billing keeps the rest however hard
 * reconciliation pulls, and billing's calls never wait for reconciliation's limiter.
 *
 * Both limiters count fixed one-second windows (rate-limiter-flexible), each starting at its own
 * first call, so they need not line up: "per second" holds per window of each limiter and on
 * average, while one window of the shared limiter can overlap two of reconciliation's.
 */
export type StripeBudget = InvoicingBudget;

const PAGE_SIZE = 100;
/** Safety stop for the pagination loops (100 pages × 100 objects). */
const MAX_PAGES = 100;
const RATE_LIMIT_KEY_PREFIX = 'closeloop:rl:stripe';
const RECONCILIATION_KEY_PREFIX = `${RATE_LIMIT_KEY_PREFIX}:reconciliation`;

/**
 * The hub's only way to Stripe. Every POST carries OUR deterministic idempotency key (never the
 * SDK's random one, provider-facts §3.3), so a job retried by the queue, by another worker or
 * after a crash replays Stripe's stored answer instead of creating a second object. The SDK never
 * retries (maxNetworkRetries 0): the job queue owns retries and backoff.
 *
 * Outbound calls are rate-limited per Stripe account across all worker processes through Redis
 * (STRIPE_RATE_LIMIT_PER_SEC, default 25/s); a call waits for a slot instead of failing. If Redis
 * is unreachable an in-process limiter takes over so billing is never blocked by the limiter alone.
 * Reconciliation's reads also pass a second limiter of their own, shared the same way (StripeBudget).
 *
 * Errors: TransientError (network, timeouts, 409, 429 with Retry-After, 5xx, Stripe-Should-Retry:
 * true) or PermanentError (other 4xx with Stripe's message, idempotency errors, unconfigured).
 */
@Injectable()
export class StripeClient implements InvoicingPort, OnModuleDestroy {
  readonly provider = 'stripe';
  private sdk?: Stripe;
  private limiters?: Record<StripeBudget, RateLimiterAbstract>;
  private readonly injectedLimiters: Partial<Record<StripeBudget, RateLimiterAbstract>>;
  private redis?: Redis;
  /** Resolves once the limiter's Redis connection is ready (or after 2 s without it). */
  private redisReady: Promise<void> = Promise.resolve();
  private lastRedisErrorLog = 0;
  private readonly taxRates = new Map<number, Promise<string>>();

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly logger: PinoLogger,
    @Optional() @Inject(STRIPE_RATE_LIMITER) limiter?: RateLimiterAbstract,
    @Optional()
    @Inject(STRIPE_RECONCILIATION_RATE_LIMITER)
    reconciliationLimiter?: RateLimiterAbstract,
  ) {
    logger.setContext(StripeClient.name);
    this.injectedLimiters = { shared: limiter, reconciliation: reconciliationLimiter };
  }

  async onModuleDestroy(): Promise<void> {
    const redis = this.redis;
    this.redis = undefined;
    if (!redis) return;
    if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
    else redis.disconnect();
  }

  /**
   * Finds the customer by metadata (when asked) or creates it idempotently; returns its id.
   * `replaces`: a customer of this key that Stripe no longer has (deleted): the new one gets an
   * idempotency key of its own, or Stripe would answer with the deleted one again.
   */
  async ensureCustomer(
    input: EnsureCustomerInput,
    opts: { searchFirst: boolean; replaces?: string },
  ): Promise<string> {
    if (opts.searchFirst) {
      const found = await this.call('customers.search', (s) =>
        s.customers.search({
          query: `metadata['closeloop_customer_key']:'${searchValue(input.customerKey)}'`,
          limit: 10,
        }),
      );
      const hit = [...found.data].sort((a, b) => a.created - b.created)[0];
      if (hit) return hit.id;
    }
    const created = await this.call('customers.create', (s) =>
      s.customers.create(
        {
          email: input.email,
          name: input.name,
          // One customer per customer of the hub, shared by their deals: no deal id here.
          metadata: { closeloop_customer_key: input.customerKey },
        },
        {
          idempotencyKey: idempotencyKey(
            'customer',
            opts.replaces ? `${input.customerKey}|replaces|${opts.replaces}` : input.customerKey,
          ),
        },
      ),
    );
    return created.id;
  }

  /** POST /v1/customers/:id with the contact (Stripe keeps what is not sent). */
  async updateCustomer(customerId: string, contact: CustomerContact): Promise<void> {
    await this.call('customers.update', (s) =>
      s.customers.update(customerId, {
        ...(contact.email !== undefined && { email: contact.email }),
        ...(contact.name !== undefined && { name: contact.name }),
      }),
    );
  }

  /** An active, exclusive JCT tax rate of `percent` (found or created once; cached per process). */
  ensureTaxRate(percent: number): Promise<string> {
    let pending = this.taxRates.get(percent);
    if (!pending) {
      pending = this.findOrCreateTaxRate(percent);
      this.taxRates.set(percent, pending);
      pending.catch(() => this.taxRates.delete(percent));
    }
    return pending;
  }

  /** Invoices carrying metadata closeloop_billing_key = billingKey (Stripe search; may lag ~1 min). */
  findInvoicesByBillingKey(billingKey: string): Promise<InvoiceView[]> {
    return this.searchInvoices(`metadata['closeloop_billing_key']:'${searchValue(billingKey)}'`);
  }

  /** Invoices carrying metadata closeloop_deal_id = dealId. */
  searchInvoicesByDeal(dealId: string, budget: StripeBudget = 'shared'): Promise<InvoiceView[]> {
    return this.searchInvoices(`metadata['closeloop_deal_id']:'${searchValue(dealId)}'`, budget);
  }

  async createDraftInvoice(input: DraftInvoiceInput): Promise<InvoiceView> {
    const invoice = await this.call('invoices.create', (s) =>
      s.invoices.create(...draftInvoiceRequest(input)),
    );
    return toInvoiceView(invoice);
  }

  /**
   * Adds the item's one line to the draft invoice. Nothing is read back: the send that follows
   * answers with the finalized invoice (totals, number, URLs).
   */
  async addInvoiceLine(input: InvoiceLineInput): Promise<void> {
    await this.call('invoiceItems.create', (s) =>
      s.invoiceItems.create(...invoiceLineRequest(input)),
    );
  }

  async sendInvoice(billingKey: string, invoiceId: string): Promise<InvoiceView> {
    const invoice = await this.call('invoices.sendInvoice', (s) =>
      s.invoices.sendInvoice(invoiceId, {}, { idempotencyKey: idempotencyKey('send', billingKey) }),
    );
    return toInvoiceView(invoice);
  }

  async retrieveInvoice(invoiceId: string, budget: StripeBudget = 'shared'): Promise<InvoiceView> {
    const invoice = await this.call(
      'invoices.retrieve',
      (s) => s.invoices.retrieve(invoiceId),
      budget,
    );
    return toInvoiceView(invoice);
  }

  /** Every invoice of the customer (all pages). */
  async listInvoicesForCustomer(
    customerId: string,
    budget: StripeBudget = 'shared',
  ): Promise<InvoiceView[]> {
    const out: InvoiceView[] = [];
    let startingAfter: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const list = await this.call(
        'invoices.list',
        (s) =>
          s.invoices.list({
            customer: customerId,
            limit: PAGE_SIZE,
            ...(startingAfter ? { starting_after: startingAfter } : {}),
          }),
        budget,
      );
      out.push(...list.data.map(toInvoiceView));
      const last = list.data.at(-1);
      if (!list.has_more || !last) break;
      startingAfter = last.id;
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------

  private async searchInvoices(
    query: string,
    budget: StripeBudget = 'shared',
  ): Promise<InvoiceView[]> {
    const out: InvoiceView[] = [];
    let next: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await this.call(
        'invoices.search',
        (s) => s.invoices.search({ query, limit: PAGE_SIZE, ...(next ? { page: next } : {}) }),
        budget,
      );
      out.push(...result.data.map(toInvoiceView));
      if (!result.has_more || !result.next_page) break;
      next = result.next_page;
    }
    return out;
  }

  private async findOrCreateTaxRate(percent: number): Promise<string> {
    let startingAfter: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const list = await this.call('taxRates.list', (s) =>
        s.taxRates.list({
          active: true,
          limit: PAGE_SIZE,
          ...(startingAfter ? { starting_after: startingAfter } : {}),
        }),
      );
      const hit = list.data.find(
        (r) =>
          r.metadata?.closeloop_tax_percent === String(percent) &&
          r.inclusive === false &&
          r.active !== false,
      );
      if (hit) return hit.id;
      const last = list.data.at(-1);
      if (!list.has_more || !last) break;
      startingAfter = last.id;
    }
    const created = await this.call('taxRates.create', (s) =>
      s.taxRates.create(...taxRateRequest(percent)),
    );
    return created.id;
  }

  private stripe(): Stripe {
    if (this.sdk) return this.sdk;
    const env = this.config.env;
    if (!env.STRIPE_SECRET_KEY) {
      throw new PermanentError('stripe is not configured: set STRIPE_SECRET_KEY');
    }
    const options: ConstructorParameters<typeof Stripe>[1] = {
      maxNetworkRetries: 0, // the job queue owns retries (CONTRACT §7)
      timeout: env.PROVIDER_TIMEOUT_MS,
      telemetry: false,
      appInfo: { name: 'closeloop' },
    };
    if (env.STRIPE_API_BASE) {
      const base = new URL(env.STRIPE_API_BASE);
      const protocol = base.protocol === 'http:' ? 'http' : 'https';
      options.host = base.hostname;
      options.protocol = protocol;
      options.port = base.port || (protocol === 'http' ? 80 : 443);
    }
    const sdk = new Stripe(env.STRIPE_SECRET_KEY, options);
    // One metric per HTTP response (pagination included); network failures are counted in call().
    sdk.on('response', (event: Stripe.ResponseEvent) =>
      this.metrics.providerCalls.inc({ provider: PROVIDER, status: String(event.status) }),
    );
    this.sdk = sdk;
    return sdk;
  }

  private async call<T>(
    op: string,
    fn: (sdk: Stripe) => Promise<T>,
    budget: StripeBudget = 'shared',
  ): Promise<T> {
    const sdk = this.stripe();
    await this.acquireSlot(budget);
    try {
      return await fn(sdk);
    } catch (err) {
      const mapped = mapStripeError(err);
      // Responses (errors included) are counted by the 'response' listener; only failures
      // without a response are counted here.
      if (!(err instanceof Stripe.errors.StripeError) || err.type === 'StripeConnectionError') {
        this.metrics.providerCalls.inc({ provider: PROVIDER, status: 'error' });
      }
      this.logger.warn(
        { op, budget, err: mapped.message, retryAfterMs: (mapped as TransientError).retryAfterMs },
        'stripe call failed',
      );
      throw mapped;
    }
  }

  /**
   * Waits for the slots `budget` needs (never fails because of the limiter itself): reconciliation's
   * own limiter first, then the shared per-account one. In that order a reconciliation call waiting
   * for its own budget holds nothing of the shared allowance, so billing is never delayed by it.
   */
  private async acquireSlot(budget: StripeBudget): Promise<void> {
    const limiters = this.rateLimiters();
    const deadline = Date.now() + this.config.env.PROVIDER_TIMEOUT_MS;
    // Until the shared (Redis) limiter is connected, the per-process insurance limiter would
    // decide alone and a fresh process would get a second allowance: wait for the connection.
    await this.redisReady;
    if (budget === 'reconciliation') {
      await this.waitForSlot(limiters.reconciliation, 'reconciliation', deadline);
    }
    await this.waitForSlot(limiters.shared, 'shared', deadline);
  }

  private async waitForSlot(
    limiter: RateLimiterAbstract,
    budget: StripeBudget,
    deadline: number,
  ): Promise<void> {
    const key = this.limiterKey();
    for (;;) {
      try {
        await limiter.consume(key, 1);
        return;
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) {
          // Both Redis and the insurance limiter failed: proceed rather than block billing.
          this.logger.warn({ err: String(rejection), budget }, 'stripe rate limiter unavailable');
          return;
        }
        const wait = Math.max(rejection.msBeforeNext, 1) + Math.floor(Math.random() * 25);
        if (Date.now() + wait > deadline) {
          throw new TransientError(
            `stripe rate limiter${budget === 'shared' ? '' : ` (${budget})`}: no slot within ${this.config.env.PROVIDER_TIMEOUT_MS} ms`,
            wait,
          );
        }
        await sleep(wait);
      }
    }
  }

  private limiterKey(): string {
    // Per Stripe account: the key's hash, so hubs of different accounts sharing Redis don't collide.
    return sha256Hex(this.config.env.STRIPE_SECRET_KEY ?? '').slice(0, 16);
  }

  /**
   * The shared and the reconciliation limiters: the injected ones, else Redis-backed ones (one
   * connection) with a per-process insurance limiter each. An injected shared limiter without a
   * reconciliation one (tests, benchmarks) gets an in-process reconciliation limiter.
   */
  private rateLimiters(): Record<StripeBudget, RateLimiterAbstract> {
    if (this.limiters) return this.limiters;
    const env = this.config.env;
    const { shared, reconciliation } = this.injectedLimiters;
    if (shared) {
      this.limiters = {
        shared,
        reconciliation:
          reconciliation ??
          new RateLimiterMemory({
            keyPrefix: RECONCILIATION_KEY_PREFIX,
            points: env.STRIPE_RECONCILIATION_RATE_PER_SEC,
            duration: 1,
          }),
      };
      return this.limiters;
    }
    // No offline queue: while Redis is away a command fails at once and the insurance limiter
    // (per process) decides, instead of calls hanging in ioredis' queue.
    const redis = new Redis(env.REDIS_URL, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      disconnectTimeout: 500,
    });
    redis.on('error', (err: Error) => {
      if (Date.now() - this.lastRedisErrorLog < 60_000) return;
      this.lastRedisErrorLog = Date.now();
      this.logger.warn(
        { err: err.message },
        'stripe rate limiter: Redis unreachable, using the in-process limiter',
      );
    });
    this.redis = redis;
    this.redisReady = new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, 2_000);
      timer.unref();
      redis.once('ready', done);
    });
    const redisLimiter = (keyPrefix: string, points: number) =>
      new RateLimiterRedis({
        storeClient: redis,
        keyPrefix,
        points,
        duration: 1,
        insuranceLimiter: new RateLimiterMemory({
          keyPrefix: `${keyPrefix}:local`,
          points,
          duration: 1,
        }),
      });
    this.limiters = {
      shared: redisLimiter(RATE_LIMIT_KEY_PREFIX, env.STRIPE_RATE_LIMIT_PER_SEC),
      reconciliation:
        reconciliation ??
        redisLimiter(RECONCILIATION_KEY_PREFIX, env.STRIPE_RECONCILIATION_RATE_PER_SEC),
    };
    return this.limiters;
  }
}
