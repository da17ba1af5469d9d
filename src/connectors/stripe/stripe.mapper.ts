import Stripe from 'stripe';

import { PermanentError, TransientError } from '../../common/errors';
import {
  headerValue,
  isTransientStatus,
  mapUnknownFailure,
  parseRetryAfter,
  sha256Hex,
} from '../provider-call';
import { DraftInvoiceInput, InvoiceLineInput, InvoiceView } from '../../ports/invoicing.port';

/**
 * Pure mapping between the hub and Stripe's API (no I/O): our idempotency keys and search values
 * on the way in, invoice views and errors (TransientError | PermanentError) on the way out.
 */

export const PROVIDER = 'stripe';
const MAX_IDEMPOTENCY_KEY = 255;

/** `closeloop-<kind>-<key>`, or the key's sha256 when that would pass Stripe's 255 characters. */
export function idempotencyKey(kind: string, key: string): string {
  const plain = `closeloop-${kind}-${key}`;
  return plain.length <= MAX_IDEMPOTENCY_KEY ? plain : `closeloop-${kind}-${sha256Hex(key)}`;
}

/** A value inside a single-quoted Stripe search string. */
export function searchValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
}

/** The draft invoice of one billing key (a replaced customer's gets an idempotency key of its own). */
export function draftInvoiceRequest(
  input: DraftInvoiceInput,
): [Stripe.InvoiceCreateParams, Stripe.RequestOptions] {
  return [
    {
      customer: input.customerId,
      collection_method: 'send_invoice',
      days_until_due: input.daysUntilDue,
      auto_advance: false,
      pending_invoice_items_behavior: 'exclude',
      currency: input.currency.toLowerCase(),
      description: input.description,
      metadata: input.metadata,
    },
    {
      idempotencyKey: idempotencyKey(
        'invoice',
        input.replacedCustomer
          ? `${input.billingKey}|customer|${input.customerId}`
          : input.billingKey,
      ),
    },
  ];
}

/** The item's one line on its draft invoice. */
export function invoiceLineRequest(
  input: InvoiceLineInput,
): [Stripe.InvoiceItemCreateParams, Stripe.RequestOptions] {
  return [
    {
      customer: input.customerId,
      invoice: input.invoiceId,
      amount: input.amount,
      currency: input.currency.toLowerCase(),
      description: input.description,
      ...(input.taxRateId ? { tax_rates: [input.taxRateId] } : {}),
    },
    { idempotencyKey: idempotencyKey('line', input.billingKey) },
  ];
}

/** An exclusive JCT tax rate of `percent`, created once per percent. */
export function taxRateRequest(
  percent: number,
): [Stripe.TaxRateCreateParams, Stripe.RequestOptions] {
  return [
    {
      display_name: '消費税',
      description: `Japan consumption tax (JCT) ${percent}%`,
      percentage: percent,
      inclusive: false,
      country: 'JP',
      tax_type: 'jct',
      metadata: { closeloop_tax_percent: String(percent) },
    },
    { idempotencyKey: idempotencyKey('tax-rate', String(percent)) },
  ];
}

export function toInvoiceView(invoice: Stripe.Invoice): InvoiceView {
  const raw = invoice as Stripe.Invoice & { tax?: number | null };
  const lines = invoice.lines as
    | (Stripe.ApiList<Stripe.InvoiceLineItem> & {
        total_count?: number;
      })
    | null;
  let tax: number;
  if (typeof raw.tax === 'number') tax = raw.tax;
  else if (Array.isArray(invoice.total_taxes))
    tax = invoice.total_taxes.reduce((sum, t) => sum + (t.amount ?? 0), 0);
  else tax = (invoice.total ?? 0) - (invoice.subtotal ?? 0);
  const customer = invoice.customer;
  return {
    id: invoice.id ?? '',
    status: invoice.status ?? 'draft',
    number: invoice.number ?? null,
    customer: typeof customer === 'string' ? customer : (customer?.id ?? ''),
    currency: invoice.currency,
    subtotal: invoice.subtotal ?? 0,
    tax,
    total: invoice.total ?? 0,
    amountPaid: invoice.amount_paid ?? 0,
    hostedInvoiceUrl: invoice.hosted_invoice_url ?? null,
    invoicePdf: invoice.invoice_pdf ?? null,
    lineCount: lines ? (lines.total_count ?? lines.data?.length ?? 0) : 0,
    metadata: { ...(invoice.metadata ?? {}) },
    created: invoice.created,
  };
}

/** Stripe SDK error → TransientError | PermanentError (CONTRACT §7, provider-facts §3.4, §3.7). */
export function mapStripeError(err: unknown): Error {
  if (err instanceof TransientError || err instanceof PermanentError) return err;
  if (!(err instanceof Stripe.errors.StripeError)) return mapUnknownFailure(PROVIDER, err);
  const status = err.statusCode;
  const kind = err.rawType ?? err.type;
  const code = err.code ? ` (${err.code})` : '';
  const message = `${PROVIDER} ${status ?? 'network'} ${kind}${code}: ${err.message}`;
  const retryAfterMs = parseRetryAfter(headerValue(err.headers, 'retry-after'));
  const shouldRetry = headerValue(err.headers, 'stripe-should-retry');
  const options = { cause: err };

  if (err.type === 'StripeIdempotencyError') {
    // Same key, different parameters: a bug in how we build requests; retrying cannot help.
    return new PermanentError(`${message} [idempotency key reused with other parameters]`, options);
  }
  if (err.type === 'StripeRateLimitError' || status === 429) {
    return new TransientError(message, retryAfterMs ?? 1_000, options);
  }
  // Stripe says whether a retry can help (e.g. a stored 500 replayed for the same idempotency key
  // cannot); we defer to it as the SDK's own retry logic does (provider-facts §3.4).
  if (shouldRetry === 'true') return new TransientError(message, retryAfterMs, options);
  if (shouldRetry === 'false') {
    return new PermanentError(`${message} [Stripe-Should-Retry: false]`, options);
  }
  if (
    err.type === 'StripeConnectionError' ||
    err.type === 'StripeAPIError' ||
    status === undefined
  ) {
    return new TransientError(message, retryAfterMs, options);
  }
  if (isTransientStatus(status)) return new TransientError(message, retryAfterMs, options);
  return new PermanentError(message, options);
}
