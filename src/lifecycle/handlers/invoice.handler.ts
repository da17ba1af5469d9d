import { Injectable } from '@nestjs/common';

import { providerFor } from '../../config/providers';
import { BillingService } from '../../billing/billing.service';
import { PermanentError } from '../../common/errors';
import { NormalizedEvent } from '../../domain/normalized-event';
import { addTimeline } from '../../timeline/timeline';
import { findDeal, lockDeal } from '../deal-rows';
import { EventHandler, EventOutcome, LifecycleContext, Tx } from '../lifecycle.types';
import { SettleService } from '../settle.service';

/** The invoicing system's name in messages (the provider registry). */
const INVOICING = providerFor('invoicing').label;

/**
 * The invoicing system's word on the hub's invoices (invoice.finalized … invoice.marked_uncollectible,
 * charge.dispute_created): billing records the fact on the invoice row; a confirmed amount, a
 * payment or a void go on to the settle step (reports, CRM write-back, the deal's stage).
 */
@Injectable()
export class InvoiceEventHandler implements EventHandler {
  readonly kinds = [
    'invoice.finalized',
    'invoice.sent',
    'invoice.paid',
    'invoice.payment_failed',
    'invoice.voided',
    'invoice.marked_uncollectible',
    'charge.dispute_created',
  ] as const;

  constructor(
    private readonly billing: BillingService,
    private readonly settler: SettleService,
  ) {}

  async apply(tx: Tx, ev: NormalizedEvent, ctx: LifecycleContext): Promise<EventOutcome> {
    const d = ev.data;
    const providerInvoiceId = ev.subject.providerInvoiceId;
    const billingKey = d.billingKey as string | undefined;
    const ref = billingKey
      ? await tx.invoice.findUnique({ where: { billingKey }, select: { id: true, dealId: true } })
      : providerInvoiceId
        ? await tx.invoice.findUnique({
            where: { providerInvoiceId },
            select: { id: true, dealId: true },
          })
        : null;
    if (!ref) {
      // Not one of ours. If it names a hub deal, the deal's timeline says so (finance will see it
      // as an unknown invoice in reconciliation); otherwise there is nothing to attach it to.
      const deal = ev.subject.dealId
        ? await findDeal(tx, { dealId: ev.subject.dealId })
        : undefined;
      if (!deal) {
        return {
          ignored: `${INVOICING} invoice ${providerInvoiceId ?? '?'} was not made by the hub`,
        };
      }
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'billing',
        message: `${INVOICING} ${ev.kind} for invoice ${providerInvoiceId ?? '?'}, which the hub did not make (reconciliation names it)`,
        cause: ctx.cause,
        eventId: ctx.eventId,
      });
      return { dealId: deal.id };
    }
    const deal = await lockDeal(tx, ref.dealId);
    const invoice = await tx.invoice.findUniqueOrThrow({ where: { id: ref.id } });
    if (ev.kind === 'charge.dispute_created') {
      await addTimeline(tx, {
        dealId: invoice.dealId,
        kind: 'billing',
        message: `payment of invoice ${invoice.invoiceNumber ?? providerInvoiceId} disputed`,
        cause: ctx.cause,
        eventId: ctx.eventId,
      });
      await this.settler.enqueueCrmSync(tx, deal, ctx, `dispute-${ctx.eventId}`);
      return { dealId: invoice.dealId };
    }
    if (ev.kind === 'invoice.payment_failed') {
      await addTimeline(tx, {
        dealId: invoice.dealId,
        kind: 'billing',
        message: `payment of invoice ${invoice.invoiceNumber ?? providerInvoiceId} failed`,
        cause: ctx.cause,
        eventId: ctx.eventId,
      });
      return { dealId: invoice.dealId };
    }
    if (!providerInvoiceId) throw new PermanentError(`${ev.kind} without an invoice id`);
    const { changed, confirmed } = await this.billing.applyInvoiceEvent(
      tx,
      invoice,
      {
        kind: ev.kind,
        providerInvoiceId,
        status: d.status as string | undefined,
        number: d.number as string | undefined,
        amountPaid: d.amountPaid as number | undefined,
        total: d.total as number | undefined,
        hostedInvoiceUrl: d.hostedInvoiceUrl as string | undefined,
        invoicePdfUrl: d.invoicePdfUrl as string | undefined,
        tax: d.tax as number | undefined,
      },
      ctx,
    );
    // Confirmed by the invoicing system's word (the hub's own record of the send was lost).
    if (confirmed) await this.settler.invoiceConfirmed(tx, invoice.billingKey, deal, ctx);
    if (changed && (ev.kind === 'invoice.paid' || ev.kind === 'invoice.voided')) {
      await this.settler.enqueueCrmSync(tx, deal, ctx, `${ev.kind}-${invoice.id}`);
    }
    // Stripe confirming what the hub already recorded (its own finalize/send) changes nothing.
    if (!changed) return { dealId: invoice.dealId };
    await this.settler.settle(tx, invoice.dealId, ctx);
    return { dealId: invoice.dealId };
  }
}
