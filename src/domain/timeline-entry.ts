import { DealStage } from './deal-stage';

/**
 * A deal's timeline entry (CONTRACT §6) as every module writes it: what happened and why. The
 * store that appends entries in the transaction of the change they explain is src/timeline.
 */
export const TIMELINE_KINDS = [
  'event',
  'transition',
  'refused',
  'plan',
  'item',
  'billing',
  'contract',
  'crm',
  'admin',
  'timer',
  'referral',
  'report',
] as const;
export type TimelineKind = (typeof TIMELINE_KINDS)[number];

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
