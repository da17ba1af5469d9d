import { Deal, Prisma } from '../generated/prisma/client';
import type { BillingContext } from './billing.service';

/** What follows from a confirmed amount depends on: the deal's CRM deal, referral and stage. */
export type InvoiceDealFacts = Pick<Deal, 'id' | 'crmDealId' | 'referralId' | 'stage'>;

/**
 * What billing tells the lifecycle (billing records facts; it neither reports nor syncs): an
 * invoice became a confirmed amount — sent or paid — by the issuer's own record or by the
 * invoicing system's word. The lifecycle's settle step implements it (src/lifecycle/settle.service.ts)
 * and derives the 確定報告 and the CRM write-back from it, in the same transaction.
 */
export abstract class InvoiceFactsPort {
  /** `deal`: as the caller read it in this transaction (the issuer with its claim, the invoice handler locked). */
  abstract invoiceConfirmed(
    tx: Prisma.TransactionClient,
    billingKey: string,
    deal: InvoiceDealFacts,
    ctx: BillingContext,
  ): Promise<void>;
}
