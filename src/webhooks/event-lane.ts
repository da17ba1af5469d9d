import { subjectKey } from '../domain/normalized-event';
import { IncomingEvent, WebhookProvider } from '../ports/webhook-door.port';

/**
 * Lanes (docs/decisions/0007): the door stores each event's lane — the serialization key of what
 * it is about (one deal, envelope, CRM deal, referral, invoice) — so that the worker drains a
 * lane in arrival order, one worker at a time, while other lanes flow past it.
 */

/** The lane of an event the door cannot place: its own. */
export const ownLane = (eventId: string): string => `event:${eventId}`;

/** The advisory-lock key of a lane (taken per transaction, never waited for by a drain). */
export const laneLockKey = (lane: string): string => `lane:${lane}`;

/**
 * The id of the job that runs an event on its own after its `attempts`-th attempt (a retry, or an
 * isolated run), and the key of a dead letter parked from a lane. Unique per replay and attempt,
 * so the recovery sweep can re-add it as it is (a no-op while the job lives).
 */
export const eventJobId = (e: { id: string; replay_count: number; attempts: number }): string =>
  `${e.id}|r${e.replay_count}|a${e.attempts}`;

/** The id of a lane's drain jobs (BullMQ ids may not contain ':'). */
export const laneDrainJobId = (lane: string): string => `lane|${lane.replace(/:/g, '|')}`;

/**
 * BullMQ deduplication of a lane's drain jobs: at most one waiting (or delayed) and one active.
 * `keepLastIfActive`: a drain asked for while one is running is kept and added when the running
 * one finishes — never dropped, for the running drain may already be past its last look at the
 * lane (a batch that found the lane held, or a drain handing itself on). A drain asked for now
 * brings a delayed one forward (`reschedule`).
 */
export function laneDrainDeduplication(lane: string, delayMs: number) {
  return { id: laneDrainJobId(lane), keepLastIfActive: true, reschedule: delayMs === 0 };
}

/**
 * What the door knows of an event before storing it: its lane, and whether the hub uses its type
 * at all (an unused type is stored IGNORED, with no job). Pure and cheap: the provider's own
 * normalize(), which the worker runs again on the stored row. A payload normalize() refuses is
 * stored RECEIVED in its own lane, so the worker fails it with the reason, as a dead letter.
 */
export function doorRoute(
  provider: WebhookProvider,
  event: IncomingEvent,
): { lane?: string; ignored?: string } {
  try {
    const normalized = provider.normalize(event.type, event.payload);
    if (!normalized) return { ignored: `${event.type} is not used by the hub` };
    return { lane: subjectKey(normalized.subject) };
  } catch {
    return {};
  }
}
