/** The invoicing port's shapes, as the Stripe adapter speaks them (src/ports/invoicing.port.ts). */
export type {
  DraftInvoiceInput,
  EnsureCustomerInput,
  InvoiceLineInput,
  InvoiceView as StripeInvoiceView,
} from '../../ports/invoicing.port';
