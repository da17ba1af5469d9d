import fc from 'fast-check';

import { standardWebhookHmac, standardWebhookKey } from '../../src/common/standard-webhooks';
import { WebhookSource } from '../../src/config/providers';
import { DoorKit, ExpectedEvent, Identified, part, record, sameB64 } from './door-oracle';

/**
 * A door kit for the hub's Standard Webhooks doors (CONTRACT §3.4, §3.5 generic; provider-facts
 * §5): `webhook-id` (the identity), `webhook-timestamp` (seconds, 5 minutes both ways) and
 * `webhook-signature` (space-separated `v1,<base64>` entries) over `id.timestamp.body`. Signed with
 * src/common/standard-webhooks (the signer the simulator's standardDelivery uses), which also signs
 * a timestamp text that is not a number.
 */
export function standardWebhooksKit(opts: {
  provider: WebhookSource;
  path: string;
  secret: string;
  event: fc.Arbitrary<unknown>;
  /** Status of a stored event of this type (CONTRACT: types the hub does not use are IGNORED). */
  used(type: string): ExpectedEvent['status'];
  /** A reason the door refuses this body although it has an identity and a type. */
  refuses?(body: Record<string, unknown>): string | undefined;
}): DoorKit {
  const wrongSecret = 'whsec_d3JvbmctYnV0LXdlbGwtZm9ybWVkLWtleQ==';
  return {
    provider: opts.provider,
    path: opts.path,
    event: opts.event,
    plainHeaders: [['user-agent', 'Svix-Webhooks/1.40']],
    signatureHeaders: ['webhook-id', 'webhook-timestamp', 'webhook-signature'],
    sign(body, ctx) {
      const id = `msg_${ctx.token}`;
      const timestamp = ctx.timestamp ?? String(Math.floor(ctx.nowMs / 1000));
      const key = standardWebhookKey(ctx.wrongKey ? wrongSecret : opts.secret);
      const mac = standardWebhookHmac(key, id, timestamp, body).toString('base64');
      return [
        ['webhook-id', id],
        ['webhook-timestamp', timestamp],
        ['webhook-signature', `v1,${mac}`],
      ];
    },
    stillSigned(got, signed) {
      const genuine = signed.get('webhook-signature')?.split(',')[1];
      return (
        got.get('webhook-id') === signed.get('webhook-id') &&
        got.get('webhook-timestamp') === signed.get('webhook-timestamp') &&
        (got.get('webhook-signature') ?? '')
          .split(' ')
          .map((entry) => entry.split(','))
          .some(([version, value]) => version === 'v1' && sameB64(value, genuine))
      );
    },
    timestampUnit: 's',
    identify(body, view): Identified {
      const id = view.get('webhook-id');
      const type = part(record(body)?.type);
      if (!id || !type) return { refused: 'no webhook-id or type' };
      const refused = opts.refuses?.(record(body) ?? {});
      if (refused) return { refused };
      return {
        events: [{ identity: id, type, status: opts.used(type), payload: body }],
        duplicates: 0,
        skipped: 0,
      };
    },
    signedAlike: (a, b) => a.equals(b),
  };
}
