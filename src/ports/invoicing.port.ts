/**
 * The invoicing port (Stripe: src/connectors/stripe). Everything the invoice issuer and
 * reconciliation need: one customer per customer key, a draft invoice keyed by the billing key, its
 * lines, sending it, and reading invoices back by id, billing key or customer. Amounts are integers
 * in the currency's smallest unit. Creates carry idempotency keys derived from the billing key, so
 * a repeated attempt never makes a second invoice. Calls throw TransientError / PermanentError.
 */

/** An invoice as the invoicing system reports it. */
export interface InvoiceView {
  id: string;
  /** The system's own status: draft | open | paid | uncollectible | void (see invoiceStateOfStatus). */
  status: 'draft' | 'open' | 'paid' | 'uncollectible' | 'void' | string;
  number: string | null;
  customer: string;
  currency: string;
  /** Sum of the lines excluding tax. */
  subtotal: number;
  tax: number;
  total: number;
  amountPaid: number;
  hostedInvoiceUrl: string | null;
  invoicePdf: string | null;
  /** Number of line items on the invoice. */
  lineCount: number;
  metadata: Record<string, string>;
  created: number;
}

export interface EnsureCustomerInput {
  /**
   * Stable key of the customer in the hub (`email:<address>`, or `deal:<id>` without one); used
   * for the idempotency key and the customer's metadata.
   */
  customerKey: string;
  email?: string;
  name?: string;
}

export interface CustomerContact {
  email?: string;
  name?: string;
}

export interface DraftInvoiceInput {
  billingKey: string;
  customerId: string;
  currency: string;
  description: string;
  daysUntilDue: number;
  /** closeloop_deal_id, closeloop_item_key, closeloop_billing_key (CONTRACT §3.3). */
  metadata: Record<string, string>;
  /**
   * The customer the first create named is gone: that create made nothing, and the system keeps
   * its answer under the billing key's idempotency key, so the create for the new customer needs a
   * key of its own (still derived from the billing key and that customer).
   */
  replacedCustomer?: boolean;
}

export interface InvoiceLineInput {
  billingKey: string;
  customerId: string;
  invoiceId: string;
  amount: number;
  currency: string;
  description: string;
  taxRateId?: string;
}

/** Which rate budget a read spends: the issuer's, or reconciliation's own smaller one. */
export type InvoicingBudget = 'shared' | 'reconciliation';

export abstract class InvoicingPort {
  abstract readonly provider: string;
  /**
   * Finds the customer by its key (when asked) or creates it idempotently; returns its id.
   * `replaces`: a customer of this key the system no longer has: the new one gets a key of its own.
   */
  abstract ensureCustomer(
    input: EnsureCustomerInput,
    opts: { searchFirst: boolean; replaces?: string },
  ): Promise<string>;
  /**
   * Gives the customer the deal's contact (e-mail, name): a finalized invoice shows and is sent to
   * what the customer has at that moment. An absent field is left as it is.
   */
  abstract updateCustomer(customerId: string, contact: CustomerContact): Promise<void>;
  abstract ensureTaxRate(percent: number): Promise<string>;
  abstract findInvoicesByBillingKey(billingKey: string): Promise<InvoiceView[]>;
  abstract searchInvoicesByDeal(dealId: string, budget?: InvoicingBudget): Promise<InvoiceView[]>;
  abstract createDraftInvoice(input: DraftInvoiceInput): Promise<InvoiceView>;
  abstract addInvoiceLine(input: InvoiceLineInput): Promise<void>;
  abstract sendInvoice(billingKey: string, invoiceId: string): Promise<InvoiceView>;
  abstract retrieveInvoice(invoiceId: string, budget?: InvoicingBudget): Promise<InvoiceView>;
  abstract listInvoicesForCustomer(
    customerId: string,
    budget?: InvoicingBudget,
  ): Promise<InvoiceView[]>;
}
