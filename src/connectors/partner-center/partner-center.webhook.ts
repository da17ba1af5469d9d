import { AppConfig } from '../../config/app-config';
import { PartnerCenterSignatureVerifier } from './partner-center-signature.verifier';
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

const KINDS: Record<string, string> = {
  'referral-created': 'referral.created',
  'referral-updated': 'referral.updated',
};

/**
 * Partner Center referral webhooks (CONTRACT §3.5, provider-facts §4.3): RSA-SHA256 signed with a
 * certificate whose URL must match an allowed prefix and which must chain to a trusted root (ADR
 * 0011). The payload is thin; the referral itself is read from the Partner Center API by the
 * lifecycle.
 */
export class PartnerCenterWebhook implements WebhookProvider {
  readonly source = 'partner-center' as const;
  private readonly verifier: PartnerCenterSignatureVerifier;

  constructor(config: AppConfig) {
    // One verifier per process: its download cap and certificate cache are process-wide.
    this.verifier = new PartnerCenterSignatureVerifier({
      allowedCertUrlPrefixes: config.partnerCenterCertUrlPrefixes,
      trustedRoots: config.partnerCenterTrustedRoots,
    });
  }

  async verify(req: DoorRequest): Promise<void> {
    await this.verifier.verify(req.rawBody, req.headers);
  }

  identify(body: unknown): IncomingEvent[] {
    const e = asRecord(body);
    const name = str(e.EventName);
    if (!name) throw new MalformedDeliveryError('Partner Center event has no EventName');
    // No event id exists: EventName + ResourceUri + ResourceChangeUtcDate.
    const id = identity([name, e.ResourceUri, e.ResourceChangeUtcDate], 'Partner Center event');
    return [{ providerEventId: id, type: name, payload: body }];
  }

  normalize(type: string, payload: unknown): NormalizedEvent | null {
    const kind = KINDS[type];
    if (!kind) return null;
    const e = asRecord(payload);
    // Only the referral id is taken from ResourceUri; the hub never calls the host it names.
    const referralId = str(e.ResourceUri)?.split('?')[0].split('/').filter(Boolean).pop();
    const changed = Date.parse(str(e.ResourceChangeUtcDate) ?? '');
    return {
      source: this.source,
      kind,
      occurredAt: Number.isNaN(changed)
        ? new Date().toISOString()
        : new Date(changed).toISOString(),
      subject: { referralId, platform: 'partner-center' },
      data: { referralId, resourceName: str(e.ResourceName) },
    };
  }
}
