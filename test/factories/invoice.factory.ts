import { newId } from '../../src/common/ids';
import { billingKeyFor } from '../../src/domain/billing-key';
import { taxOf } from '../../src/domain/money';
import { Invoice, InvoiceState, Prisma } from '../../src/generated/prisma/client';
import { Db, FACTORY_NOW, uniq } from './db';

export type InvoiceOverrides = Partial<Prisma.InvoiceUncheckedCreateInput> & {
  dealId: string;
  itemKey: string;
  /**
   * Only the columns given and those the table requires (no Stripe details or timestamps implied
   * by the state): for specs that seed a row exactly as they describe it.
   */
  bare?: boolean;
};

const AT_LEAST_CREATED: readonly InvoiceState[] = [
  'CREATED',
  'POSTED',
  'PAID',
  'VOID',
  'UNCOLLECTIBLE',
];
const AT_LEAST_POSTED: readonly InvoiceState[] = ['POSTED', 'PAID', 'UNCOLLECTIBLE'];

/**
 * An invoice row (one billing key). Defaults: ¥300,000 + 10 % tax, PENDING, the billing key of the
 * deal, item and period (billingKeyFor). A state from CREATED on gets a Stripe id and number and
 * the URLs; POSTED and later a postedAt, PAID a paidAt and amountPaid = total, VOID a voidedAt.
 */
export async function createInvoice(db: Db, invoice: InvoiceOverrides): Promise<Invoice> {
  const { bare = false, ...over } = invoice;
  const state: InvoiceState = over.state ?? 'PENDING';
  const amount = Number(over.amount ?? 300_000);
  const taxRatePercent = over.taxRatePercent ?? 10;
  const taxAmount = Number(over.taxAmount ?? taxOf(amount, taxRatePercent));
  const total = amount + taxAmount;
  const inStripe = !bare && AT_LEAST_CREATED.includes(state);
  const tag = uniq();
  return db.invoice.create({
    data: {
      id: newId('inv'),
      billingKey: billingKeyFor(over.dealId, over.itemKey, over.period, over.rebill ?? 0),
      currency: 'jpy',
      description: `${over.itemKey}${over.period ? ` (${over.period})` : ''} — Website renewal`,
      ...(inStripe
        ? {
            providerInvoiceId: `in_${tag}`,
            invoiceNumber: `CL-${tag.toUpperCase()}`,
            hostedInvoiceUrl: `https://invoice.stripe.test/i/${tag}`,
            invoicePdfUrl: `https://invoice.stripe.test/i/${tag}/pdf`,
            total,
          }
        : {}),
      ...(bare
        ? {}
        : {
            postedAt: AT_LEAST_POSTED.includes(state) ? FACTORY_NOW : null,
            paidAt: state === 'PAID' ? FACTORY_NOW : null,
            amountPaid: state === 'PAID' ? total : 0,
            voidedAt: state === 'VOID' || state === 'UNCOLLECTIBLE' ? FACTORY_NOW : null,
          }),
      ...over,
      state,
      amount,
      taxRatePercent,
      taxAmount,
    },
  });
}
