/** What the hub reads back from a Stripe invoice (amounts in the currency's smallest unit). */
export interface StripeInvoiceView {
  id: string;
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
   * for the idempotency key and the metadata closeloop_customer_key.
   */
  customerKey: string;
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
   * The customer the first create named is gone from Stripe: that create made nothing (400), and
   * Stripe keeps its answer under the billing key's idempotency key, so the create for the new
   * customer needs a key of its own (still derived from the billing key and that customer).
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
