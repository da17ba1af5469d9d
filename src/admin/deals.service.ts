import { createHash } from 'node:crypto';

import { HttpException, HttpStatus, Injectable } from '@nestjs/common';
import { z } from 'zod';

import { Clock } from '../common/clock';
import { billability } from '../billing/billability';
import { parseBillingPlan } from '../billing/billing-plan';
import { MAX_AMOUNT } from '../domain/money';
import { BillingPlanService } from '../billing/billing-plan.service';
import { BillingService, itemBillingStatus } from '../billing/billing.service';
import { DomainException } from '../common/domain.exception';
import { newId } from '../common/ids';
import { Invoice, Prisma } from '../generated/prisma/client';
import { LifecycleContext, LifecycleService } from '../lifecycle/lifecycle.service';
import { CRM_TARGETS, DEAL_STAGES } from '../domain/deal-stage';
import { INVOICED_STATES } from '../domain/invoice-state';
import { addTimeline } from '../timeline/timeline';
import { dbAmount } from '../prisma/db-amount';
import { PrismaService } from '../prisma/prisma.service';
import { prismaErrorCode, PrismaErrorCode } from '../prisma/prisma-error';
import { AppConfig } from '../config/app-config';
import { attentionPage } from './attention';
import { AuditService } from './audit.service';
import { page, pageQuery } from './pagination';
import { Actor } from './tokens.service';

type Db = Prisma.TransactionClient;

const TX_OPTIONS = { timeout: 30_000, maxWait: 10_000 };

// ---- input ----------------------------------------------------------------------------------

export const dealsQuery = pageQuery.extend({
  /** Only the deals that need a person, each with its reasons (`attention`). */
  attention: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .transform((v) => v === 'true')
    .optional(),
  stage: z.enum(DEAL_STAGES).optional(),
  crmDealId: z.string().trim().min(1).optional(),
  referralId: z.string().trim().min(1).optional(),
  /** Any of the deal's ids: hub, CRM, envelope, Stripe invoice id or number, referral. */
  q: z.string().trim().min(1).max(200).optional(),
});
export type DealsQuery = z.output<typeof dealsQuery>;

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export const createDealBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  customer: z
    .strictObject({
      company: z.string().trim().min(1).max(200).optional(),
      contactName: z.string().trim().min(1).max(200).optional(),
      email: z.email().max(320).optional(),
    })
    .optional(),
  currency: z
    .string()
    .regex(/^[A-Za-z]{3}$/, { error: 'must be a 3-letter ISO 4217 currency code' })
    .transform((c) => c.toLowerCase())
    .optional(),
  amount: z
    .number()
    .int({ error: "must be an integer in the currency's smallest unit" })
    .positive()
    .max(MAX_AMOUNT, { error: `must be at most ${MAX_AMOUNT} (the largest amount the hub takes)` })
    .optional(),
  crmDealId: z.string().trim().min(1).max(100).optional(),
  timeZone: z
    .string()
    .refine(isTimeZone, { error: 'must be an IANA time zone such as Asia/Tokyo' })
    .optional(),
  stage: z.enum(CRM_TARGETS).optional(),
  /** CONTRACT §4 JSON; validated by the billing plan parser (its errors name json paths). */
  billingPlan: z.unknown().optional(),
});
export type CreateDealBody = z.output<typeof createDealBody>;

export const idempotencyKeyHeader = z
  .string()
  .trim()
  .min(1, { error: 'Idempotency-Key must not be empty' })
  .max(255, { error: 'Idempotency-Key must be at most 255 characters' });

// ---- errors ---------------------------------------------------------------------------------

/** 400 naming every problem of a refused billing plan (`error.details` lists them one by one). */
export class PlanRejected extends HttpException {
  constructor(readonly errors: string[]) {
    super(
      {
        error: {
          code: 'INVALID_BILLING_PLAN',
          message: `billing plan refused: ${errors.join('; ')}`,
          details: errors,
        },
      },
      HttpStatus.BAD_REQUEST,
    );
  }
}

const notFound = (what: string, id: string) =>
  new DomainException(HttpStatus.NOT_FOUND, 'NOT_FOUND', `${what} ${id} not found`);

// ---- output ---------------------------------------------------------------------------------

type InvoiceRow = Pick<
  Invoice,
  | 'billingKey'
  | 'itemKey'
  | 'period'
  | 'rebill'
  | 'state'
  | 'amount'
  | 'taxAmount'
  | 'total'
  | 'amountPaid'
  | 'currency'
  | 'stripeInvoiceId'
  | 'stripeNumber'
  | 'hostedInvoiceUrl'
  | 'invoicePdfUrl'
  | 'lastError'
  | 'createdAt'
  | 'postedAt'
  | 'paidAt'
  | 'voidedAt'
>;

const INVOICE_FIELDS = {
  billingKey: true,
  itemKey: true,
  period: true,
  rebill: true,
  state: true,
  amount: true,
  taxAmount: true,
  total: true,
  amountPaid: true,
  currency: true,
  stripeInvoiceId: true,
  stripeNumber: true,
  hostedInvoiceUrl: true,
  invoicePdfUrl: true,
  lastError: true,
  createdAt: true,
  postedAt: true,
  paidAt: true,
  voidedAt: true,
} as const;

const LIST_FIELDS = {
  id: true,
  name: true,
  stage: true,
  source: true,
  crmDealId: true,
  referralPlatform: true,
  referralId: true,
  currency: true,
  amount: true,
  customerName: true,
  companyName: true,
  contactName: true,
  customerEmail: true,
  createdAt: true,
  updatedAt: true,
} as const;

export interface BillingSummary {
  /** Invoices that exist in Stripe and are not void (CREATED, POSTED, PAID): count and amount excl. tax. */
  invoicedCount: number;
  invoicedAmount: number;
  paidCount: number;
  /** What Stripe reported as paid (incl. tax). */
  paidAmount: number;
  voidCount: number;
  /** Billing keys taken but not yet in Stripe (PENDING, CREATING). */
  pendingCount: number;
}

export function billingSummary(invoices: Pick<Invoice, 'state' | 'amount' | 'amountPaid'>[]) {
  const s: BillingSummary = {
    invoicedCount: 0,
    invoicedAmount: 0,
    paidCount: 0,
    paidAmount: 0,
    voidCount: 0,
    pendingCount: 0,
  };
  for (const inv of invoices) {
    if (INVOICED_STATES.includes(inv.state)) {
      s.invoicedCount++;
      s.invoicedAmount += dbAmount(inv.amount);
    }
    if (inv.state === 'PAID') {
      s.paidCount++;
      s.paidAmount += dbAmount(inv.amountPaid);
    }
    if (inv.state === 'VOID' || inv.state === 'UNCOLLECTIBLE') s.voidCount++;
    if (inv.state === 'PENDING' || inv.state === 'CREATING') s.pendingCount++;
  }
  return s;
}

function customerOf(d: {
  customerName: string | null;
  companyName: string | null;
  contactName: string | null;
  customerEmail: string | null;
}) {
  return {
    name: d.customerName,
    company: d.companyName,
    contactName: d.contactName,
    email: d.customerEmail,
  };
}

function invoiceView(i: InvoiceRow) {
  return {
    billingKey: i.billingKey,
    period: i.period,
    rebill: i.rebill,
    state: i.state,
    amount: dbAmount(i.amount),
    taxAmount: dbAmount(i.taxAmount),
    total: dbAmount(i.total),
    amountPaid: dbAmount(i.amountPaid),
    currency: i.currency,
    stripeInvoiceId: i.stripeInvoiceId,
    stripeNumber: i.stripeNumber,
    hostedInvoiceUrl: i.hostedInvoiceUrl,
    invoicePdfUrl: i.invoicePdfUrl,
    lastError: i.lastError,
    createdAt: i.createdAt,
    postedAt: i.postedAt,
    paidAt: i.paidAt,
    voidedAt: i.voidedAt,
  };
}

/** Canonical JSON (object keys sorted at every level): equal bodies hash equal whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** What the controller answers: the status, the JSON body, and whether it is a stored replay. */
export interface StoredReply {
  status: number;
  body: unknown;
  replayed: boolean;
}

/**
 * Deals as the admin API sees them (CONTRACT §6): list, detail, creation (with Idempotency-Key),
 * billing plan changes and the explicit re-bill of a voided item. Every change runs in one
 * transaction with the deal's row locked, through the lifecycle (settle) and billing services.
 */
/** A deal's detail shows its newest timeline entries and events, oldest first, up to these. */
const DETAIL_TIMELINE = 500;
const DETAIL_EVENTS = 200;

@Injectable()
export class DealsService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly lifecycle: LifecycleService,
    private readonly plans: BillingPlanService,
    private readonly billing: BillingService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly config: AppConfig,
  ) {}

  // ---- reads ----------------------------------------------------------------------------------

  async list(q: DealsQuery) {
    if (q.attention) return this.attentionList(q);
    const and: Prisma.DealWhereInput[] = [];
    if (q.stage) and.push({ stage: q.stage });
    if (q.crmDealId) and.push({ crmDealId: q.crmDealId });
    if (q.referralId) and.push({ referralId: q.referralId });
    if (q.cursor) and.push({ id: { lt: q.cursor } });
    if (q.q) {
      const v = q.q;
      and.push({
        OR: [
          { id: v },
          { crmDealId: v },
          { referralId: v },
          { contract: { is: { envelopeId: v } } },
          { invoices: { some: { OR: [{ stripeInvoiceId: v }, { stripeNumber: v }] } } },
        ],
      });
    }
    const rows = await this.prisma.deal.findMany({
      where: and.length ? { AND: and } : {},
      select: LIST_FIELDS,
      orderBy: { id: 'desc' },
      take: q.limit + 1,
    });
    const { items, nextCursor } = page(rows, q.limit);
    return { items: await this.listItems(items), nextCursor };
  }

  /**
   * The deals that need a person (CONTRACT §6), newest first, each with `attention`: its reasons
   * (src/admin/attention.ts). `stage` narrows it; the id filters (q, crmDealId, referralId) name
   * one deal and do not combine with it.
   */
  private async attentionList(q: DealsQuery) {
    if (q.q || q.crmDealId || q.referralId) {
      throw new DomainException(
        HttpStatus.BAD_REQUEST,
        'VALIDATION_FAILED',
        'attention: lists every deal that needs a person; it combines with stage, limit and cursor only (not q, crmDealId or referralId)',
      );
    }
    const { dealIds, nextCursor, entries } = await attentionPage(this.prisma, q, {
      graceMs: this.config.env.RECOVERY_GRACE_MS,
    });
    const rows = await this.prisma.deal.findMany({
      where: { id: { in: dealIds } },
      select: LIST_FIELDS,
      orderBy: { id: 'desc' },
    });
    const items = await this.listItems(rows);
    return {
      items: items.map((d) => ({ ...d, attention: entries.get(d.id) ?? [] })),
      nextCursor,
    };
  }

  /** List items with their billing summaries, in the order given. */
  private async listItems(items: Prisma.DealGetPayload<{ select: typeof LIST_FIELDS }>[]) {
    const invoices = items.length
      ? await this.prisma.invoice.findMany({
          where: { dealId: { in: items.map((d) => d.id) } },
          select: { dealId: true, state: true, amount: true, amountPaid: true },
        })
      : [];
    return items.map((d) => ({
      id: d.id,
      name: d.name,
      stage: d.stage,
      source: d.source,
      crmDealId: d.crmDealId,
      referral: d.referralId ? { platform: d.referralPlatform, id: d.referralId } : null,
      currency: d.currency,
      amount: dbAmount(d.amount),
      customer: customerOf(d),
      createdAt: d.createdAt,
      updatedAt: d.updatedAt,
      billing: billingSummary(invoices.filter((i) => i.dealId === d.id)),
    }));
  }

  async get(id: string) {
    const detail = await this.detail(this.prisma, id);
    if (!detail) throw notFound('deal', id);
    return detail;
  }

  /** The deal with its plan, items (billing status, invoices), contract, timeline and events. */
  async detail(db: Db, id: string) {
    const deal = await db.deal.findUnique({
      where: { id },
      include: {
        items: { orderBy: [{ position: 'asc' }, { createdAt: 'asc' }] },
        invoices: {
          select: INVOICE_FIELDS,
          orderBy: [{ createdAt: 'asc' }, { billingKey: 'asc' }],
        },
        contract: true,
        // A deal under a burst can have thousands: the newest are shown, the totals say so.
        timeline: { orderBy: { id: 'desc' }, take: DETAIL_TIMELINE },
        _count: { select: { timeline: true } },
        referral: true,
        reports: { orderBy: [{ occurredAt: 'asc' }, { id: 'asc' }] },
      },
    });
    if (!deal) return undefined;
    const [newestEvents, eventsTotal] = await Promise.all([
      db.webhookEvent.findMany({
        where: { dealId: id },
        select: {
          id: true,
          provider: true,
          providerEventId: true,
          type: true,
          status: true,
          receivedAt: true,
        },
        orderBy: { id: 'desc' },
        take: DETAIL_EVENTS,
      }),
      db.webhookEvent.count({ where: { dealId: id } }),
    ]);
    const events = newestEvents.reverse();
    const items = deal.items
      // Placeholders for facts about keys no plan has named yet are kept but are not plan items.
      .filter((i) => !(i.removed && i.addedBy === 'event'))
      .map((i) => {
        const mine = deal.invoices.filter((inv) => inv.itemKey === i.key);
        return {
          key: i.key,
          label: i.label,
          trigger: i.trigger,
          amount: dbAmount(i.amount),
          percent: i.percent,
          taxRatePercent: i.taxRatePercent,
          expectedInvoiceDate: i.expectedInvoiceDate,
          startOn: i.startOn,
          months: i.months,
          addedBy: i.addedBy,
          silentApproval: i.silentApproval,
          acceptanceDays: i.acceptanceDays,
          submittedAt: i.submittedAt,
          acceptanceDueAt: i.acceptanceDueAt,
          acceptedAt: i.acceptedAt,
          acceptedBy: i.acceptedBy,
          rejectedAt: i.rejectedAt,
          rejectionReason: i.rejectionReason,
          progressPercent: i.progressPercent,
          billedPercent: i.billedPercent,
          removed: i.removed,
          billingStatus: itemBillingStatus(mine),
          invoices: mine.map(invoiceView),
        };
      });
    return {
      id: deal.id,
      name: deal.name,
      stage: deal.stage,
      version: deal.version,
      source: deal.source,
      crmDealId: deal.crmDealId,
      crmPipeline: deal.crmPipeline,
      crmStage: deal.crmStage,
      referral: deal.referralId
        ? {
            platform: deal.referralPlatform,
            id: deal.referralId,
            ...(deal.referral
              ? {
                  referralId: deal.referral.id,
                  state: deal.referral.state,
                  title: deal.referral.title,
                  respondBy: deal.referral.respondBy,
                  clockRule: deal.referral.clockRule,
                  platformStatus: deal.referral.platformStatus,
                  platformSubstatus: deal.referral.platformSubstatus,
                }
              : {}),
          }
        : null,
      reports: deal.reports.map((r) => ({
        id: r.id,
        kind: r.kind,
        platform: r.platform,
        channel: r.channel,
        status: r.status,
        occurredAt: r.occurredAt,
        dueAt: r.dueAt,
        deliveredAt: r.deliveredAt,
        attempts: r.attempts,
        lastError: r.lastError,
        billingKey: r.billingKey,
        amountExTax: dbAmount(r.amountExTax),
        fields: r.fields,
      })),
      customer: customerOf(deal),
      currency: deal.currency,
      amount: dbAmount(deal.amount),
      timeZone: deal.timeZone,
      stripeCustomerId: deal.stripeCustomerId,
      wonAt: deal.wonAt,
      deliveredAt: deal.deliveredAt,
      deliveredOn: deal.deliveredOn,
      closedAt: deal.closedAt,
      lostAt: deal.lostAt,
      createdAt: deal.createdAt,
      updatedAt: deal.updatedAt,
      plan: deal.billingPlan,
      planError: deal.planError,
      /** Whether a valid plan is in force; else why not ("plan refused (…)", "no billing plan"). */
      billable: billability(deal),
      billing: billingSummary(deal.invoices),
      items,
      contract: deal.contract
        ? {
            envelopeId: deal.contract.envelopeId,
            status: deal.contract.status,
            attempts: deal.contract.attempts,
            lastError: deal.contract.lastError,
            sentAt: deal.contract.sentAt,
            completedAt: deal.contract.completedAt,
            endedAt: deal.contract.endedAt,
          }
        : null,
      jobAttempts: await this.jobAttemptsOf(
        db,
        id,
        events.map((e) => e.id),
      ),
      timelineTotal: deal._count.timeline,
      eventsTotal,
      timeline: [...deal.timeline].reverse().map((t) => ({
        at: t.at,
        kind: t.kind,
        message: t.message,
        cause: t.cause,
        eventId: t.eventId,
        fromStage: t.fromStage,
        toStage: t.toStage,
        details: t.details,
      })),
      events,
    };
  }

  /**
   * Every job run for the deal, newest last: its events' processing and the jobs whose data name
   * the deal (invoices, envelope, CRM write-back, report deliveries) — with outcome and error, so
   * a failing provider call shows on the deal even while it is still being retried.
   */
  private async jobAttemptsOf(db: Db, dealId: string, eventIds: string[]) {
    const rows = await db.jobAttempt.findMany({
      where: { OR: [{ eventId: { in: eventIds } }, { dealId }] },
      orderBy: { id: 'desc' },
      take: 200,
    });
    return rows.reverse().map((a) => ({
      at: a.finishedAt,
      queue: a.queue,
      jobName: a.jobName,
      jobId: a.jobId,
      eventId: a.eventId,
      attempt: a.attempt,
      outcome: a.outcome,
      error: a.error,
      durationMs: a.durationMs,
    }));
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
            'DEAL_EXISTS',
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
          'DEAL_EXISTS',
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
          'NOT_VOID',
          `item ${itemKey} is ${status}${latest ? ` (invoice ${latest.stripeNumber ?? latest.stripeInvoiceId ?? latest.billingKey} is ${latest.state})` : ''}: only an item whose latest invoice is void or uncollectible can be re-billed`,
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

function replay(
  stored: { requestHash: string; status: number; response: unknown },
  requestHash: string,
  header: string,
): StoredReply {
  if (stored.requestHash !== requestHash) {
    throw new DomainException(
      HttpStatus.UNPROCESSABLE_ENTITY,
      'IDEMPOTENCY_KEY_REUSED',
      `Idempotency-Key "${header}" was already used with a different request body`,
    );
  }
  return { status: stored.status, body: stored.response, replayed: true };
}
