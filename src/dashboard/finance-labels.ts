import { PostponeReason } from '../domain/report';

/** Why a manual report is postponed, as the platform words it. */
export const POSTPONE_REASON_LABELS: Record<PostponeReason, { ja: string; en: string }> = {
  date_changed: { ja: '日程変更', en: 'date changed' },
  not_started: { ja: '未着手・保留', en: 'not started / on hold' },
  lost: { ja: '失注', en: 'lost' },
};

/** A report still owed whose deadline has passed (OVERDUE, or PENDING before the timer's next run). */
export function isOverdue(
  report: { status: string; dueAt: Date | string | null },
  now: Date,
): boolean {
  if (report.status === 'OVERDUE') return true;
  if (report.status !== 'PENDING' || report.dueAt === null) return false;
  return new Date(report.dueAt).getTime() < now.getTime();
}
