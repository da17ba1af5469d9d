import {
  CrmTarget,
  DEAL_STAGES,
  DealStage,
  LifecycleTrigger,
  TRIGGER_TYPES,
  TimedTrigger,
  deriveStage,
  foldStage,
  transition,
} from './deal-stage';

const crm = (target: CrmTarget): LifecycleTrigger => ({ type: 'crm.stage', target });
const COLUMNS: [string, LifecycleTrigger][] = [
  ['crm:APPOINTMENT', crm('APPOINTMENT')],
  ['crm:NEGOTIATING', crm('NEGOTIATING')],
  ['crm:CONTRACT_SENT', crm('CONTRACT_SENT')],
  ['crm:WON', crm('WON')],
  ['crm:LOST', crm('LOST')],
  ['envelope.sent', { type: 'envelope.sent' }],
  ['envelope.completed', { type: 'envelope.completed' }],
  ['envelope.declined', { type: 'envelope.declined' }],
  ['envelope.voided', { type: 'envelope.voided' }],
  ['referral.accepted', { type: 'referral.accepted' }],
  ['referral.declined', { type: 'referral.declined' }],
  ['referral.expired', { type: 'referral.expired' }],
  ['delivery.completed', { type: 'delivery.completed' }],
  ['invoices.settled', { type: 'invoices.settled' }],
];

// Every stage × every trigger, written out: a stage name = move there ("*" = the loss is
// withdrawn), "=" = stay (duplicate or late), "!" = refused with a reason.
const A = 'APPOINTMENT',
  N = 'NEGOTIATING',
  C = 'CONTRACT_SENT',
  W = 'WON',
  L = 'LOST';
const TABLE: Record<DealStage, string[]> = {
  //             crmA   crmN   crmC   crmW   crmL   sent compl decl  void  rAcc  rDecl       rExp       deliv        settled
  REFERRED: /**/ [A, N, C, W, L, C, W, L, L, A, 'DECLINED', 'EXPIRED', '!', '!'],
  APPOINTMENT: [`=`, N, C, W, L, C, W, L, L, '=', '!', '!', '!', '!'],
  NEGOTIATING: [A, '=', C, W, L, C, W, L, L, '=', '!', '!', '!', '!'],
  CONTRACT_SENT: [A, N, '=', W, L, '=', W, L, L, '=', '!', '!', '!', '!'],
  WON: ['!', '!', '!', '=', '!', '=', '=', '!', '!', '=', '!', '!', 'DELIVERED', '!'],
  DELIVERED: ['!', '!', '!', '=', '!', '=', '=', '!', '!', '=', '!', '!', '=', 'CLOSED'],
  CLOSED: ['!', '!', '!', '=', '!', '=', '=', '!', '!', '=', '!', '!', '=', '='],
  LOST: [`${A}*`, `${N}*`, `${C}*`, `${W}*`, '=', '!', `${W}*`, '=', '=', '=', '!', '!', '!', '!'],
  DECLINED: ['!', '!', '!', '!', '!', '!', '!', '!', '!', '!', '=', '!', '!', '!'],
  EXPIRED: ['!', '!', '!', '!', '!', '!', '!', '!', '!', '!', '!', '=', '!', '!'],
};

describe('the deal transition table', () => {
  const cases = DEAL_STAGES.flatMap((stage) =>
    COLUMNS.map(([name, trigger], i) => ({ stage, name, trigger, expected: TABLE[stage][i] })),
  );

  it('covers every stage and every trigger', () => {
    expect(Object.keys(TABLE).sort()).toEqual([...DEAL_STAGES].sort());
    for (const row of Object.values(TABLE)) expect(row).toHaveLength(COLUMNS.length);
    expect(cases).toHaveLength(DEAL_STAGES.length * COLUMNS.length);
  });

  it.each(cases)('$stage + $name → $expected', ({ stage, trigger, expected }) => {
    const d = transition(stage, trigger);
    if (expected === '=') expect(d).toEqual({ kind: 'stay' });
    else if (expected === '!') {
      expect(d.kind).toBe('refuse');
      expect(d.kind === 'refuse' && d.reason.length).toBeGreaterThan(10);
    } else if (expected.endsWith('*'))
      expect(d).toEqual({ kind: 'move', to: expected.slice(0, -1), lossWithdrawn: true });
    else expect(d).toEqual({ kind: 'move', to: expected });
  });

  it('names the stage in a refusal so the timeline explains it', () => {
    const d = transition('WON', crm('NEGOTIATING'));
    expect(d).toEqual({
      kind: 'refuse',
      reason: 'the deal is WON: the CRM cannot move it back to NEGOTIATING',
    });
  });
});

describe('folding triggers in occurrence order', () => {
  const at = (minute: number) => new Date(Date.UTC(2026, 10, 23, 10, minute));
  const t = (trigger: LifecycleTrigger, minute: number, seq: number): TimedTrigger => ({
    trigger,
    at: at(minute),
    seq,
  });

  function permutations<T>(list: T[]): T[][] {
    if (list.length <= 1) return [list];
    return list.flatMap((x, i) =>
      permutations([...list.slice(0, i), ...list.slice(i + 1)]).map((p) => [x, ...p]),
    );
  }

  const scenarios: { name: string; triggers: TimedTrigger[]; final: DealStage }[] = [
    {
      name: 'the happy path',
      triggers: [
        t(crm('APPOINTMENT'), 1, 1),
        t(crm('NEGOTIATING'), 2, 2),
        t(crm('CONTRACT_SENT'), 3, 3),
        t({ type: 'envelope.sent' }, 4, 4),
        t({ type: 'envelope.completed' }, 5, 5),
        t(crm('WON'), 6, 6),
      ],
      final: 'WON',
    },
    {
      name: 'a decline after the CRM moved to contract sent',
      triggers: [
        t(crm('NEGOTIATING'), 1, 1),
        t(crm('CONTRACT_SENT'), 2, 2),
        t({ type: 'envelope.declined' }, 3, 3),
      ],
      final: 'LOST',
    },
    {
      name: 'a loss withdrawn by a later CRM stage',
      triggers: [t(crm('CONTRACT_SENT'), 1, 1), t(crm('LOST'), 2, 2), t(crm('NEGOTIATING'), 3, 3)],
      final: 'NEGOTIATING',
    },
    {
      name: 'a CRM loss after the signature',
      triggers: [
        t(crm('CONTRACT_SENT'), 1, 1),
        t({ type: 'envelope.completed' }, 2, 2),
        t(crm('LOST'), 3, 3),
      ],
      final: 'WON',
    },
  ];

  it.each(scenarios)('$name: every arrival order gives $final', ({ triggers, final }) => {
    for (const order of permutations(triggers)) {
      // Arrival order changes seq only for equal times; the times decide.
      const arrived = order.map((x, i) => ({ ...x, seq: i }));
      expect(foldStage('REFERRED', arrived).stage).toBe(final);
    }
  });

  it('reports each step with the stage it started from', () => {
    const { steps } = foldStage('REFERRED', [
      t({ type: 'envelope.completed' }, 2, 1),
      t(crm('NEGOTIATING'), 1, 2),
    ]);
    expect(steps.map((s) => [s.from, s.decision.kind])).toEqual([
      ['REFERRED', 'move'],
      ['NEGOTIATING', 'move'],
    ]);
  });

  it('breaks ties between equal times by arrival', () => {
    const same = at(5);
    const { stage } = foldStage('NEGOTIATING', [
      { trigger: crm('LOST'), at: same, seq: 2 },
      { trigger: crm('CONTRACT_SENT'), at: same, seq: 1 },
    ]);
    expect(stage).toBe('LOST');
  });
});

describe('derived stages', () => {
  it('delivers a won deal and closes it once everything is settled', () => {
    expect(deriveStage('WON', { delivered: true, settled: true }).stage).toBe('CLOSED');
    expect(deriveStage('WON', { delivered: true, settled: false }).stage).toBe('DELIVERED');
    expect(deriveStage('WON', { delivered: false, settled: true }).stage).toBe('WON');
    expect(deriveStage('NEGOTIATING', { delivered: true, settled: true }).stage).toBe(
      'NEGOTIATING',
    );
  });
});

describe('a confirmed loss (PRONI まだ未定 → 失注)', () => {
  const confirmed = (invoiced: boolean): LifecycleTrigger => ({ type: 'loss.confirmed', invoiced });

  it.each(['REFERRED', 'APPOINTMENT', 'NEGOTIATING', 'CONTRACT_SENT'] as const)(
    'moves an open deal (%s) to LOST, invoices or not',
    (stage) => {
      expect(transition(stage, confirmed(false))).toEqual({ kind: 'move', to: 'LOST' });
      expect(transition(stage, confirmed(true))).toEqual({ kind: 'move', to: 'LOST' });
    },
  );

  it('moves a WON deal without an invoice to LOST, and refuses one with invoices', () => {
    expect(transition('WON', confirmed(false))).toEqual({ kind: 'move', to: 'LOST' });
    expect(transition('WON', confirmed(true))).toEqual({
      kind: 'refuse',
      reason: 'the deal is WON and has invoices: a deal with invoices is not lost',
    });
  });

  it.each(['DELIVERED', 'CLOSED'] as const)('refuses a %s deal', (stage) => {
    expect(transition(stage, confirmed(false))).toEqual({
      kind: 'refuse',
      reason: `the deal is ${stage}: a delivered deal is not lost`,
    });
  });

  it('stays LOST, and treats a closed referral as a CRM loss does', () => {
    expect(transition('LOST', confirmed(false))).toEqual({ kind: 'stay' });
    for (const stage of ['DECLINED', 'EXPIRED'] as const) {
      expect(transition(stage, confirmed(false))).toEqual(
        transition(stage, { type: 'crm.stage', target: 'LOST' }),
      );
    }
  });

  it('is a trigger type the settle step stores and folds', () => {
    expect(TRIGGER_TYPES).toContain('loss.confirmed');
    const at = (minute: number) => new Date(Date.UTC(2026, 10, 23, 10, minute));
    const { stage } = foldStage('REFERRED', [
      { trigger: { type: 'envelope.completed' }, at: at(1), seq: 1 },
      { trigger: confirmed(false), at: at(2), seq: 2 },
    ]);
    expect(stage).toBe('LOST');
  });
});
