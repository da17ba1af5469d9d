import { responseClock } from './referral-clock';

const created = new Date('2026-11-23T00:00:00Z');

describe('responseClock', () => {
  it('the platform deadline wins over every default', () => {
    expect(
      responseClock({
        deadline: '2026-11-24T12:00:00Z',
        deadlineField: 'expirationDateTime',
        status: 'New',
        substatus: 'Received',
        createdAt: created,
      }),
    ).toEqual({ respondBy: new Date('2026-11-24T12:00:00Z'), rule: 'expirationDateTime' });
  });

  it('a new referral has 72 hours', () => {
    expect(responseClock({ status: 'New', substatus: 'Pending', createdAt: created })).toEqual({
      respondBy: new Date('2026-11-26T00:00:00Z'),
      rule: 'default-new-72h',
    });
    // generic referrals without respondBy are new ones
    expect(responseClock({ createdAt: created })?.rule).toBe('default-new-72h');
  });

  it('a co-sell opportunity in the received stage has 14 days', () => {
    expect(responseClock({ status: 'New', substatus: 'Received', createdAt: created })).toEqual({
      respondBy: new Date('2026-12-07T00:00:00Z'),
      rule: 'default-cosell-14d',
    });
  });

  it('a referral in evaluation has 7 days from when it entered evaluation', () => {
    expect(
      responseClock({
        status: 'Active',
        substatus: 'Pending',
        createdAt: created,
        updatedAt: new Date('2026-11-25T00:00:00Z'),
      }),
    ).toEqual({ respondBy: new Date('2026-12-02T00:00:00Z'), rule: 'default-evaluation-7d' });
  });

  it('accepted or closed referrals have no clock', () => {
    expect(
      responseClock({ status: 'Active', substatus: 'Accepted', createdAt: created }),
    ).toBeNull();
    expect(responseClock({ status: 'Closed', substatus: 'Won', createdAt: created })).toBeNull();
  });

  it('an unreadable deadline falls back to the default window', () => {
    expect(
      responseClock({ deadline: 'soon', deadlineField: 'respondBy', createdAt: created })?.rule,
    ).toBe('default-new-72h');
  });
});
