import { verifyStandardWebhook } from '../signatures/standard-webhooks-signature.verifier';
import { headerValue } from '../../common/header.util';
import {
  DoorRequest,
  IncomingEvent,
  MalformedDeliveryError,
  asRecord,
  str,
} from '../../ports/webhook-door.port';

/** Door shared by the Standard Webhooks sources (milestones, generic referrals): identity is webhook-id. */
export function verifyStandard(req: DoorRequest, secret: string | undefined): void {
  verifyStandardWebhook(req.rawBody, req.headers, secret ?? '');
}

export function identifyStandard(body: unknown, req: DoorRequest, what: string): IncomingEvent[] {
  const id = headerValue(req.headers, 'webhook-id');
  const type = str(asRecord(body).type);
  if (!id) throw new MalformedDeliveryError('webhook-id header is missing');
  if (!type) throw new MalformedDeliveryError(`${what} event has no type`);
  return [{ providerEventId: id, type, payload: body }];
}
