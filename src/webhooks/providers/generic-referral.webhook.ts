import { z } from 'zod';

import { MAX_AMOUNT } from '../../domain/money';
import { PermanentError } from '../../common/errors';
import { AppConfig } from '../../config/app-config';
import { BUILT_IN_REFERRAL_PLATFORMS } from '../../config/providers';
import {
  DoorRequest,
  IncomingEvent,
  MalformedDeliveryError,
  WebhookProvider,
  asRecord,
} from '../../ports/webhook-door.port';
import { NormalizedEvent } from '../../domain/normalized-event';
import { canonicalPlatform } from '../../domain/platforms';
import { identifyStandard, verifyStandard } from './standard-webhook.door';

const referral = z.object({
  referralId: z.string().min(1),
  platform: z.string().min(1),
  customer: z.object({ name: z.string().min(1), email: z.email().optional() }),
  title: z.string().min(1),
  estimatedValue: z
    .number()
    .int()
    .nonnegative()
    .max(MAX_AMOUNT, { error: `must be at most ${MAX_AMOUNT} (the largest amount the hub takes)` })
    .optional(),
  currency: z.string().length(3).optional(),
  respondBy: z
    .string()
    .refine((v) => !Number.isNaN(Date.parse(v)), 'must be an ISO date')
    .optional(),
});

/** Names compared without case, spaces, dashes or underscores: "Partner_Center" is partner-center. */
const squash = (name: string): string =>
  name
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\s_\-.]/g, '');

/** The built-in platform a sender's `platform` names, if any. */
function builtInPlatform(name: string): string | undefined {
  return BUILT_IN_REFERRAL_PLATFORMS.find((builtIn) => squash(builtIn) === squash(name));
}

/** Generic inbound referrals, Standard Webhooks signed (CONTRACT §3.5). */
export class GenericReferralWebhook implements WebhookProvider {
  readonly source = 'generic' as const;

  constructor(private readonly config: AppConfig) {}

  verify(req: DoorRequest): void {
    verifyStandard(req, this.config.env.REFERRAL_WEBHOOK_SECRET);
  }

  identify(body: unknown, req: DoorRequest): IncomingEvent[] {
    const events = identifyStandard(body, req, 'referral');
    const platform = asRecord(asRecord(body).data).platform;
    const builtIn = typeof platform === 'string' ? builtInPlatform(platform) : undefined;
    if (builtIn) {
      throw new MalformedDeliveryError(
        `platform "${platform}" is ${builtIn}, a built-in platform: only its own door (/webhooks/referrals/${builtIn}) speaks for it`,
      );
    }
    return events;
  }

  normalize(type: string, payload: unknown): NormalizedEvent | null {
    if (type !== 'referral.created' && type !== 'referral.updated') return null;
    const parsed = referral.safeParse(asRecord(payload).data);
    if (!parsed.success) {
      const why = parsed.error.issues
        .map((i) => `${i.path.join('.') || 'data'}: ${i.message}`)
        .join('; ');
      throw new PermanentError(`invalid ${type} payload: ${why}`);
    }
    const r = parsed.data;
    // An event stored before the door refused built-in names must not speak for them either.
    if (builtInPlatform(r.platform)) {
      throw new PermanentError(`invalid ${type} payload: platform "${r.platform}" is built in`);
    }
    // Standard Webhooks payloads carry the event's own time; the delivery time is the fallback.
    const stamped = Date.parse(String(asRecord(payload).timestamp ?? ''));
    // One name per platform (`proni` is `aimitsu`): referrals, deals and reports store the profile's.
    const platform = canonicalPlatform(r.platform);
    return {
      source: this.source,
      kind: type,
      occurredAt: (Number.isNaN(stamped) ? new Date() : new Date(stamped)).toISOString(),
      subject: { referralId: r.referralId, platform },
      data: { ...r, platform },
    };
  }
}
