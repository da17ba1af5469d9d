import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { Clock } from '../common/clock';
import { PermanentError } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { StripeClient } from '../connectors/stripe/stripe.client';
import { StripeInvoiceView } from '../connectors/stripe/stripe.types';
import { Deal, InvoiceState, Prisma } from '../generated/prisma/client';
import { MetricsService } from '../health/metrics.service';
import { addTimeline } from '../lifecycle/timeline';
import { dbAmount } from '../prisma/db-amount';
import { PrismaService } from '../prisma/prisma.service';
import { JobOutcomeKind } from '../queue/job-handler.decorator';
import { JobName } from '../queue/job-name.enum';
import { OutboxService } from '../queue/outbox/outbox.service';
import { SerializationLockService } from '../queue/serialization-lock.service';
import { ReportService } from '../reporting/report.service';
import { OPEN_INVOICE_STATES } from './due-not-issued';
import { formatMoney } from './money';

interface InvoiceRow {
  id: string;
  billing_key: string;
  deal_id: string;
  item_key: string;
  /** BIGINT: raw SQL returns a bigint, claim() turns it into a number (dbAmount). */
  amount: number;
  tax_rate_percent: number;
  currency: string;
  description: string;
  state: InvoiceState;
  stripe_attempts: number;
  stripe_invoice_id: string | null;
}

/** States in which the issuer still has Stripe work to do. */
const OPEN = OPEN_INVOICE_STATES;

/**
 * Makes the Stripe invoice of one billing key exactly once (docs/decisions/0004):
 *  1. a session advisory lock on the key: one attempt at a time across every worker, released by
 *     Postgres if the process dies;
 *  2. the invoice row (unique billing key) locked FOR UPDATE while the attempt is recorded, so a
 *     later attempt knows an earlier one may have reached Stripe (state CREATING, attempts > 0);
 *  3. deterministic Stripe idempotency keys derived from the billing key on every POST, so a
 *     retry of a call whose answer was lost returns the first result (for 24 h);
 *  4. when an earlier attempt's outcome is unknown, a Stripe search by closeloop_billing_key
 *     before creating, which still finds it after the idempotency keys expired.
 */
@Injectable()
export class InvoiceIssuer {
  constructor(
    private readonly prisma: PrismaService,
    private readonly stripe: StripeClient,
    private readonly lock: SerializationLockService,
    private readonly outbox: OutboxService,
    private readonly metrics: MetricsService,
    private readonly config: AppConfig,
    private readonly reports: ReportService,
    private readonly clock: Clock,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(InvoiceIssuer.name);
  }

  async issue(billingKey: string, correlationId: string): Promise<JobOutcomeKind> {
    return this.lock.withLock(`bill:${billingKey}`, async () => {
      const claim = await this.claim(billingKey);
      if (!claim) return 'SKIPPED';
      const { row, earlierAttempt } = claim;
      const deal = await this.prisma.deal.findUniqueOrThrow({ where: { id: row.deal_id } });
      const customerId = await this.ensureCustomer(deal, earlierAttempt);

      let invoice: StripeInvoiceView | undefined;
      if (row.stripe_invoice_id) {
        invoice = await this.stripe.retrieveInvoice(row.stripe_invoice_id);
      } else if (earlierAttempt) {
        // An earlier attempt reached Stripe and we never heard back (crash, dropped connection):
        // its idempotency key answers for 24 h, the search for ever after.
        invoice = this.pickExisting(
          billingKey,
          await this.stripe.findInvoicesByBillingKey(billingKey),
        );
        if (invoice) {
          this.logger.info(
            { billingKey, invoice: invoice.id },
            'adopted invoice of an earlier attempt',
          );
        }
      }
      if (!invoice) {
        invoice = await this.stripe.createDraftInvoice({
          billingKey,
          customerId,
          currency: row.currency,
          description: row.description,
          daysUntilDue: this.config.env.STRIPE_DAYS_UNTIL_DUE,
          metadata: {
            closeloop_deal_id: row.deal_id,
            closeloop_item_key: row.item_key,
            closeloop_billing_key: billingKey,
          },
        });
        this.metrics.invoiceCreated(row.currency);
      }
      await this.recordCreated(row, invoice, customerId);

      if (invoice.status === 'draft' && invoice.lineCount === 0) {
        const taxRateId =
          row.tax_rate_percent > 0
            ? await this.stripe.ensureTaxRate(row.tax_rate_percent)
            : undefined;
        invoice = await this.stripe.addInvoiceLine({
          billingKey,
          customerId: invoice.customer,
          invoiceId: invoice.id,
          amount: row.amount,
          currency: row.currency,
          description: row.description,
          taxRateId,
        });
      }
      if (invoice.status === 'draft')
        invoice = await this.stripe.finalizeInvoice(billingKey, invoice.id);
      if (invoice.status === 'open')
        invoice = await this.stripe.sendInvoice(billingKey, invoice.id);
      await this.recordPosted(row, invoice, correlationId, deal);
      return 'SUCCEEDED';
    });
  }

  /** Takes the billing key under its row lock and records that a Stripe attempt begins. */
  private async claim(
    billingKey: string,
  ): Promise<{ row: InvoiceRow; earlierAttempt: boolean } | undefined> {
    return this.prisma.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<(Omit<InvoiceRow, 'amount'> & { amount: bigint })[]>`
        SELECT id, billing_key, deal_id, item_key, amount, tax_rate_percent, currency, description,
               state, stripe_attempts, stripe_invoice_id
        FROM invoice WHERE billing_key = ${billingKey} FOR UPDATE`;
      if (!rows[0]) throw new PermanentError(`billing key ${billingKey} does not exist`);
      const row: InvoiceRow = { ...rows[0], amount: dbAmount(rows[0].amount) };
      if (!OPEN.includes(row.state)) return undefined;
      await tx.$executeRaw`
        UPDATE invoice SET stripe_attempts = stripe_attempts + 1, updated_at = now(),
               state = CASE WHEN state = 'PENDING' THEN 'CREATING'::"InvoiceState" ELSE state END
        WHERE id = ${row.id}`;
      return { row, earlierAttempt: row.stripe_attempts > 0 };
    });
  }

  /** One Stripe customer per deal customer, remembered on the deal. */
  private async ensureCustomer(deal: Deal, earlierAttempt: boolean): Promise<string> {
    if (deal.stripeCustomerId) return deal.stripeCustomerId;
    const id = await this.stripe.ensureCustomer(
      {
        customerKey: deal.id,
        dealId: deal.id,
        email: deal.customerEmail ?? undefined,
        name: deal.companyName ?? deal.customerName ?? deal.name,
      },
      { searchFirst: earlierAttempt },
    );
    await this.prisma.deal.updateMany({
      where: { id: deal.id, stripeCustomerId: null },
      data: { stripeCustomerId: id },
    });
    const stored = await this.prisma.deal.findUniqueOrThrow({
      where: { id: deal.id },
      select: { stripeCustomerId: true },
    });
    return stored.stripeCustomerId ?? id;
  }

  /** Of the invoices Stripe has for a billing key, the one to carry on with. */
  private pickExisting(
    billingKey: string,
    found: StripeInvoiceView[],
  ): StripeInvoiceView | undefined {
    if (found.length > 1) {
      this.logger.error(
        { billingKey, invoices: found.map((i) => i.id) },
        'Stripe holds more than one invoice for a billing key; reconciliation will name it',
      );
    }
    return found.find((i) => i.status !== 'void') ?? found[0];
  }

  private async recordCreated(row: InvoiceRow, invoice: StripeInvoiceView, customerId: string) {
    if (row.stripe_invoice_id === invoice.id) return;
    await this.prisma.$transaction(async (tx) => {
      await tx.invoice.updateMany({
        where: { id: row.id, stripeInvoiceId: null },
        data: { stripeInvoiceId: invoice.id, stripeCustomerId: customerId },
      });
      await tx.invoice.updateMany({
        where: { id: row.id, state: { in: ['PENDING', 'CREATING'] } },
        data: { state: 'CREATED' },
      });
      await addTimeline(tx, {
        dealId: row.deal_id,
        kind: 'billing',
        message: `Stripe invoice ${invoice.id} created for ${row.item_key}: ${formatMoney(row.amount, row.currency)} excl. tax`,
        cause: `billing ${row.billing_key}`,
        details: { billingKey: row.billing_key, stripeInvoiceId: invoice.id },
      });
    });
  }

  private async recordPosted(
    row: InvoiceRow,
    invoice: StripeInvoiceView,
    correlationId: string,
    deal: Pick<Deal, 'crmDealId' | 'referralId'>,
  ) {
    const state: InvoiceState =
      invoice.status === 'paid'
        ? 'PAID'
        : invoice.status === 'void'
          ? 'VOID'
          : invoice.status === 'uncollectible'
            ? 'UNCOLLECTIBLE'
            : 'POSTED';
    await this.prisma.$transaction(async (tx) => {
      const current = await tx.invoice.findUniqueOrThrow({ where: { id: row.id } });
      const advance =
        OPEN.includes(current.state) || (current.state === 'POSTED' && state !== 'POSTED');
      await tx.invoice.update({
        where: { id: row.id },
        data: {
          ...(advance ? { state } : {}),
          stripeNumber: invoice.number ?? current.stripeNumber,
          hostedInvoiceUrl: invoice.hostedInvoiceUrl ?? current.hostedInvoiceUrl,
          invoicePdfUrl: invoice.invoicePdf ?? current.invoicePdfUrl,
          total: invoice.total,
          taxAmount: invoice.tax,
          postedAt: current.postedAt ?? this.clock.now(),
          lastError: null,
        },
      });
      if (invoice.subtotal !== row.amount) {
        await addTimeline(tx, {
          dealId: row.deal_id,
          kind: 'billing',
          message: `Stripe invoice ${invoice.number ?? invoice.id} is for ${formatMoney(invoice.subtotal, row.currency)}, the plan says ${formatMoney(row.amount, row.currency)}`,
          cause: `billing ${row.billing_key}`,
          details: { billingKey: row.billing_key },
        });
      }
      await addTimeline(tx, {
        dealId: row.deal_id,
        kind: 'billing',
        message: `invoice ${invoice.number ?? invoice.id} finalized and sent: ${formatMoney(invoice.total, row.currency)} incl. tax`,
        cause: `billing ${row.billing_key}`,
        details: {
          billingKey: row.billing_key,
          stripeInvoiceId: invoice.id,
          hostedInvoiceUrl: invoice.hostedInvoiceUrl,
        },
      });
      if (deal.referralId) {
        await this.reports.confirmed(tx, row.billing_key, {
          cause: `billing ${row.billing_key}`,
          correlationId,
        });
      }
      if (this.config.hubspotConfigured && deal.crmDealId) {
        await this.outbox.enqueue(
          tx,
          JobName.CrmDealSync,
          `crm-sync|${row.deal_id}|${row.billing_key}`,
          {
            correlationId,
            dealId: row.deal_id,
          },
        );
      }
    });
  }

  /** Called (in the job runner's failure transaction) when an attempt fails: the reason goes on the row and the timeline. */
  async recordFailure(
    tx: Prisma.TransactionClient,
    billingKey: string,
    error: string,
    final: boolean,
  ): Promise<void> {
    const invoice = await tx.invoice.findUnique({ where: { billingKey } });
    if (!invoice) return;
    await tx.invoice.update({ where: { id: invoice.id }, data: { lastError: error } });
    if (final) {
      await addTimeline(tx, {
        dealId: invoice.dealId,
        kind: 'billing',
        message: `invoice for ${invoice.itemKey} not created: ${error} (dead letter; replay it after fixing the cause)`,
        cause: `billing ${billingKey}`,
        details: { billingKey },
      });
    }
  }
}
