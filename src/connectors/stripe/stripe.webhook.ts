import { AppConfig } from '../../config/app-config';
import { verifyStripeSignature } from './stripe-signature.verifier';
import {
  DoorRequest,
  IncomingEvent,
  MalformedDeliveryError,
  WebhookProvider,
  asRecord,
  str,
} from '../../ports/webhook-door.port';
import { NormalizedEvent } from '../../domain/normalized-event';

const USED = new Set([
  'invoice.finalized',
  'invoice.sent',
  'invoice.paid',
  'invoice.payment_failed',
  'invoice.voided',
  'invoice.marked_uncollectible',
  'charge.dispute.created',
]);

/** Stripe events (CONTRACT §3.3, provider-facts §3.1–3.2). */
export class StripeWebhook implements WebhookProvider {
  readonly source = 'stripe' as const;

  constructor(private readonly config: AppConfig) {}

  verify(req: DoorRequest): void {
    verifyStripeSignature(req.rawBody, req.headers, this.config.env.STRIPE_WEBHOOK_SECRET ?? '');
  }

  identify(body: unknown): IncomingEvent[] {
    const e = asRecord(body);
    const id = str(e.id);
    const type = str(e.type);
    if (!id || !type) throw new MalformedDeliveryError('Stripe event needs id and type');
    return [{ providerEventId: id, type, payload: body }];
  }

  normalize(type: string, payload: unknown): NormalizedEvent | null {
    if (!USED.has(type)) return null;
    const e = asRecord(payload);
    const object = asRecord(asRecord(e.data).object);
    const metadata = asRecord(object.metadata);
    const isInvoice = object.object === 'invoice';
    return {
      source: this.source,
      kind: type === 'charge.dispute.created' ? 'charge.dispute_created' : type,
      occurredAt: new Date((Number(e.created) || Date.now() / 1000) * 1000).toISOString(),
      subject: {
        dealId: str(metadata.closeloop_deal_id),
        providerInvoiceId: isInvoice ? str(object.id) : str(object.invoice),
        billingCustomerId: str(object.customer),
      },
      data: {
        objectId: str(object.id),
        status: str(object.status),
        itemKey: str(metadata.closeloop_item_key),
        billingKey: str(metadata.closeloop_billing_key),
        amountDue: typeof object.amount_due === 'number' ? object.amount_due : undefined,
        amountPaid: typeof object.amount_paid === 'number' ? object.amount_paid : undefined,
        currency: str(object.currency),
        number: str(object.number),
        ...(isInvoice ? finalizedFigures(object) : {}),
      },
    };
  }
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * What a finalized invoice says of itself — its page, its PDF, its total and its own tax — so the
 * 確定報告 built from the event states the invoice's figures, not the hub's estimate (CONTRACT §5).
 * A draft has none of them yet.
 */
function finalizedFigures(invoice: Record<string, unknown>) {
  if (invoice.status === 'draft') return {};
  const total = num(invoice.total);
  const subtotal = num(invoice.subtotal);
  const taxes = Array.isArray(invoice.total_taxes)
    ? (invoice.total_taxes as { amount?: unknown }[])
    : undefined;
  // Stripe's own field where the API version has it, else the sum of its taxes, else the difference.
  const tax =
    num(invoice.tax) ??
    (taxes ? taxes.reduce((sum, t) => sum + (num(t.amount) ?? 0), 0) : undefined) ??
    (total !== undefined && subtotal !== undefined ? total - subtotal : undefined);
  return {
    hostedInvoiceUrl: str(invoice.hosted_invoice_url),
    invoicePdfUrl: str(invoice.invoice_pdf),
    total,
    tax: total !== undefined ? tax : undefined,
  };
}
