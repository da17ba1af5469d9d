import { CONTRACT_ID_FIELD, DEAL_ID_FIELD } from './docusign-fields';
import { AppConfig } from '../../config/app-config';
import { verifyDocusignSignature } from './docusign-signature.verifier';
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

const USED = new Set([
  'envelope-sent',
  'envelope-delivered',
  'envelope-completed',
  'envelope-declined',
  'envelope-voided',
]);

/** DocuSign Connect, JSON SIM (CONTRACT §3.1, provider-facts §1.1–1.3). */
export class DocusignWebhook implements WebhookProvider {
  readonly source = 'docusign' as const;

  constructor(private readonly config: AppConfig) {}

  verify(req: DoorRequest): void {
    verifyDocusignSignature(req.rawBody, req.headers, this.config.env.DOCUSIGN_CONNECT_HMAC_KEYS);
  }

  identify(body: unknown): IncomingEvent[] {
    const msg = asRecord(body);
    const data = asRecord(msg.data);
    const event = str(msg.event);
    if (!event) throw new MalformedDeliveryError('DocuSign message has no event');
    // Identity: data.envelopeId + event + generatedDateTime (retryCount left out on purpose).
    const id = identity([data.envelopeId, event, msg.generatedDateTime], 'DocuSign message');
    return [{ providerEventId: id, type: event, payload: body }];
  }

  normalize(type: string, payload: unknown): NormalizedEvent | null {
    if (!USED.has(type)) return null;
    const msg = asRecord(payload);
    const data = asRecord(msg.data);
    const summary = asRecord(data.envelopeSummary);
    const fields = asRecord(summary.customFields).textCustomFields;
    const field = (name: string) =>
      Array.isArray(fields)
        ? str(fields.map(asRecord).find((f) => f.name === name)?.value)
        : undefined;
    return {
      source: this.source,
      kind: `envelope.${type.slice('envelope-'.length)}`,
      occurredAt: toIso(str(msg.generatedDateTime)),
      subject: { envelopeId: str(data.envelopeId), dealId: field(DEAL_ID_FIELD) },
      data: {
        envelopeId: str(data.envelopeId),
        // Which contract the hub made it for: absent or different on a foreign envelope.
        contractId: field(CONTRACT_ID_FIELD),
        accountId: str(data.accountId),
        status: str(summary.status),
        completedAt: str(summary.completedDateTime),
      },
    };
  }
}

/** DocuSign sends 7 fractional digits; Date keeps milliseconds. */
function toIso(value: string | undefined): string {
  const ms = value ? Date.parse(value) : NaN;
  return Number.isNaN(ms) ? new Date().toISOString() : new Date(ms).toISOString();
}
