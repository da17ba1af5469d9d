import { INVOICE_STATE_RANK as RANK, invoiceStateForEvent } from '../domain/invoice-state';
import { InvoiceState } from '../generated/prisma/client';
import { MetricsService } from '../observability/metrics.service';
import { PrismaService } from '../prisma/prisma.service';
import { Done, Prepared, ignoredAtOnce } from './event-pipeline.types';

/**
 * Outcomes decided without a lane (unused types, Stripe echoes, invoices the hub did not make):
 * one statement for the whole batch. The event row says what became of it (status, reason, deal);
 * no attempt row is written for a decision that ran no handler, so they cost next to nothing.
 */
const MARK_QUICK = {
  name: 'pipeline_mark_quick',
  text: `UPDATE webhook_event e
            SET status = v.status::"EventStatus", processed_at = now(), attempts = e.attempts + 1,
                deal_id = v.deal_id, normalized = v.normalized::jsonb, last_error = v.reason
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                AS v(id, status, deal_id, normalized, reason)
          WHERE e.id = v.id AND e.status = 'RECEIVED'
          RETURNING e.id`,
};
/** The hub's invoices a batch of Stripe events names, and which of the deals they name exist. */
const STRIPE_REFS = {
  name: 'pipeline_stripe_refs',
  text: `SELECT billing_key, provider_invoice_id, state::text AS state, deal_id, false AS deal_only
           FROM invoice WHERE billing_key = ANY($1::text[]) OR provider_invoice_id = ANY($2::text[])
         UNION ALL
         SELECT NULL, NULL, NULL, id, true FROM deal WHERE id = ANY($3::text[])`,
};

/** A batch's events decided at once, without a lane, and written back in one statement. */
export class QuickOutcomes {
  constructor(
    private readonly prisma: PrismaService,
    private readonly metrics: MetricsService,
  ) {}

  /**
   * Stripe events decided without a lane: echoes of the hub's own finalize/send (the invoice row
   * is already at or past the event's state) and events about invoices the hub did not make and
   * that name no hub deal. One lookup for the whole batch.
   */
  async decideStripe(stripe: Prepared[]): Promise<Map<string, Done>> {
    const keys = new Set<string>();
    const ids = new Set<string>();
    const deals = new Set<string>();
    for (const p of stripe) {
      const ev = p.normalized!;
      if (typeof ev.data.billingKey === 'string') keys.add(ev.data.billingKey);
      if (ev.subject.providerInvoiceId) ids.add(ev.subject.providerInvoiceId);
      if (ev.subject.dealId) deals.add(ev.subject.dealId);
    }
    const { rows } = await this.prisma.pool.query<{
      billing_key: string;
      provider_invoice_id: string | null;
      state: InvoiceState;
      deal_id: string;
      deal_only: boolean;
    }>({ ...STRIPE_REFS, values: [[...keys], [...ids], [...deals]] });
    const refs = rows.filter((r) => !r.deal_only);
    const byKey = new Map(refs.map((r) => [r.billing_key, r]));
    const byStripeId = new Map(
      refs.filter((r) => r.provider_invoice_id).map((r) => [r.provider_invoice_id!, r]),
    );
    const knownDeals = new Set(rows.filter((r) => r.deal_only).map((r) => r.deal_id));
    const decided = new Map<string, Done>();
    for (const p of stripe) {
      const ev = p.normalized!;
      const billingKey = typeof ev.data.billingKey === 'string' ? ev.data.billingKey : undefined;
      const stripeId = ev.subject.providerInvoiceId;
      const ref =
        (billingKey ? byKey.get(billingKey) : undefined) ??
        (stripeId ? byStripeId.get(stripeId) : undefined);
      if (!ref) {
        if (ev.subject.dealId && knownDeals.has(ev.subject.dealId)) continue; // the deal's timeline says so
        decided.set(
          p.row.id,
          ignoredAtOnce(p, `Stripe invoice ${stripeId ?? '?'} was not made by the hub`),
        );
        continue;
      }
      const target = invoiceStateForEvent(ev.kind);
      const echo =
        target !== undefined &&
        target !== 'PAID' &&
        target !== 'VOID' &&
        RANK[ref.state] >= RANK[target];
      if (echo) {
        decided.set(p.row.id, {
          row: p.row,
          status: 'PROCESSED',
          dealId: ref.deal_id,
          normalized: ev,
          reason: null,
          durationMs: 0,
        });
      }
    }
    return decided;
  }

  async markQuick(done: Done[]): Promise<void> {
    const { rows } = await this.prisma.pool.query<{ id: string }>({
      ...MARK_QUICK,
      values: [
        done.map((d) => d.row.id),
        done.map((d) => d.status),
        done.map((d) => d.dealId),
        done.map((d) => (d.normalized ? JSON.stringify(d.normalized) : null)),
        done.map((d) => d.reason),
      ],
    });
    const marked = new Set(rows.map((r) => r.id));
    for (const d of done) {
      if (marked.has(d.row.id)) this.metrics.eventFinished(d.row, d.status);
    }
  }
}
