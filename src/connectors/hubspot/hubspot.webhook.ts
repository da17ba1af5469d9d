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
/** The deal property that asks for a Partner Center co-sell referral (CONTRACT §5). */
const COSELL_PROPERTY = 'closeloop_cosell';
const IDENTITY_FIELDS = ['portalId', 'subscriptionId', 'eventId', 'occurredAt', 'objectId'];

/**
 * When the change happened: HubSpot's occurredAt (epoch ms), never later than now — a stamp from
 * the future would make every later stage change of the deal look older than it.
 */
function occurredAt(value: unknown, now = Date.now()): string {
  const at = Number(value);
  return new Date(Number.isSafeInteger(at) && at > 0 ? Math.min(at, now) : now).toISOString();
}

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

  /**
   * Each element is stored, or skipped, on its own (CONTRACT §3.2): HubSpot retries a batch on any
   * 4xx for a day, so one element the hub cannot use (an association change without `objectId`, a
   * non-object) must not cost the stage change beside it. Only a body that is not a batch at all
   * (not an array, over 100 elements) is refused.
   */
  identify(body: unknown): IncomingEvent[] {
    if (!Array.isArray(body))
      throw new MalformedDeliveryError('HubSpot delivery must be a JSON array');
    if (body.length > MAX_BATCH)
      throw new MalformedDeliveryError(`HubSpot batch exceeds ${MAX_BATCH} events`);
    return body.map((element: unknown, i): IncomingEvent => {
      const e = asRecord(element);
      const type = str(e.subscriptionType) ?? str(e.eventType);
      const parts = [e.portalId, e.subscriptionId, e.eventId, e.occurredAt, e.objectId];
      const missing = IDENTITY_FIELDS.filter((_, k) => str(parts[k]) === undefined);
      if (missing.length > 0 || !type) {
        const why = [...missing, ...(type ? [] : ['subscriptionType'])].join(', ');
        return {
          providerEventId: '',
          type: type ?? 'unknown',
          payload: element,
          skip: `HubSpot event #${i}${type ? ` (${type})` : ''} has no ${why}`,
        };
      }
      // eventId is not unique on its own (provider-facts §2.2): composite identity.
      return { providerEventId: identity(parts, `HubSpot event #${i}`), type, payload: element };
    });
  }

  normalize(type: string, payload: unknown): NormalizedEvent | null {
    const e = asRecord(payload);
    const base = {
      source: this.source,
      occurredAt: occurredAt(e.occurredAt),
      subject: { crmDealId: str(e.objectId) },
    };
    const common = { portalId: str(e.portalId), changeSource: str(e.changeSource) };
    switch (type) {
      case 'deal.creation':
        return { ...base, kind: 'crm.deal_created', data: common };
      case 'deal.deletion':
        return { ...base, kind: 'crm.deal_deleted', data: common };
      case 'deal.propertyChange':
        // closeloop_cosell ticked (or cleared): the deal is read again, its stage untouched.
        if (e.propertyName === COSELL_PROPERTY) {
          return {
            ...base,
            kind: 'crm.deal_updated',
            data: { ...common, property: COSELL_PROPERTY },
          };
        }
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
