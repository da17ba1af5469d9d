import { DealStage, Prisma } from '../generated/prisma/client';

export type TimelineKind =
  | 'event'
  | 'transition'
  | 'refused'
  | 'plan'
  | 'item'
  | 'billing'
  | 'contract'
  | 'crm'
  | 'admin'
  | 'timer'
  | 'referral'
  | 'report';

export interface TimelineInput {
  dealId: string;
  kind: TimelineKind;
  message: string;
  /** What caused it: "docusign envelope-completed", "admin tok_…", "timer: silent approval". */
  cause: string;
  eventId?: string | null;
  fromStage?: DealStage | null;
  toStage?: DealStage | null;
  details?: Record<string, unknown>;
  at?: Date;
}

/** Appends to a deal's timeline inside the caller's transaction (it commits with the change it explains). */
export async function addTimeline(
  tx: Prisma.TransactionClient,
  entries: TimelineInput | TimelineInput[],
): Promise<void> {
  const list = Array.isArray(entries) ? entries : [entries];
  if (list.length === 0) return;
  await tx.timelineEntry.createMany({
    data: list.map((e) => ({
      dealId: e.dealId,
      kind: e.kind,
      message: e.message,
      cause: e.cause,
      eventId: e.eventId ?? null,
      fromStage: e.fromStage ?? null,
      toStage: e.toStage ?? null,
      details: (e.details ?? undefined) as Prisma.InputJsonValue | undefined,
      ...(e.at ? { at: e.at } : {}),
    })),
  });
}
