import { ReportStatus } from '../generated/prisma/client';
import { PostponeReason } from '../domain/report';

/**
 * Report statuses as the platform's own screen names them (PRONI アイミツ), with an English label;
 * both are shown whatever the language, so an operator can match what the platform displays.
 * FAILED, DEAD and NOT_APPLICABLE are the hub's own (automated deliveries, nothing to report).
 */
export const REPORT_STATUS_LABELS: Record<ReportStatus, { ja: string; en: string }> = {
  PENDING: { ja: '報告期限前', en: 'before the deadline' },
  OVERDUE: { ja: '報告期限超過', en: 'overdue' },
  UNDER_REVIEW: { ja: '事務局確認中', en: 'under review' },
  CORRECTION_REQUESTED: { ja: '修正依頼', en: 'correction requested' },
  REPORTED: { ja: '報告済み', en: 'reported' },
  FEE_ONGOING: { ja: '成約手数料発生中', en: 'fee ongoing' },
  FAILED: { ja: '送信失敗', en: 'delivery failed' },
  DEAD: { ja: '送信中止', en: 'delivery gave up' },
  NOT_APPLICABLE: { ja: '対象外', en: 'not applicable' },
};

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
