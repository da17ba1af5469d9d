import { platformProfile } from '../domain/platforms';
import { expiryReason, outcomeOf, responseClock } from './referral-clock';

const created = new Date('2026-11-23T00:00:00Z');
const PC = 'partner-center-windows' as const;

describe('responseClock', () => {
  describe('Partner Center windows', () => {
    it('the platform deadline wins over every default', () => {
      expect(
        responseClock(PC, {
          deadline: '2026-11-24T12:00:00Z',
          deadlineField: 'expirationDateTime',
          status: 'New',
          substatus: 'Received',
          createdAt: created,
        }),
      ).toEqual({ respondBy: new Date('2026-11-24T12:00:00Z'), rule: 'expirationDateTime' });
    });

    it('a new referral has 72 hours', () => {
      expect(
        responseClock(PC, { status: 'New', substatus: 'Pending', createdAt: created }),
      ).toEqual({ respondBy: new Date('2026-11-26T00:00:00Z'), rule: 'default-new-72h' });
    });

    it('a co-sell opportunity in the received stage has 14 days', () => {
      expect(
        responseClock(PC, { status: 'New', substatus: 'Received', createdAt: created }),
      ).toEqual({ respondBy: new Date('2026-12-07T00:00:00Z'), rule: 'default-cosell-14d' });
    });

    it('a referral the vendor is evaluating has 7 days from when it said it is interested', () => {
      const since = new Date('2026-11-24T06:00:00Z');
      // The hub's own "interested" answer sends New/Received: the evaluation's window still rules.
      expect(
        responseClock(PC, {
          status: 'New',
          substatus: 'Received',
          createdAt: created,
          evaluatingSince: since,
        }),
      ).toEqual({ respondBy: new Date('2026-12-01T06:00:00Z'), rule: 'default-evaluation-7d' });
      // The new referral's deadline, passed before the evaluation began, is not the evaluation's.
      expect(
        responseClock(PC, {
          deadline: '2026-11-24T00:00:00Z',
          deadlineField: 'expirationDateTime',
          createdAt: created,
          evaluatingSince: since,
        })?.rule,
      ).toBe('default-evaluation-7d');
      // A later deadline the platform sets wins.
      expect(
        responseClock(PC, {
          deadline: '2026-11-28T00:00:00Z',
          deadlineField: 'expirationDateTime',
          createdAt: created,
          evaluatingSince: since,
        }),
      ).toEqual({ respondBy: new Date('2026-11-28T00:00:00Z'), rule: 'expirationDateTime' });
    });

    it('an active referral not yet accepted has 7 days from its last change', () => {
      expect(
        responseClock(PC, {
          status: 'Active',
          substatus: 'Pending',
          createdAt: created,
          updatedAt: new Date('2026-11-25T00:00:00Z'),
        }),
      ).toEqual({ respondBy: new Date('2026-12-02T00:00:00Z'), rule: 'default-evaluation-7d' });
    });

    it('accepted or closed referrals have no clock', () => {
      expect(
        responseClock(PC, { status: 'Active', substatus: 'Accepted', createdAt: created }),
      ).toBeNull();
      expect(
        responseClock(PC, { status: 'Closed', substatus: 'Won', createdAt: created }),
      ).toBeNull();
    });

    it('an unreadable deadline falls back to the default window', () => {
      expect(
        responseClock(PC, { deadline: 'soon', deadlineField: 'respondBy', createdAt: created })
          ?.rule,
      ).toBe('default-new-72h');
    });
  });

  describe('per platform profile', () => {
    const clockOf = (platform: string, respondBy?: string) =>
      responseClock(platformProfile(platform).responseClock, {
        deadline: respondBy,
        deadlineField: 'respondBy',
        createdAt: created,
      });

    it.each(['aimitsu', 'proni', 'PRONI', 'アイミツ'])(
      'PRONI アイミツ (%s) has no clock unless the referral gives respondBy',
      (name) => {
        expect(clockOf(name)).toBeNull();
        expect(clockOf(name, '2026-11-30T00:00:00Z')).toEqual({
          respondBy: new Date('2026-11-30T00:00:00Z'),
          rule: 'respondBy',
        });
      },
    );

    it('another platform gets respondBy, else 72 hours', () => {
      expect(clockOf('partner-network')).toEqual({
        respondBy: new Date('2026-11-26T00:00:00Z'),
        rule: 'default-new-72h',
      });
      expect(clockOf('partner-network', '2026-11-30T00:00:00Z')?.rule).toBe('respondBy');
    });

    it('Partner Center keeps its windows', () => {
      expect(platformProfile('partner-center').responseClock).toBe(PC);
      expect(clockOf('partner-center')?.rule).toBe('default-new-72h');
    });
  });
});

describe('what a referral becomes when its clock runs out', () => {
  it('a new referral whose 72 hours ran out failed; every other window expired', () => {
    expect(outcomeOf('default-new-72h')).toBe('FAILED');
    for (const rule of [
      'default-evaluation-7d',
      'default-cosell-14d',
      'expirationDateTime',
      'respondBy',
      null,
    ]) {
      expect(outcomeOf(rule)).toBe('EXPIRED');
    }
  });

  it('gives Partner Center a reason naming the window', () => {
    const due = new Date('2026-11-26T00:00:00Z');
    expect(expiryReason('default-new-72h', due)).toBe(
      "No response within 72 hours of the referral's creation (due 2026-11-26T00:00:00.000Z)",
    );
    expect(expiryReason('default-evaluation-7d', due)).toMatch(
      /^Not accepted or declined within 7 days/,
    );
    expect(expiryReason('expirationDateTime', due)).toMatch(
      /^No response within the response window/,
    );
  });
});
