import { LifecycleTrigger, TimedTrigger, foldStage } from '../domain/deal-stage';
import { stageFacts } from './report-facts';

const t = (minute: number, trigger: LifecycleTrigger, seq = minute): TimedTrigger => ({
  trigger,
  at: new Date(Date.UTC(2026, 10, 23, 10, minute)),
  seq,
});
const crm = (target: 'APPOINTMENT' | 'NEGOTIATING' | 'CONTRACT_SENT' | 'WON' | 'LOST') =>
  ({ type: 'crm.stage', target }) as const;

function factsOf(triggers: TimedTrigger[], delivered?: Date) {
  return stageFacts(foldStage('REFERRED', triggers).steps, delivered).map((f) => f.key);
}

/** Every order of a list (the arrival orders a set of events can take). */
function permutations<T>(list: T[]): T[][] {
  if (list.length <= 1) return [list];
  return list.flatMap((x, i) =>
    permutations([...list.slice(0, i), ...list.slice(i + 1)]).map((rest) => [x, ...rest]),
  );
}

describe('stageFacts', () => {
  it('a deal won through the CRM and a signature owes appointment and won, once each', () => {
    const history = [
      t(1, crm('APPOINTMENT')),
      t(2, crm('NEGOTIATING')),
      t(3, crm('CONTRACT_SENT')),
      t(4, { type: 'envelope.completed' }),
      t(5, crm('WON')),
    ];
    expect(factsOf(history)).toEqual(['appointment', 'won']);
  });

  it('numbers each loss and its withdrawal', () => {
    const history = [
      t(1, crm('APPOINTMENT')),
      t(2, crm('LOST')),
      t(3, crm('NEGOTIATING')),
      t(4, { type: 'envelope.declined' }),
      t(5, { type: 'envelope.completed' }),
    ];
    const facts = stageFacts(foldStage('REFERRED', history).steps);
    expect(facts.map((f) => [f.key, f.cause])).toEqual([
      ['appointment', undefined],
      ['lost|1', 'crm.stage'],
      ['lost_withdrawn|1', 'crm.stage'],
      ['lost|2', 'envelope.declined'],
      ['lost_withdrawn|2', 'envelope.completed'],
      ['won', undefined],
    ]);
  });

  it('says of each loss whether it came before an appointment or after one (失注報告)', () => {
    const history = [
      t(1, crm('LOST')),
      t(2, crm('APPOINTMENT')),
      t(3, crm('LOST')),
      t(4, crm('NEGOTIATING')),
      t(5, { type: 'envelope.declined' }),
    ];
    const facts = stageFacts(foldStage('REFERRED', history).steps);
    expect(facts.filter((f) => f.kind === 'lost').map((f) => [f.key, f.lostStage])).toEqual([
      ['lost|1', 'before_appointment'],
      ['lost|2', 'after_appointment'],
      ['lost|3', 'after_appointment'],
    ]);
    // Only losses say it.
    expect(facts.filter((f) => f.kind !== 'lost').every((f) => f.lostStage === undefined)).toBe(
      true,
    );
  });

  it('a loss before any meeting owes no appointment report', () => {
    expect(factsOf([t(1, crm('LOST'))])).toEqual(['lost|1']);
  });

  it('the same facts whatever order the events arrive in', () => {
    const history = [
      t(1, crm('APPOINTMENT'), 1),
      t(2, crm('LOST'), 2),
      t(3, crm('NEGOTIATING'), 3),
      t(4, { type: 'envelope.completed' }, 4),
    ];
    const expected = factsOf(history);
    expect(expected).toEqual(['appointment', 'lost|1', 'lost_withdrawn|1', 'won']);
    for (const arrival of permutations(history)) {
      const seqd = arrival.map((x, i) => ({ ...x, seq: i }));
      expect(factsOf(seqd)).toEqual(expected);
    }
  });

  it('a duplicate of an event adds no fact', () => {
    const once = [t(1, crm('APPOINTMENT')), t(2, crm('LOST'))];
    const twice = [...once, t(2, crm('LOST'), 99), t(1, crm('APPOINTMENT'), 98)];
    expect(factsOf(twice)).toEqual(factsOf(once));
  });

  it('a declined referral owes a declined report and nothing else, however the deal moves on', () => {
    const history = [
      t(1, { type: 'referral.declined' }),
      t(2, crm('APPOINTMENT')),
      t(3, { type: 'envelope.completed' }),
    ];
    expect(foldStage('REFERRED', history).stage).toBe('WON');
    expect(factsOf(history)).toEqual(['declined']);
    expect(factsOf(history, new Date('2026-12-01T00:00:00Z'))).toEqual(['declined']);
  });

  it('an expired referral owes an expired report and nothing else, in any arrival order', () => {
    const history = [
      t(1, { type: 'referral.expired' }, 1),
      t(2, crm('APPOINTMENT'), 2),
      t(3, crm('LOST'), 3),
      t(4, crm('NEGOTIATING'), 4),
    ];
    for (const arrival of permutations(history)) {
      const facts = stageFacts(
        foldStage(
          'REFERRED',
          arrival.map((x, i) => ({ ...x, seq: i })),
        ).steps,
      );
      expect(facts.map((f) => [f.kind, f.key, f.cause])).toEqual([
        ['expired', 'expired', 'referral.expired'],
      ]);
    }
  });

  it('engaged before the deadline, a late expiry is refused and owes nothing', () => {
    expect(factsOf([t(1, crm('APPOINTMENT')), t(2, { type: 'referral.expired' })])).toEqual([
      'appointment',
    ]);
  });

  it('delivered only for a won deal', () => {
    const at = new Date('2026-12-01T00:00:00Z');
    expect(factsOf([t(1, { type: 'envelope.completed' })], at)).toEqual([
      'appointment',
      'won',
      'delivered',
    ]);
    expect(factsOf([t(1, crm('NEGOTIATING'))], at)).toEqual(['appointment']);
  });
});
