import { NormalizedEvent } from '../../src/domain/normalized-event';
import { WebhookProvider, asRecord, str } from '../../src/ports/webhook-door.port';

/** A FakeCRM webhook event as FakeCRM would post it. */
export interface FakeCrmDelivery {
  event: 'deal.added' | 'deal.moved' | 'deal.removed' | 'deal.renamed';
  deal: string;
  /** deal.moved: the column the deal was dragged to. */
  column?: string;
  /** Epoch milliseconds. */
  at: number;
}

/**
 * The door side of FakeCRM, as a WebhookProvider's normalize() (src/webhooks/providers/*.webhook.ts):
 * FakeCRM's event types become the hub's CRM kinds, with the CRM deal id as the subject and the
 * stage change's column as `data.stage` (the CRM deal handler maps it through the adapter). A real
 * provider also verifies and identifies deliveries (docs/adding-a-provider.md).
 */
export class FakeCrmWebhook implements Pick<WebhookProvider, 'normalize'> {
  readonly source = 'fake-crm';

  normalize(type: string, payload: unknown): NormalizedEvent | null {
    const e = asRecord(payload);
    const base = {
      source: this.source,
      occurredAt: new Date(Number(e.at)).toISOString(),
      subject: { crmDealId: str(e.deal) },
    };
    switch (type) {
      case 'deal.added':
        return { ...base, kind: 'crm.deal_created', data: {} };
      case 'deal.moved':
        return { ...base, kind: 'crm.deal_stage_changed', data: { stage: str(e.column) } };
      case 'deal.removed':
        return { ...base, kind: 'crm.deal_deleted', data: {} };
      default:
        return null;
    }
  }

  /** Normalizes one delivery (what the worker does with the stored row). */
  event(d: FakeCrmDelivery): NormalizedEvent {
    const ev = this.normalize(d.event, d);
    if (!ev) throw new Error(`FakeCRM ${d.event} is not used by the hub`);
    return ev;
  }
}
