import { AppConfig } from '../../config/app-config';
import { verifyHubspotSignatureV3 } from './hubspot-signature.verifier';
import {
  DoorRequest,
  IncomingEvent,
  MalformedDeliveryError,
  WebhookProvider,
  asRecord,
  identity,
  str,
} from '../../ports/webhook-door.port';
import { NormalizedEvent } from '../../domain/normalized-event';

const MAX_BATCH = 100;

/** HubSpot webhooks v3 (CONTRACT §3.2, provider-facts §2.1–2.2). */
export class HubspotWebhook implements WebhookProvider {
  readonly source = 'hubspot' as const;

  constructor(private readonly config: AppConfig) {}

  verify(req: DoorRequest): void {
    verifyHubspotSignatureV3({
      rawBody: req.rawBody,
      headers: req.headers,
      method: req.method,
      // Signed over the public URL HubSpot called, whatever Host a proxy forwards.
      publicBaseUrl: this.config.publicBaseUrl,
      requestUrl: req.url,
      clientSecret: this.config.env.HUBSPOT_CLIENT_SECRET ?? '',
    });
  }

  identify(body: unknown): IncomingEvent[] {
    if (!Array.isArray(body))
      throw new MalformedDeliveryError('HubSpot delivery must be a JSON array');
    if (body.length === 0) throw new MalformedDeliveryError('HubSpot delivery is empty');
    if (body.length > MAX_BATCH)
      throw new MalformedDeliveryError(`HubSpot batch exceeds ${MAX_BATCH} events`);
    return body.map((element, i) => {
      const e = asRecord(element);
      // eventId is not unique on its own (provider-facts §2.2): composite identity.
      const id = identity(
        [e.portalId, e.subscriptionId, e.eventId, e.occurredAt, e.objectId],
        `HubSpot event #${i}`,
      );
      const type = str(e.subscriptionType) ?? str(e.eventType);
      if (!type)
        throw new MalformedDeliveryError(
          `HubSpot event #${i} has no subscriptionType or eventType`,
        );
      return { providerEventId: id, type, payload: element };
    });
  }

  normalize(type: string, payload: unknown): NormalizedEvent | null {
    const e = asRecord(payload);
    const base = {
      source: this.source,
      occurredAt: new Date(Number(e.occurredAt) || Date.now()).toISOString(),
      subject: { crmDealId: str(e.objectId) },
    };
    const common = { portalId: str(e.portalId), changeSource: str(e.changeSource) };
    switch (type) {
      case 'deal.creation':
        return { ...base, kind: 'crm.deal_created', data: common };
      case 'deal.deletion':
        return { ...base, kind: 'crm.deal_deleted', data: common };
      case 'deal.propertyChange':
        if (e.propertyName !== 'dealstage') return null;
        return {
          ...base,
          kind: 'crm.deal_stage_changed',
          data: { ...common, stage: str(e.propertyValue) },
        };
      default:
        return null;
    }
  }
}
