import { z } from 'zod';

import { PermanentError } from '../../common/errors';
import { AppConfig } from '../../config/app-config';
import {
  DoorRequest,
  IncomingEvent,
  WebhookProvider,
  asRecord,
} from '../../ports/webhook-door.port';
import { NormalizedEvent } from '../../domain/normalized-event';
import { identifyStandard, verifyStandard } from './standard-webhook.door';

const dealRef = z
  .object({ dealId: z.string().min(1).optional(), crmDealId: z.string().min(1).optional() })
  .refine((d) => d.dealId || d.crmDealId, 'dealId or crmDealId is required');
const isoDate = z.string().refine((v) => !Number.isNaN(Date.parse(v)), 'must be an ISO date');

/** Payload of each used type (CONTRACT §3.4); items of order.additional are validated by billing. */
const SCHEMAS: Record<string, z.ZodType<Record<string, unknown>>> = {
  'milestone.accepted': z.intersection(
    dealRef,
    z.object({
      itemKey: z.string().min(1),
      acceptedAt: isoDate.optional(),
      acceptedBy: z.string().optional(),
      progressPercent: z.number().min(0).max(100).optional(),
    }),
  ),
  'milestone.rejected': z.intersection(
    dealRef,
    z.object({
      itemKey: z.string().min(1),
      rejectedAt: isoDate.optional(),
      reason: z.string().optional(),
    }),
  ),
  'milestone.progress': z.intersection(
    dealRef,
    z.object({ itemKey: z.string().min(1), progressPercent: z.number().min(0).max(100) }),
  ),
  'order.additional': z.intersection(
    dealRef,
    z.object({
      description: z.string().min(1),
      items: z.array(z.record(z.string(), z.unknown())).min(1),
    }),
  ),
  'delivery.completed': z.intersection(dealRef, z.object({ deliveredOn: isoDate })),
};

/** Milestone acceptances and related events, Standard Webhooks signed (CONTRACT §3.4). */
export class MilestonesWebhook implements WebhookProvider {
  readonly source = 'milestones' as const;

  constructor(private readonly config: AppConfig) {}

  verify(req: DoorRequest): void {
    verifyStandard(req, this.config.env.MILESTONE_WEBHOOK_SECRET);
  }

  identify(body: unknown, req: DoorRequest): IncomingEvent[] {
    return identifyStandard(body, req, 'milestone');
  }

  normalize(type: string, payload: unknown): NormalizedEvent | null {
    const schema = SCHEMAS[type];
    if (!schema) return null;
    const parsed = schema.safeParse(asRecord(payload).data);
    if (!parsed.success) {
      const why = parsed.error.issues
        .map((i) => `${i.path.join('.') || 'data'}: ${i.message}`)
        .join('; ');
      throw new PermanentError(`invalid ${type} payload: ${why}`);
    }
    const data = parsed.data;
    const at = data.acceptedAt ?? data.rejectedAt ?? data.deliveredOn;
    return {
      source: this.source,
      kind: type,
      occurredAt: typeof at === 'string' ? new Date(at).toISOString() : new Date().toISOString(),
      subject: {
        dealId: data.dealId as string | undefined,
        crmDealId: data.crmDealId as string | undefined,
      },
      data,
    };
  }
}
