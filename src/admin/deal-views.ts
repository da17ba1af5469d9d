import { Invoice } from '../generated/prisma/client';
import { INVOICED_STATES } from '../domain/invoice-state';
import { dbAmount } from '../prisma/db-amount';

/** A deal as the admin API and the dashboard show it: the fields read and their JSON form. */

export type InvoiceRow = Pick<
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
  | 'providerInvoiceId'
  | 'invoiceNumber'
  | 'hostedInvoiceUrl'
  | 'invoicePdfUrl'
  | 'lastError'
  | 'createdAt'
  | 'postedAt'
  | 'paidAt'
  | 'voidedAt'
>;

export const INVOICE_FIELDS = {
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
  providerInvoiceId: true,
  invoiceNumber: true,
  hostedInvoiceUrl: true,
  invoicePdfUrl: true,
  lastError: true,
  createdAt: true,
  postedAt: true,
  paidAt: true,
  voidedAt: true,
} as const;

export const LIST_FIELDS = {
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

export function customerOf(d: {
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

export function invoiceView(i: InvoiceRow) {
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
    stripeInvoiceId: i.providerInvoiceId,
    stripeNumber: i.invoiceNumber,
    hostedInvoiceUrl: i.hostedInvoiceUrl,
    invoicePdfUrl: i.invoicePdfUrl,
    lastError: i.lastError,
    createdAt: i.createdAt,
    postedAt: i.postedAt,
    paidAt: i.paidAt,
    voidedAt: i.voidedAt,
  };
}
