import { NormalizedEvent } from '../domain/normalized-event';
import { Prisma } from '../generated/prisma/client';
import { CrmDeal } from '../ports/crm.port';

export type Tx = Prisma.TransactionClient;

/** Why the lifecycle is acting: carried onto timeline entries, jobs and alerts. */
export interface LifecycleContext {
  cause: string;
  correlationId: string;
  eventId?: string | null;
  now?: Date;
}

/** Which deal an event concerned, or why it was ignored. */
export type EventOutcome = { dealId?: string; ignored?: string };

/**
 * One handler per kind of event (CRM deals, envelopes, deal facts, invoices): it applies the
 * event's facts to the deal inside the caller's transaction and lets the settle step derive the
 * rest. `remote` is what the event pipeline read before the transaction (the CRM deal now; null
 * when it no longer exists).
 */
export interface EventHandler {
  readonly kinds: readonly string[];
  apply(
    tx: Tx,
    ev: NormalizedEvent,
    ctx: LifecycleContext,
    remote?: CrmDeal | null,
  ): Promise<EventOutcome>;
}
