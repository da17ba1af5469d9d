import { HttpStatus, Injectable } from '@nestjs/common';

import { Clock } from '../common/clock';
import { parseBillingPlan } from '../billing/billing-plan';
import { BillingPlanService } from '../billing/billing-plan.service';
import { BillingService, itemBillingStatus } from '../billing/billing.service';
import { DomainException } from '../common/domain.exception';
import { AdminErrorCode } from './admin-error-code';
import { CommonErrorCode } from '../common/error-code';
import { newId } from '../common/ids';
import { Prisma } from '../generated/prisma/client';
import { LifecycleContext, LifecycleService } from '../lifecycle/lifecycle.service';
import { addTimeline } from '../timeline/timeline';
import { PrismaService } from '../prisma/prisma.service';
import { prismaErrorCode, PrismaErrorCode } from '../common/prisma-error';
import { AppConfig } from '../config/app-config';
import { AuditService } from './audit.service';
import { StoredReply, canonicalJson, replay, sha256 } from './deal-idempotency';
import { DealQueries } from './deal-queries';
import { CreateDealBody, DealsQuery, PlanRejected } from './deals.dto';
import { Actor } from './tokens.service';

export {
  createDealBody,
  dealsQuery,
  idempotencyKeyHeader,
  PlanRejected,
  type CreateDealBody,
  type DealsQuery,
} from './deals.dto';
export { billingSummary, type BillingSummary } from './deal-views';
export { canonicalJson, type StoredReply } from './deal-idempotency';

type Db = Prisma.TransactionClient;

const TX_OPTIONS = { timeout: 30_000, maxWait: 10_000 };

const notFound = (what: string, id: string) =>
  new DomainException(HttpStatus.NOT_FOUND, CommonErrorCode.NotFound, `${what} ${id} not found`);

/**
 * Deals as the admin API sees them (CONTRACT §6): list, detail, creation (with Idempotency-Key),
 * billing plan changes and the explicit re-bill of a voided item. Every change runs in one
 * transaction with the deal's row locked, through the lifecycle (settle) and billing services.
 */
@Injectable()
export class DealsService {
  private readonly queries: DealQueries;

  constructor(
    private readonly prisma: PrismaService,
    private readonly lifecycle: LifecycleService,
    private readonly plans: BillingPlanService,
    private readonly billing: BillingService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    config: AppConfig,
  ) {
    this.queries = new DealQueries(prisma, config);
  }

  // ---- reads (deal-queries.ts) ----------------------------------------------------------------

  list(q: DealsQuery) {
    return this.queries.list(q);
  }

  async get(id: string) {
    const detail = await this.detail(this.prisma, id);
    if (!detail) throw notFound('deal', id);
    return detail;
  }

  /** The deal with its plan, items (billing status, invoices), contract, timeline and events. */
  detail(db: Db, id: string) {
    return this.queries.detail(db, id);
  }

  // ---- create ---------------------------------------------------------------------------------

  /**
   * Creates a deal (CONTRACT §6). With an Idempotency-Key the reply is stored in the creating
   * transaction: a repeat with the same body replays it, another body is refused with 422, and
   * concurrent requests with one key create one deal (the key's row serialises them).
   */
  async create(
    body: CreateDealBody,
    rawBody: unknown,
    idempotencyKey: string | undefined,
    actor: Actor | undefined,
    correlationId: string,
  ): Promise<StoredReply> {
    const currency = body.currency ?? planCurrency(body.billingPlan) ?? 'jpy';
    if (body.billingPlan !== undefined) {
      // Checked before anything is written: a refused plan creates nothing.
      const parsed = parseBillingPlan(body.billingPlan, { dealAmount: body.amount, currency });
      if (!parsed.ok) throw new PlanRejected(parsed.errors);
    }
    const key = idempotencyKey === undefined ? undefined : `deals:${idempotencyKey}`;
    const requestHash = sha256(canonicalJson(rawBody));
    if (key) {
      const stored = await this.prisma.idempotencyRecord.findUnique({ where: { key } });
      if (stored && stored.status !== 0) return replay(stored, requestHash, idempotencyKey!);
    }
    try {
      return await this.prisma.$transaction(async (tx) => {
        if (key) {
          // Claims the key; a concurrent claimer waits here until this transaction ends, then
          // finds the stored reply.
          const claimed = await tx.$queryRaw<{ key: string }[]>`
            INSERT INTO idempotency_record (key, request_hash, status, response)
            VALUES (${key}, ${requestHash}, 0, '{}'::jsonb)
            ON CONFLICT (key) DO NOTHING RETURNING key`;
          if (claimed.length === 0) {
            const stored = await tx.idempotencyRecord.findUniqueOrThrow({ where: { key } });
            return replay(stored, requestHash, idempotencyKey!);
          }
        }
        const reply = await this.createInTx(tx, body, currency, actor, correlationId);
        if (key) {
          await tx.idempotencyRecord.update({
            where: { key },
            data: { status: 201, response: reply as Prisma.InputJsonValue },
          });
        }
        return { status: 201, body: reply, replayed: false };
      }, TX_OPTIONS);
    } catch (err) {
      if (prismaErrorCode(err) === PrismaErrorCode.UniqueConstraint) {
        const target = JSON.stringify((err as { meta?: unknown }).meta ?? '');
        if (key && !target.includes('crm_deal_id') && !target.includes('crmDealId')) {
          // Lost a race on the key outside the ON CONFLICT path: the winner's reply is stored.
          const stored = await this.prisma.idempotencyRecord.findUnique({ where: { key } });
          if (stored && stored.status !== 0) return replay(stored, requestHash, idempotencyKey!);
        }
        if (body.crmDealId) {
          throw new DomainException(
            HttpStatus.CONFLICT,
            AdminErrorCode.DealExists,
            `a deal with CRM id ${body.crmDealId} already exists`,
          );
        }
      }
      throw err;
    }
  }

  private async createInTx(
    tx: Db,
    body: CreateDealBody,
    currency: string,
    actor: Actor | undefined,
    correlationId: string,
  ) {
    if (body.crmDealId) {
      const clash = await tx.deal.findUnique({
        where: { crmDealId: body.crmDealId },
        select: { id: true },
      });
      if (clash) {
        throw new DomainException(
          HttpStatus.CONFLICT,
          AdminErrorCode.DealExists,
          `deal ${clash.id} already has CRM id ${body.crmDealId}`,
        );
      }
    }
    const id = newId('cl_deal');
    const cause = `admin ${actor?.name ?? 'system'}`;
    const ctx: LifecycleContext = { cause, correlationId };
    const c = body.customer;
    const deal = await tx.deal.create({
      data: {
        id,
        name: body.name,
        // The stage is the fold of the deal's triggers from REFERRED; settle() moves it below.
        stage: 'REFERRED',
        source: 'admin',
        crmDealId: body.crmDealId ?? null,
        customerName: c?.company ?? c?.contactName ?? null,
        companyName: c?.company ?? null,
        contactName: c?.contactName ?? null,
        customerEmail: c?.email ?? null,
        currency,
        amount: body.amount ?? null,
        timeZone: body.timeZone ?? null,
      },
    });
    await addTimeline(tx, {
      dealId: id,
      kind: 'admin',
      message: `deal created through the admin API${body.stage ? ` in stage ${body.stage}` : ''}`,
      cause,
    });
    if (body.billingPlan !== undefined) {
      const outcome = await this.plans.applyPlan(tx, deal, body.billingPlan, ctx);
      if (!outcome.ok) throw new PlanRejected(outcome.errors);
    }
    if (body.stage) {
      await tx.stageTrigger.create({
        data: {
          dealId: id,
          at: this.clock.now(),
          type: 'crm.stage',
          target: body.stage,
          eventId: null,
          cause,
        },
      });
    }
    await this.lifecycle.settle(tx, id, ctx);
    await this.audit.record(tx, actor, 'deal.create', id, {
      name: body.name,
      stage: body.stage ?? null,
      crmDealId: body.crmDealId ?? null,
      plan: body.billingPlan !== undefined,
    });
    const detail = await this.detail(tx, id);
    // The JSON form: what is stored for replays is byte-for-byte what the first caller got.
    return JSON.parse(JSON.stringify(detail)) as Record<string, unknown>;
  }

  // ---- billing plan ---------------------------------------------------------------------------

  async replacePlan(id: string, plan: unknown, actor: Actor | undefined, correlationId: string) {
    const detail = await this.prisma.$transaction(async (tx) => {
      const exists = await tx.deal.findUnique({ where: { id }, select: { id: true } });
      if (!exists) throw notFound('deal', id);
      const deal = await this.lifecycle.lockDeal(tx, id);
      const cause = `admin ${actor?.name ?? 'system'}`;
      const ctx: LifecycleContext = { cause, correlationId };
      const outcome = await this.plans.applyPlan(tx, deal, plan, ctx);
      // Refused: the transaction rolls back, so the deal keeps its plan and nothing is recorded.
      if (!outcome.ok) throw new PlanRejected(outcome.errors);
      await this.lifecycle.settle(tx, id, ctx);
      await this.audit.record(tx, actor, 'deal.billing_plan', id, { items: outcome.items });
      return this.detail(tx, id);
    }, TX_OPTIONS);
    return detail!;
  }

  // ---- re-bill --------------------------------------------------------------------------------

  /**
   * The explicit admin re-bill of an item whose latest invoice is void or uncollectible
   * (CONTRACT §4). With `period` (monthly / progress items) the latest invoice of that period.
   */
  async rebill(
    id: string,
    itemKey: string,
    period: string | undefined,
    actor: Actor | undefined,
    correlationId: string,
  ): Promise<{ billingKey: string; replaces: string }> {
    return this.prisma.$transaction(async (tx) => {
      const exists = await tx.deal.findUnique({ where: { id }, select: { id: true } });
      if (!exists) throw notFound('deal', id);
      const deal = await this.lifecycle.lockDeal(tx, id);
      const item = await tx.billingItem.findUnique({
        where: { dealId_key: { dealId: id, key: itemKey } },
      });
      if (!item || (item.removed && item.addedBy === 'event')) {
        throw notFound(`item ${itemKey} of deal`, id);
      }
      const invoices = await tx.invoice.findMany({
        where: { dealId: id, itemKey, ...(period ? { period } : {}) },
        orderBy: [{ createdAt: 'desc' }, { rebill: 'desc' }],
      });
      const latest = invoices[0];
      if (!latest || (latest.state !== 'VOID' && latest.state !== 'UNCOLLECTIBLE')) {
        const status = itemBillingStatus(invoices);
        throw new DomainException(
          HttpStatus.CONFLICT,
          AdminErrorCode.NotVoid,
          `item ${itemKey} is ${status}${latest ? ` (invoice ${latest.invoiceNumber ?? latest.providerInvoiceId ?? latest.billingKey} is ${latest.state})` : ''}: only an item whose latest invoice is void or uncollectible can be re-billed`,
        );
      }
      const cause = `admin ${actor?.name ?? 'system'}`;
      const billingKey = await this.billing.rebill(tx, deal, item, latest, {
        cause,
        correlationId,
      });
      await tx.deal.update({ where: { id }, data: { version: { increment: 1 } } });
      await this.audit.record(tx, actor, 'deal.item.rebill', id, {
        itemKey,
        billingKey,
        replaces: latest.billingKey,
      });
      return { billingKey, replaces: latest.billingKey };
    }, TX_OPTIONS);
  }
}

function planCurrency(plan: unknown): string | undefined {
  let value = plan;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  const c = (value as { currency?: unknown } | null)?.currency;
  return typeof c === 'string' && /^[A-Za-z]{3}$/.test(c) ? c.toLowerCase() : undefined;
}
