import { Injectable } from '@nestjs/common';
import { providerFor } from '../config/providers';
import { PinoLogger } from 'nestjs-pino';

import { Clock } from '../common/clock';
import { PermanentError } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { DealStage, InvoiceState, Prisma } from '../generated/prisma/client';
import { MetricsService } from '../observability/metrics.service';
import { addTimeline } from '../timeline/timeline';
import { dbAmount } from '../prisma/db-amount';
import { PrismaService } from '../prisma/prisma.service';
import { JobOutcomeKind } from '../queue/job-handler.decorator';
import { SerializationLockService } from '../queue/serialization-lock.service';
import { formatMoney } from '../domain/money';
import { invoiceStateOfStatus } from '../domain/invoice-state';
import { InvoiceView, InvoicingPort } from '../ports/invoicing.port';
import { InvoiceFactsPort } from './invoice-facts.port';

/** The invoicing system's name in messages (the provider registry). */
const INVOICING = providerFor('invoicing').label;

interface InvoiceRow {
  id: string;
  billing_key: string;
  deal_id: string;
  item_key: string;
  /** BIGINT: pg returns it as text, claim() turns it into a number (dbAmount). */
  amount: number;
  tax_rate_percent: number;
  currency: string;
  description: string;
  state: InvoiceState;
  issue_attempts: number;
  provider_invoice_id: string | null;
  // The deal's side (read in the same statement).
  deal_customer_id: string | null;
  customer_email: string | null;
  customer_label: string;
  crm_deal_id: string | null;
  referral_id: string | null;
  deal_stage: DealStage;
  /** The e-mail and name the deal's remembered customer was last given (read in the claim). */
  known_email: string | null;
  known_name: string | null;
  /**
   * The customer this attempt settled on and the contact it is known to have, filled in by the
   * statements that find or make it: syncContact needs no read of its own.
   */
  customer?: { id: string; email: string | null; name: string | null };
}

/**
 * Takes a billing key that still has Stripe work and records that an attempt begins, in one
 * statement (the UPDATE holds the row while it runs); the deal's customer fields come along.
 */
const CLAIM = {
  name: 'issuer_claim',
  text: `UPDATE invoice i
            SET issue_attempts = i.issue_attempts + 1, updated_at = now(),
                state = CASE WHEN i.state = 'PENDING' THEN 'CREATING'::"InvoiceState" ELSE i.state END
           FROM deal d
           LEFT JOIN stripe_customer sc ON sc.stripe_customer_id = d.billing_customer_id
          WHERE i.billing_key = $1 AND d.id = i.deal_id
            AND i.state IN ('PENDING', 'CREATING', 'CREATED')
      RETURNING i.id, i.billing_key, i.deal_id, i.item_key, i.amount, i.tax_rate_percent, i.currency,
                i.description, i.state, i.issue_attempts - 1 AS issue_attempts,
                i.provider_invoice_id, d.billing_customer_id AS deal_customer_id,
                d.customer_email, COALESCE(d.company_name, d.customer_name, d.name) AS customer_label,
                d.crm_deal_id, d.referral_id, d.stage::text AS deal_stage,
                sc.email AS known_email, sc.name AS known_name`,
};
const EXISTS = { name: 'issuer_exists', text: 'SELECT 1 FROM invoice WHERE billing_key = $1' };
/** The remembered customer of a key ($1), given to the deal ($2) as well when it has one. */
const CUSTOMER_OF = {
  name: 'issuer_customer_of',
  text: `WITH known AS (SELECT stripe_customer_id, email, name FROM stripe_customer WHERE key = $1),
              given AS (UPDATE deal SET billing_customer_id = known.stripe_customer_id FROM known
                         WHERE deal.id = $2 AND deal.billing_customer_id IS NULL)
         SELECT stripe_customer_id, email, name FROM known`,
};
/**
 * Remembers a customer ($1 key, $2 customer, made with e-mail $4 and name $5; the first one made for
 * the key wins), gives the one to use to the deal ($3) unless it has one, and returns it.
 */
const REMEMBER_CUSTOMER = {
  name: 'issuer_remember_customer',
  text: `WITH ins AS (
           INSERT INTO stripe_customer (key, stripe_customer_id, email, name) VALUES ($1, $2, $4, $5)
           ON CONFLICT (key) DO NOTHING RETURNING stripe_customer_id, email, name),
         chosen AS (
           SELECT stripe_customer_id, email, name FROM ins
           UNION ALL SELECT stripe_customer_id, email, name FROM stripe_customer WHERE key = $1
           LIMIT 1),
         given AS (
           UPDATE deal SET billing_customer_id = chosen.stripe_customer_id FROM chosen
            WHERE deal.id = $3 AND deal.billing_customer_id IS NULL)
         SELECT stripe_customer_id, email, name FROM chosen`,
};
/** The contact a customer ($1) was last given (null: unknown, e.g. made before it was recorded). */
const CONTACT_OF = {
  name: 'issuer_contact_of',
  text: 'SELECT email, name FROM stripe_customer WHERE stripe_customer_id = $1 LIMIT 1',
};
/** The contact ($2 e-mail, $3 name) the customer ($1) now has. */
const RECORD_CONTACT = {
  name: 'issuer_record_contact',
  text: 'UPDATE stripe_customer SET email = COALESCE($2, email), name = $3 WHERE stripe_customer_id = $1',
};
interface RememberedCustomer {
  stripe_customer_id: string;
  email: string | null;
  name: string | null;
}

/** Records on the row the customer the attempt settled on, with its known contact; returns its id. */
function settle(row: InvoiceRow, c: RememberedCustomer): string {
  row.customer = { id: c.stripe_customer_id, email: c.email, name: c.name };
  return c.stripe_customer_id;
}

/** The Stripe invoice now exists: later attempts retrieve it instead of searching. */
const RECORD_CREATED = {
  name: 'issuer_record_created',
  text: `UPDATE invoice
            SET provider_invoice_id = COALESCE(provider_invoice_id, $2),
                billing_customer_id = COALESCE(billing_customer_id, $3), updated_at = now(),
                state = CASE WHEN state IN ('PENDING', 'CREATING') THEN 'CREATED'::"InvoiceState"
                             ELSE state END
          WHERE id = $1`,
};

/**
 * Makes the Stripe invoice of one billing key exactly once (docs/decisions/0004):
 *  1. a session advisory lock on the key: one attempt at a time across every worker, released by
 *     Postgres if the process dies;
 *  2. the invoice row (unique billing key) claimed by one conditional UPDATE that records the
 *     attempt, so a later attempt knows an earlier one may have reached Stripe (attempts > 0);
 *  3. deterministic Stripe idempotency keys derived from the billing key on every POST, so a
 *     retry of a call whose answer was lost returns the first result (for 24 h);
 *  4. when an earlier attempt's outcome is unknown, a Stripe search by closeloop_billing_key
 *     before creating, which still finds it after the idempotency keys expired.
 * Three Stripe calls per invoice — create the draft, add its line, send it (Stripe finalizes a
 * draft it is asked to send) — plus, once per customer, the customer itself (one Stripe customer
 * per e-mail address, shared by the customer's deals; see StripeCustomer).
 */
@Injectable()
export class InvoiceIssuer {
  constructor(
    private readonly prisma: PrismaService,
    private readonly invoicing: InvoicingPort,
    private readonly lock: SerializationLockService,
    private readonly metrics: MetricsService,
    private readonly config: AppConfig,
    private readonly facts: InvoiceFactsPort,
    private readonly clock: Clock,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(InvoiceIssuer.name);
  }

  async issue(billingKey: string, correlationId: string): Promise<JobOutcomeKind> {
    return this.lock.withLock(`bill:${billingKey}`, async () => {
      const row = await this.claim(billingKey);
      if (!row) return 'SKIPPED';
      const earlierAttempt = row.issue_attempts > 0;
      let customerId = await this.ensureCustomer(row, earlierAttempt);

      let invoice: InvoiceView | undefined;
      if (row.provider_invoice_id) {
        invoice = await this.invoicing.retrieveInvoice(row.provider_invoice_id);
      } else if (earlierAttempt) {
        // An earlier attempt reached Stripe and we never heard back (crash, dropped connection):
        // its idempotency key answers for 24 h, the search for ever after.
        invoice = this.pickExisting(
          billingKey,
          await this.invoicing.findInvoicesByBillingKey(billingKey),
        );
        if (invoice) {
          this.logger.info(
            { billingKey, invoice: invoice.id },
            'adopted invoice of an earlier attempt',
          );
        }
      }
      if (!invoice) {
        const draft = (customer: string, replacedCustomer = false) =>
          this.invoicing.createDraftInvoice({
            billingKey,
            replacedCustomer,
            customerId: customer,
            currency: row.currency,
            description: row.description,
            daysUntilDue: this.config.env.STRIPE_DAYS_UNTIL_DUE,
            metadata: {
              closeloop_deal_id: row.deal_id,
              closeloop_item_key: row.item_key,
              closeloop_billing_key: billingKey,
            },
          });
        invoice = await draft(customerId).catch(async (err: unknown) => {
          if (!isMissingCustomer(err)) throw err;
          customerId = await this.replaceCustomer(row, customerId);
          return draft(customerId, true);
        });
        this.metrics.invoiceCreated(row.currency);
      }
      if (row.provider_invoice_id !== invoice.id) {
        await this.prisma.pool.query({
          ...RECORD_CREATED,
          values: [row.id, invoice.id, customerId],
        });
      }

      if (invoice.status === 'draft' && invoice.lineCount === 0) {
        const taxRateId =
          row.tax_rate_percent > 0
            ? await this.invoicing.ensureTaxRate(row.tax_rate_percent)
            : undefined;
        await this.invoicing.addInvoiceLine({
          billingKey,
          customerId: invoice.customer,
          invoiceId: invoice.id,
          amount: row.amount,
          currency: row.currency,
          description: row.description,
          taxRateId,
        });
      }
      // Finalizing copies the customer's e-mail and name onto the invoice: they follow the deal's
      // contact first (a customer made before the deal had an e-mail would never get one).
      if (invoice.status === 'draft') await this.syncContact(row, invoice.customer);
      // Sending a draft finalizes it first (Stripe API reference, "Finalize an invoice").
      if (invoice.status === 'draft' || invoice.status === 'open')
        invoice = await this.invoicing.sendInvoice(billingKey, invoice.id);
      await this.recordPosted(row, invoice, correlationId);
      return 'SUCCEEDED';
    });
  }

  /** The billing key's row, claimed for this attempt; undefined when Stripe has nothing to do. */
  private async claim(billingKey: string): Promise<InvoiceRow | undefined> {
    const { rows } = await this.prisma.pool.query<
      Omit<InvoiceRow, 'amount'> & { amount: string | number }
    >({ ...CLAIM, values: [billingKey] });
    if (rows[0]) return { ...rows[0], amount: dbAmount(rows[0].amount) };
    const exists = await this.prisma.pool.query({ ...EXISTS, values: [billingKey] });
    if (exists.rowCount === 0) throw new PermanentError(`billing key ${billingKey} does not exist`);
    return undefined;
  }

  /**
   * The Stripe customer of the deal's customer: one per e-mail address (or per deal without one),
   * made once with an idempotency key of its own and remembered in stripe_customer, so every deal
   * of the same customer — at once or years apart — invoices the same Stripe customer.
   */
  private async ensureCustomer(row: InvoiceRow, earlierAttempt: boolean): Promise<string> {
    if (row.deal_customer_id) {
      row.customer = { id: row.deal_customer_id, email: row.known_email, name: row.known_name };
      return row.deal_customer_id;
    }
    const key = customerKeyOf(row);
    const known = await this.prisma.pool.query<RememberedCustomer>({
      ...CUSTOMER_OF,
      values: [key, row.deal_id],
    });
    if (!known.rows[0]) return this.makeCustomer(row, key, { searchFirst: earlierAttempt });
    return settle(row, known.rows[0]);
  }

  /**
   * Makes the Stripe customer of `key` (its own idempotency key), remembers it — the first one
   * made for the key wins — and gives it to the row's deal; returns the one to use.
   */
  private async makeCustomer(
    row: InvoiceRow,
    key: string,
    opts: { searchFirst: boolean; replaces?: string },
  ): Promise<string> {
    const made = await this.invoicing.ensureCustomer(
      { customerKey: key, email: row.customer_email ?? undefined, name: row.customer_label },
      opts,
    );
    const { rows } = await this.prisma.pool.query<RememberedCustomer>({
      ...REMEMBER_CUSTOMER,
      values: [key, made, row.deal_id, row.customer_email, row.customer_label],
    });
    return settle(row, rows[0]);
  }

  /**
   * Gives the customer the deal's e-mail and name when they differ from what it was last given
   * (never clearing an e-mail the deal lacks): one Stripe call when the contact changed, none
   * otherwise. Customers shared by an e-mail take the name of the deal being invoiced.
   */
  private async syncContact(row: InvoiceRow, customerId: string): Promise<void> {
    // Known from the statement that found or made the customer; read only for another one (an
    // invoice an earlier attempt made for a customer since replaced).
    const known =
      row.customer?.id === customerId
        ? row.customer
        : (
            await this.prisma.pool.query<{ email: string | null; name: string | null }>({
              ...CONTACT_OF,
              values: [customerId],
            })
          ).rows[0];
    const email = row.customer_email ?? undefined;
    const emailChanged = email !== undefined && known?.email !== email;
    if (!emailChanged && known?.name === row.customer_label) return;
    await this.invoicing.updateCustomer(customerId, {
      ...(emailChanged && { email }),
      name: row.customer_label,
    });
    await this.prisma.pool.query({
      ...RECORD_CONTACT,
      values: [customerId, email ?? null, row.customer_label],
    });
    this.logger.info(
      { billingKey: row.billing_key, customer: customerId, emailChanged },
      `${INVOICING} customer given the deal's contact before sending`,
    );
  }

  /**
   * The remembered customer is gone from Stripe (deleted there; or a Stripe test account that was
   * reset): forget it for every deal of that customer and make a new one, once.
   */
  private async replaceCustomer(row: InvoiceRow, missing: string): Promise<string> {
    const key = customerKeyOf(row);
    await this.prisma.pool.query(
      'DELETE FROM stripe_customer WHERE key = $1 AND stripe_customer_id = $2',
      [key, missing],
    );
    await this.prisma.pool.query(
      'UPDATE deal SET billing_customer_id = NULL WHERE billing_customer_id = $1',
      [missing],
    );
    const id = await this.makeCustomer(row, key, { searchFirst: false, replaces: missing });
    this.logger.warn(
      { billingKey: row.billing_key, missing, customer: id },
      `${INVOICING} no longer has the remembered customer; made a new one`,
    );
    return id;
  }

  /** Of the invoices Stripe has for a billing key, the one to carry on with. */
  private pickExisting(billingKey: string, found: InvoiceView[]): InvoiceView | undefined {
    if (found.length > 1) {
      this.logger.error(
        { billingKey, invoices: found.map((i) => i.id) },
        `${INVOICING} holds more than one invoice for a billing key; reconciliation will name it`,
      );
    }
    return found.find((i) => i.status !== 'void') ?? found[0];
  }

  private async recordPosted(row: InvoiceRow, invoice: InvoiceView, correlationId: string) {
    // Sent: at least POSTED, whatever happened to it since.
    const state: InvoiceState = invoiceStateOfStatus(invoice.status, 'POSTED');
    const cause = `billing ${row.billing_key}`;
    await this.prisma.transaction(async (tx) => {
      // An invoice.* event may have moved the row on meanwhile: states only move forward.
      await tx.$executeRaw`
        UPDATE invoice
           SET state = CASE WHEN state IN ('PENDING', 'CREATING', 'CREATED')
                              OR (state = 'POSTED' AND ${state}::"InvoiceState" <> 'POSTED')
                            THEN ${state}::"InvoiceState" ELSE state END,
               provider_invoice_id = COALESCE(provider_invoice_id, ${invoice.id}),
               invoice_number = COALESCE(${invoice.number}, invoice_number),
               hosted_invoice_url = COALESCE(${invoice.hostedInvoiceUrl}, hosted_invoice_url),
               invoice_pdf_url = COALESCE(${invoice.invoicePdf}, invoice_pdf_url),
               total = ${invoice.total}, tax_amount = ${invoice.tax},
               posted_at = COALESCE(posted_at, ${this.clock.now()}), last_error = NULL,
               updated_at = now()
         WHERE id = ${row.id}`;
      const details = {
        billingKey: row.billing_key,
        stripeInvoiceId: invoice.id,
        hostedInvoiceUrl: invoice.hostedInvoiceUrl,
      };
      await addTimeline(tx, [
        ...(row.provider_invoice_id
          ? []
          : [
              {
                dealId: row.deal_id,
                kind: 'billing' as const,
                message: `${INVOICING} invoice ${invoice.id} created for ${row.item_key}: ${formatMoney(row.amount, row.currency)} excl. tax`,
                cause,
                details: { billingKey: row.billing_key, stripeInvoiceId: invoice.id },
              },
            ]),
        ...(invoice.subtotal !== row.amount
          ? [
              {
                dealId: row.deal_id,
                kind: 'billing' as const,
                message: `${INVOICING} invoice ${invoice.number ?? invoice.id} is for ${formatMoney(invoice.subtotal, row.currency)}, the plan says ${formatMoney(row.amount, row.currency)}`,
                cause,
                details: { billingKey: row.billing_key },
              },
            ]
          : []),
        {
          dealId: row.deal_id,
          kind: 'billing',
          message: `invoice ${invoice.number ?? invoice.id} finalized and sent: ${formatMoney(invoice.total, row.currency)} incl. tax`,
          cause,
          details,
        },
      ]);
      await this.facts.invoiceConfirmed(
        tx,
        row.billing_key,
        {
          id: row.deal_id,
          crmDealId: row.crm_deal_id,
          referralId: row.referral_id,
          stage: row.deal_stage,
        },
        { cause, correlationId },
      );
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

/** The customer an invoice is for: their e-mail address, or the deal when there is none. */
export function customerKeyOf(row: { customer_email: string | null; deal_id: string }): string {
  const email = row.customer_email?.trim().toLowerCase();
  return email ? `email:${email}` : `deal:${row.deal_id}`;
}

/** Stripe answered that the invoice's customer does not exist (resource_missing on `customer`). */
function isMissingCustomer(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string; param?: string } } | null)?.cause;
  return cause?.code === 'resource_missing' && cause.param === 'customer';
}
