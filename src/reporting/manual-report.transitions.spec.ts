import {
  ManualAction,
  ManualReportState,
  REPORT_STATUSES,
  allowedManualActions,
  decideManualAction,
} from './manual-report.transitions';

const NOW = new Date('2026-12-01T00:00:00Z');
const LATER = new Date('2026-12-20T00:00:00Z');

const ACTIONS: Record<string, ManualAction> = {
  mark: { type: 'mark-reported' },
  review: { type: 'status', status: 'UNDER_REVIEW' },
  correction: { type: 'status', status: 'CORRECTION_REQUESTED' },
  reported: { type: 'status', status: 'REPORTED' },
  fee: { type: 'status', status: 'FEE_ONGOING' },
  postpone: { type: 'postpone', reason: 'date_changed', newDueAt: LATER },
};
const COLUMNS = Object.keys(ACTIONS);

const report = (over: Partial<ManualReportState> = {}): ManualReportState => ({
  status: 'PENDING',
  channel: 'manual',
  kind: 'confirmed_amount',
  data: { billingCount: 'one_time' },
  ...over,
});

/** One row per status: the status each action leads to, or ✗ when refused. */
function matrix(base: Partial<ManualReportState>): Record<string, string[]> {
  return Object.fromEntries(
    REPORT_STATUSES.map((status) => [
      status,
      COLUMNS.map((c) => {
        const d = decideManualAction(report({ ...base, status }), ACTIONS[c], NOW);
        return d.ok ? d.to : '✗';
      }),
    ]),
  );
}

describe('manual report transitions: every status × action', () => {
  // columns: mark-reported, →UNDER_REVIEW, →CORRECTION_REQUESTED, →REPORTED, →FEE_ONGOING, postpone
  it('manual queue, a one-time confirmed amount', () => {
    expect(matrix({})).toEqual({
      PENDING: ['REPORTED', 'UNDER_REVIEW', '✗', 'REPORTED', '✗', 'PENDING'],
      OVERDUE: ['REPORTED', 'UNDER_REVIEW', '✗', 'REPORTED', '✗', 'PENDING'],
      UNDER_REVIEW: ['REPORTED', '✗', 'CORRECTION_REQUESTED', 'REPORTED', '✗', '✗'],
      CORRECTION_REQUESTED: ['REPORTED', 'UNDER_REVIEW', '✗', 'REPORTED', '✗', '✗'],
      REPORTED: ['✗', '✗', 'CORRECTION_REQUESTED', '✗', '✗', '✗'],
      FEE_ONGOING: ['✗', '✗', 'CORRECTION_REQUESTED', 'REPORTED', '✗', '✗'],
      FAILED: ['REPORTED', '✗', '✗', 'REPORTED', '✗', '✗'],
      DEAD: ['REPORTED', '✗', '✗', 'REPORTED', '✗', '✗'],
      NOT_APPLICABLE: ['✗', '✗', '✗', '✗', '✗', '✗'],
    });
  });

  it('manual queue, a confirmed amount billed monthly fixed: reported means the fee runs', () => {
    expect(matrix({ data: { billingCount: 'monthly_fixed' } })).toEqual({
      PENDING: ['FEE_ONGOING', 'UNDER_REVIEW', '✗', 'REPORTED', 'FEE_ONGOING', 'PENDING'],
      OVERDUE: ['FEE_ONGOING', 'UNDER_REVIEW', '✗', 'REPORTED', 'FEE_ONGOING', 'PENDING'],
      UNDER_REVIEW: ['FEE_ONGOING', '✗', 'CORRECTION_REQUESTED', 'REPORTED', 'FEE_ONGOING', '✗'],
      CORRECTION_REQUESTED: ['FEE_ONGOING', 'UNDER_REVIEW', '✗', 'REPORTED', 'FEE_ONGOING', '✗'],
      REPORTED: ['✗', '✗', 'CORRECTION_REQUESTED', '✗', 'FEE_ONGOING', '✗'],
      FEE_ONGOING: ['✗', '✗', 'CORRECTION_REQUESTED', 'REPORTED', '✗', '✗'],
      FAILED: ['FEE_ONGOING', '✗', '✗', 'REPORTED', 'FEE_ONGOING', '✗'],
      DEAD: ['FEE_ONGOING', '✗', '✗', 'REPORTED', 'FEE_ONGOING', '✗'],
      NOT_APPLICABLE: ['✗', '✗', '✗', '✗', '✗', '✗'],
    });
  });

  it('a webhook report: no review states and no postponing, but it can be entered by hand', () => {
    expect(matrix({ channel: 'webhook', kind: 'won', data: {} })).toEqual({
      PENDING: ['REPORTED', '✗', '✗', 'REPORTED', '✗', '✗'],
      OVERDUE: ['REPORTED', '✗', '✗', 'REPORTED', '✗', '✗'],
      UNDER_REVIEW: ['REPORTED', '✗', '✗', 'REPORTED', '✗', '✗'],
      CORRECTION_REQUESTED: ['REPORTED', '✗', '✗', 'REPORTED', '✗', '✗'],
      REPORTED: ['✗', '✗', '✗', '✗', '✗', '✗'],
      FEE_ONGOING: ['✗', '✗', '✗', 'REPORTED', '✗', '✗'],
      FAILED: ['REPORTED', '✗', '✗', 'REPORTED', '✗', '✗'],
      DEAD: ['REPORTED', '✗', '✗', 'REPORTED', '✗', '✗'],
      NOT_APPLICABLE: ['✗', '✗', '✗', '✗', '✗', '✗'],
    });
  });

  it('the dashboard is offered exactly the actions the table allows', () => {
    expect(allowedManualActions(report({ status: 'OVERDUE' }))).toEqual([
      'mark-reported',
      'status:UNDER_REVIEW',
      'status:REPORTED',
      'postpone',
    ]);
    expect(allowedManualActions(report({ status: 'NOT_APPLICABLE' }))).toEqual([]);
  });
});

describe('correcting the fields (修正依頼)', () => {
  const correct: ManualAction = { type: 'correct' };

  it('is allowed only while the platform asks for a correction, and leaves the status as it is', () => {
    const outcome = Object.fromEntries(
      REPORT_STATUSES.map((status) => {
        const d = decideManualAction(report({ status }), correct, NOW);
        return [status, d.ok ? d.to : '✗'];
      }),
    );
    expect(outcome).toEqual({
      PENDING: '✗',
      OVERDUE: '✗',
      UNDER_REVIEW: '✗',
      CORRECTION_REQUESTED: 'CORRECTION_REQUESTED',
      REPORTED: '✗',
      FEE_ONGOING: '✗',
      FAILED: '✗',
      DEAD: '✗',
      NOT_APPLICABLE: '✗',
    });
    expect(decideManualAction(report({ status: 'CORRECTION_REQUESTED' }), correct, NOW)).toEqual({
      ok: true,
      to: 'CORRECTION_REQUESTED',
      deliveredAt: 'unchanged',
    });
    expect(allowedManualActions(report({ status: 'CORRECTION_REQUESTED' }))).toContain('correct');
    expect(allowedManualActions(report({ status: 'UNDER_REVIEW' }))).not.toContain('correct');
  });

  it('names why it is refused under review and on an automatic channel', () => {
    const underReview = decideManualAction(report({ status: 'UNDER_REVIEW' }), correct, NOW);
    expect(underReview).toMatchObject({ ok: false, refusal: 'refused' });
    expect(!underReview.ok && underReview.reason).toMatch(
      /^correcting the fields is not allowed from UNDER_REVIEW \(only from CORRECTION_REQUESTED\): /,
    );
    const webhook = decideManualAction(
      report({ status: 'CORRECTION_REQUESTED', channel: 'webhook' }),
      correct,
      NOW,
    );
    expect(!webhook.ok && webhook.reason).toBe(
      'correcting the fields applies only to the manual report queue; this report goes to the platform through webhook',
    );
  });
});

describe('refusals carry their reason', () => {
  const reason = (r: ManualReportState, a: ManualAction) => {
    const d = decideManualAction(r, a, NOW);
    if (d.ok) throw new Error(`expected a refusal, got ${d.to}`);
    return d;
  };

  it('names an already reported report, a not applicable one and a wrong source', () => {
    expect(reason(report({ status: 'REPORTED' }), ACTIONS.mark)).toEqual({
      ok: false,
      refusal: 'refused',
      reason: 'the report is already REPORTED',
    });
    expect(reason(report({ status: 'NOT_APPLICABLE' }), ACTIONS.mark).reason).toContain(
      'platform takes no confirmed_amount report',
    );
    expect(reason(report({ status: 'PENDING' }), ACTIONS.correction).reason).toBe(
      'setting the status to CORRECTION_REQUESTED is not allowed from PENDING (only from UNDER_REVIEW, REPORTED, FEE_ONGOING): the platform asks for corrections only to a report it has',
    );
  });

  it('names the channel for manual-only actions and the billing for FEE_ONGOING', () => {
    expect(reason(report({ channel: 'partner-center' }), ACTIONS.postpone).reason).toBe(
      'postpone applies only to the manual report queue; this report goes to the platform through partner-center',
    );
    expect(reason(report(), ACTIONS.fee).reason).toContain('not monthly fixed');
    expect(reason(report({ kind: 'won', data: {} }), ACTIONS.fee).reason).toContain(
      'this is a won report',
    );
  });

  it('checks the state before the details: a refused postpone is refused whatever was sent', () => {
    const d = reason(report({ status: 'REPORTED' }), { type: 'postpone', reason: 'date_changed' });
    expect(d.refusal).toBe('refused');
  });
});

describe('postpone', () => {
  it('moves the deadline for date_changed and not_started, back to PENDING with the reason', () => {
    for (const why of ['date_changed', 'not_started'] as const) {
      expect(
        decideManualAction(
          report({ status: 'OVERDUE' }),
          { type: 'postpone', reason: why, newDueAt: LATER },
          NOW,
        ),
      ).toEqual({
        ok: true,
        to: 'PENDING',
        dueAt: LATER,
        postponeReason: why,
        deliveredAt: 'unchanged',
      });
    }
  });

  it('clears the deadline for lost', () => {
    expect(
      decideManualAction(report({ status: 'OVERDUE' }), { type: 'postpone', reason: 'lost' }, NOW),
    ).toEqual({
      ok: true,
      to: 'PENDING',
      dueAt: null,
      postponeReason: 'lost',
      deliveredAt: 'unchanged',
    });
  });

  it('wants a future newDueAt for a new date, none for lost, and a known reason', () => {
    const bad = (a: ManualAction) => {
      const d = decideManualAction(report(), a, NOW);
      return d.ok ? 'ok' : `${d.refusal}: ${d.reason}`;
    };
    expect(bad({ type: 'postpone', reason: 'not_started' })).toBe(
      'invalid: reason not_started needs newDueAt, the new deadline',
    );
    expect(bad({ type: 'postpone', reason: 'date_changed', newDueAt: NOW })).toBe(
      'invalid: newDueAt must be in the future (it is 2026-12-01T00:00:00.000Z, now is 2026-12-01T00:00:00.000Z)',
    );
    expect(bad({ type: 'postpone', reason: 'date_changed', newDueAt: new Date('x') })).toMatch(
      /^invalid: newDueAt must be in the future \(it is not a date/,
    );
    expect(bad({ type: 'postpone', reason: 'lost', newDueAt: LATER })).toBe(
      'invalid: reason lost clears the deadline: send no newDueAt',
    );
    expect(bad({ type: 'postpone', reason: 'forgot' as 'lost' })).toBe(
      'invalid: reason must be one of date_changed, not_started, lost',
    );
  });
});

describe('mark-reported', () => {
  it('records the amount entered on the platform for reports that state one, and sets the delivery time', () => {
    expect(
      decideManualAction(report(), { type: 'mark-reported', amountExTax: 290_000 }, NOW),
    ).toEqual({ ok: true, to: 'REPORTED', deliveredAt: 'now', reportedAmount: 290_000 });
    expect(decideManualAction(report(), { type: 'mark-reported' }, NOW)).toEqual({
      ok: true,
      to: 'REPORTED',
      deliveredAt: 'now',
    });
  });

  it('refuses an amount for a report without one', () => {
    const d = decideManualAction(
      report({ kind: 'delivered', data: {} }),
      { type: 'mark-reported', amountExTax: 1 },
      NOW,
    );
    expect(d).toEqual({
      ok: false,
      refusal: 'invalid',
      reason:
        'amountExTax applies only to reports that state an amount (won, confirmed_amount, additional_order); this is a delivered report',
    });
  });

  it('keeps an earlier entry time when a status says the platform has the report', () => {
    const d = decideManualAction(report(), ACTIONS.review, NOW);
    expect(d).toEqual({ ok: true, to: 'UNDER_REVIEW', deliveredAt: 'if-unset' });
  });
});
