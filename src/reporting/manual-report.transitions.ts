/**
 * What an operator may do to a report by hand (the manual report queue, CONTRACT §5/§6), as one
 * pure table. No I/O: the admin API reads the report, asks {@link decideManualAction} and applies
 * the outcome with an optimistic check on the status it read.
 *
 * The statuses mirror PRONI アイミツ's own: 報告期限前 PENDING, 報告期限超過 OVERDUE, 事務局確認中
 * UNDER_REVIEW, 修正依頼 CORRECTION_REQUESTED, 報告済み REPORTED, 成約手数料発生中 FEE_ONGOING; FAILED
 * and DEAD are automated deliveries that gave up (an operator may enter those by hand), and
 * NOT_APPLICABLE is a report the platform does not take (nothing to do, ever).
 */
import type { ReportStatus } from '../generated/prisma/enums';
import { BILLING_COUNT_LABELS } from '../domain/platforms/aimitsu';
import { POSTPONE_REASONS, PostponeReason, ReportChannel, ReportKind } from '../domain/report';

export const REPORT_STATUSES = [
  'PENDING',
  'OVERDUE',
  'UNDER_REVIEW',
  'CORRECTION_REQUESTED',
  'REPORTED',
  'FEE_ONGOING',
  'FAILED',
  'DEAD',
  'NOT_APPLICABLE',
] as const satisfies readonly ReportStatus[];

/** Statuses an operator may set with `POST /api/reports/:id/status`. */
export const SETTABLE_STATUSES = [
  'UNDER_REVIEW',
  'CORRECTION_REQUESTED',
  'REPORTED',
  'FEE_ONGOING',
] as const satisfies readonly ReportStatus[];
export type SettableStatus = (typeof SETTABLE_STATUSES)[number];

/** Statuses in which the platform has the report (entered, under review or accepted). */
export const DELIVERED_STATUSES: readonly ReportStatus[] = [
  'UNDER_REVIEW',
  'CORRECTION_REQUESTED',
  'REPORTED',
  'FEE_ONGOING',
];

/** Report kinds whose form states an amount (the only ones where a differing amount can be entered). */
const AMOUNT_KINDS: readonly string[] = [
  'won',
  'confirmed_amount',
  'additional_order',
] satisfies ReportKind[];

export type ManualAction =
  | { type: 'mark-reported'; amountExTax?: number }
  | { type: 'status'; status: SettableStatus }
  | { type: 'postpone'; reason: PostponeReason; newDueAt?: Date }
  /** 修正依頼: finance corrects the report's fields (the values are checked by the platform's form). */
  | { type: 'correct' };

/** The report as the table needs it. */
export interface ManualReportState {
  status: ReportStatus;
  channel: string;
  kind: string;
  /** The report data (only `billingCount` is read). */
  data: unknown;
}

export type ManualDecision =
  | {
      ok: true;
      to: ReportStatus;
      /** New deadline: a date, null to clear it, undefined to keep it. */
      dueAt?: Date | null;
      postponeReason?: PostponeReason;
      /** now: it was entered on the platform just now; if-unset: keep an earlier entry time. */
      deliveredAt: 'now' | 'if-unset' | 'unchanged';
      reportedAmount?: number;
    }
  | {
      ok: false;
      /** refused: not allowed in this state (409); invalid: the request itself is wrong (400). */
      refusal: 'refused' | 'invalid';
      reason: string;
    };

type RuleKey = 'mark-reported' | 'postpone' | 'correct' | `status:${SettableStatus}`;

interface Rule {
  from: readonly ReportStatus[];
  /** Only reports of the manual queue (the platform's own review states are seen only there). */
  manualOnly: boolean;
  /** Only a confirmed amount billed monthly fixed (the platform then charges its fee monthly). */
  monthlyFixedOnly: boolean;
  /** Why the sources are what they are, appended to a refusal. */
  why: string;
}

/** The table. Every status not listed as a source refuses the action. */
export const MANUAL_TRANSITIONS: Readonly<Record<RuleKey, Rule>> = {
  'mark-reported': {
    from: ['PENDING', 'OVERDUE', 'UNDER_REVIEW', 'CORRECTION_REQUESTED', 'FAILED', 'DEAD'],
    manualOnly: false,
    monthlyFixedOnly: false,
    why: 'it marks a report that is still owed, or was corrected, as entered on the platform',
  },
  'status:UNDER_REVIEW': {
    from: ['PENDING', 'OVERDUE', 'CORRECTION_REQUESTED'],
    manualOnly: true,
    monthlyFixedOnly: false,
    why: 'the platform reviews a report once it was submitted or resubmitted after a correction',
  },
  'status:CORRECTION_REQUESTED': {
    from: ['UNDER_REVIEW', 'REPORTED', 'FEE_ONGOING'],
    manualOnly: true,
    monthlyFixedOnly: false,
    why: 'the platform asks for corrections only to a report it has',
  },
  'status:REPORTED': {
    from: [
      'PENDING',
      'OVERDUE',
      'UNDER_REVIEW',
      'CORRECTION_REQUESTED',
      'FEE_ONGOING',
      'FAILED',
      'DEAD',
    ],
    manualOnly: false,
    monthlyFixedOnly: false,
    why: 'a report still owed, under review, corrected, or whose monthly fee stopped can be reported',
  },
  'status:FEE_ONGOING': {
    from: [
      'PENDING',
      'OVERDUE',
      'UNDER_REVIEW',
      'CORRECTION_REQUESTED',
      'REPORTED',
      'FAILED',
      'DEAD',
    ],
    manualOnly: false,
    monthlyFixedOnly: true,
    why: 'the monthly fee runs once the fixed monthly amount is reported',
  },
  postpone: {
    from: ['PENDING', 'OVERDUE'],
    manualOnly: true,
    monthlyFixedOnly: false,
    why: 'only a report that is still owed has a deadline to move',
  },
  correct: {
    from: ['CORRECTION_REQUESTED'],
    manualOnly: true,
    monthlyFixedOnly: false,
    why: 'the fields are corrected when the platform asks for it (修正依頼); while it reviews them (UNDER_REVIEW) they stay as entered, and before they are entered the hub keeps them up to date from its facts',
  },
};

const ruleKey = (action: ManualAction): RuleKey =>
  action.type === 'status' ? `status:${action.status}` : action.type;

const actionName = (key: RuleKey) =>
  key.startsWith('status:')
    ? `setting the status to ${key.slice(7)}`
    : key === 'correct'
      ? 'correcting the fields'
      : key;

function isMonthlyFixed(report: ManualReportState): boolean {
  const data = report.data as { billingCount?: unknown } | null;
  return report.kind === 'confirmed_amount' && data?.billingCount === 'monthly_fixed';
}

/** Why the report's state refuses the action, or undefined when the state allows it. */
function gate(report: ManualReportState, key: RuleKey): string | undefined {
  const rule = MANUAL_TRANSITIONS[key];
  if (report.status === 'NOT_APPLICABLE') {
    return `the report is NOT_APPLICABLE: the platform takes no ${report.kind} report, so there is nothing to enter`;
  }
  if (rule.manualOnly && report.channel !== ('manual' satisfies ReportChannel)) {
    return `${actionName(key)} applies only to the manual report queue; this report goes to the platform through ${report.channel}`;
  }
  if (rule.monthlyFixedOnly && !isMonthlyFixed(report)) {
    return `FEE_ONGOING (成約手数料発生中) applies only to a confirmed_amount report billed monthly fixed (${BILLING_COUNT_LABELS.monthly_fixed}); this is a ${report.kind} report${report.kind === 'confirmed_amount' ? ' that is not monthly fixed' : ''}`;
  }
  if (!rule.from.includes(report.status)) {
    const already =
      key === 'mark-reported'
        ? report.status === 'REPORTED' || report.status === 'FEE_ONGOING'
        : key === `status:${report.status}`;
    if (already) {
      return `the report is already ${report.status}`;
    }
    return `${actionName(key)} is not allowed from ${report.status} (only from ${rule.from.join(', ')}): ${rule.why}`;
  }
  return undefined;
}

const refused = (reason: string): ManualDecision => ({ ok: false, refusal: 'refused', reason });
const invalid = (reason: string): ManualDecision => ({ ok: false, refusal: 'invalid', reason });

/**
 * Decides an operator's action on a report: the state it leads to, or why not. The state is
 * checked before the request's details, so a refused action answers the same whatever was sent.
 */
export function decideManualAction(
  report: ManualReportState,
  action: ManualAction,
  now: Date,
): ManualDecision {
  const key = ruleKey(action);
  const why = gate(report, key);
  if (why) return refused(why);

  switch (action.type) {
    case 'mark-reported': {
      if (action.amountExTax !== undefined && !AMOUNT_KINDS.includes(report.kind)) {
        return invalid(
          `amountExTax applies only to reports that state an amount (${AMOUNT_KINDS.join(', ')}); this is a ${report.kind} report`,
        );
      }
      return {
        ok: true,
        to: isMonthlyFixed(report) ? 'FEE_ONGOING' : 'REPORTED',
        deliveredAt: 'now',
        ...(action.amountExTax !== undefined ? { reportedAmount: action.amountExTax } : {}),
      };
    }
    case 'status':
      return {
        ok: true,
        to: action.status,
        // Corrections are asked of a report the platform has: it was entered already.
        deliveredAt: 'if-unset',
      };
    case 'correct':
      // The report stays where it is: the operator enters the corrected fields on the platform
      // and then says so (UNDER_REVIEW or mark-reported).
      return { ok: true, to: report.status, deliveredAt: 'unchanged' };
    case 'postpone': {
      if (!POSTPONE_REASONS.includes(action.reason)) {
        return invalid(`reason must be one of ${POSTPONE_REASONS.join(', ')}`);
      }
      if (action.reason === 'lost') {
        if (action.newDueAt !== undefined) {
          return invalid('reason lost clears the deadline: send no newDueAt');
        }
        return {
          ok: true,
          to: 'PENDING',
          dueAt: null,
          postponeReason: 'lost',
          deliveredAt: 'unchanged',
        };
      }
      if (action.newDueAt === undefined) {
        return invalid(`reason ${action.reason} needs newDueAt, the new deadline`);
      }
      if (Number.isNaN(action.newDueAt.getTime()) || action.newDueAt.getTime() <= now.getTime()) {
        return invalid(
          `newDueAt must be in the future (it is ${Number.isNaN(action.newDueAt.getTime()) ? 'not a date' : action.newDueAt.toISOString()}, now is ${now.toISOString()})`,
        );
      }
      return {
        ok: true,
        to: 'PENDING',
        dueAt: action.newDueAt,
        postponeReason: action.reason,
        deliveredAt: 'unchanged',
      };
    }
  }
}

/**
 * The actions the report's state allows (request details aside), for the dashboard's buttons:
 * `mark-reported`, `postpone`, `correct`, `status:<STATUS>`.
 */
export function allowedManualActions(report: ManualReportState): RuleKey[] {
  return (Object.keys(MANUAL_TRANSITIONS) as RuleKey[]).filter(
    (k) => gate(report, k) === undefined,
  );
}
