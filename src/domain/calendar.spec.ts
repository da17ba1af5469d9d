import {
  ScheduleError,
  addDaysInZone,
  localDate,
  monthlyPeriodsDue,
  monthlySchedule,
  nextMonthlyDate,
  startOfLocalDay,
} from './calendar';

const TOKYO = 'Asia/Tokyo';
const NEW_YORK = 'America/New_York';
const at = (iso: string) => new Date(iso);
const periods = (list: { period: string }[]) => list.map((p) => p.period);

describe('monthlyPeriodsDue — Asia/Tokyo month boundary', () => {
  const item = { startOn: '2026-11-30', months: 3 };

  it('nothing is due one second before 00:00 JST on the billing day', () => {
    expect(monthlyPeriodsDue(item, at('2026-11-29T14:59:59Z'), TOKYO)).toEqual([]);
  });

  it('the first month is due at 00:00 JST (15:00 UTC the day before)', () => {
    expect(monthlyPeriodsDue(item, at('2026-11-29T15:00:00Z'), TOKYO)).toEqual([
      { period: '2026-11', dueAt: at('2026-11-29T15:00:00Z'), billingDate: '2026-11-30' },
    ]);
  });

  it('the second month follows on the 30th of December, JST', () => {
    expect(periods(monthlyPeriodsDue(item, at('2026-12-29T14:59:59Z'), TOKYO))).toEqual([
      '2026-11',
    ]);
    expect(periods(monthlyPeriodsDue(item, at('2026-12-29T15:00:00Z'), TOKYO))).toEqual([
      '2026-11',
      '2026-12',
    ]);
    expect(monthlyPeriodsDue(item, at('2026-12-30T15:00:00Z'), TOKYO)).toEqual([
      { period: '2026-11', dueAt: at('2026-11-29T15:00:00Z'), billingDate: '2026-11-30' },
      { period: '2026-12', dueAt: at('2026-12-29T15:00:00Z'), billingDate: '2026-12-30' },
    ]);
  });

  it('in UTC the same instants give a different answer', () => {
    expect(monthlyPeriodsDue(item, at('2026-11-29T15:00:00Z'), 'UTC')).toEqual([]);
    expect(monthlyPeriodsDue(item, at('2026-11-30T00:00:00Z'), 'UTC')).toEqual([
      { period: '2026-11', dueAt: at('2026-11-30T00:00:00Z'), billingDate: '2026-11-30' },
    ]);
  });

  it('labels the period with the local month of the billing day', () => {
    // 2026-12-01 00:00 JST is still November in UTC
    expect(
      monthlyPeriodsDue({ startOn: '2026-12-01', months: 1 }, at('2026-11-30T15:00:00Z'), TOKYO),
    ).toEqual([
      { period: '2026-12', dueAt: at('2026-11-30T15:00:00Z'), billingDate: '2026-12-01' },
    ]);
  });

  it('lists every month once all are due, and no more than `months`', () => {
    expect(periods(monthlyPeriodsDue(item, at('2030-01-01T00:00:00Z'), TOKYO))).toEqual([
      '2026-11',
      '2026-12',
      '2027-01',
    ]);
  });
});

describe('monthlySchedule — month-end clamping', () => {
  it('clamps the 31st to the last day of shorter months', () => {
    const schedule = monthlySchedule({ startOn: '2026-01-31', months: 5 }, TOKYO);
    expect(schedule.map((p) => p.billingDate)).toEqual([
      '2026-01-31',
      '2026-02-28',
      '2026-03-31',
      '2026-04-30',
      '2026-05-31',
    ]);
    expect(schedule[1]).toEqual({
      period: '2026-02',
      dueAt: at('2026-02-27T15:00:00Z'),
      billingDate: '2026-02-28',
    });
  });

  it('uses 29 February in a leap year', () => {
    expect(
      monthlySchedule({ startOn: '2028-01-30', months: 3 }, TOKYO).map((p) => p.billingDate),
    ).toEqual(['2028-01-30', '2028-02-29', '2028-03-30']);
  });

  it('returns to the 30th after February, across a year end', () => {
    expect(
      monthlySchedule({ startOn: '2026-11-30', months: 5 }, TOKYO).map((p) => p.billingDate),
    ).toEqual(['2026-11-30', '2026-12-30', '2027-01-30', '2027-02-28', '2027-03-30']);
  });

  it('is due from the clamped day', () => {
    const item = { startOn: '2026-01-31', months: 3 };
    expect(periods(monthlyPeriodsDue(item, at('2026-02-27T14:59:59Z'), TOKYO))).toEqual([
      '2026-01',
    ]);
    expect(periods(monthlyPeriodsDue(item, at('2026-02-27T15:00:00Z'), TOKYO))).toEqual([
      '2026-01',
      '2026-02',
    ]);
  });
});

describe('monthlyPeriodsDue — a US zone with DST', () => {
  // New York: EDT (UTC-4) until 2026-11-01 02:00, then EST (UTC-5); EST → EDT on 2026-03-08.
  const item = { startOn: '2026-10-01', months: 3 };

  it('midnight moves from 04:00Z to 05:00Z when DST ends', () => {
    expect(monthlySchedule(item, NEW_YORK).map((p) => p.dueAt)).toEqual([
      at('2026-10-01T04:00:00Z'),
      at('2026-11-01T04:00:00Z'),
      at('2026-12-01T05:00:00Z'),
    ]);
  });

  it('December is not due at 23:30 on 30 November local (04:30Z)', () => {
    expect(periods(monthlyPeriodsDue(item, at('2026-12-01T04:30:00Z'), NEW_YORK))).toEqual([
      '2026-10',
      '2026-11',
    ]);
    expect(periods(monthlyPeriodsDue(item, at('2026-12-01T05:00:00Z'), NEW_YORK))).toEqual([
      '2026-10',
      '2026-11',
      '2026-12',
    ]);
  });

  it('the day DST starts still begins at 00:00 EST', () => {
    expect(monthlySchedule({ startOn: '2026-03-08', months: 2 }, NEW_YORK)).toEqual([
      { period: '2026-03', dueAt: at('2026-03-08T05:00:00Z'), billingDate: '2026-03-08' },
      { period: '2026-04', dueAt: at('2026-04-08T04:00:00Z'), billingDate: '2026-04-08' },
    ]);
  });
});

describe('nextMonthlyDate', () => {
  const item = { startOn: '2026-11-30', months: 2 };

  it('is the first month not yet due', () => {
    expect(nextMonthlyDate(item, at('2026-11-29T14:59:59Z'), TOKYO)).toEqual({
      period: '2026-11',
      dueAt: at('2026-11-29T15:00:00Z'),
      billingDate: '2026-11-30',
    });
    expect(nextMonthlyDate(item, at('2026-11-29T15:00:00Z'), TOKYO)?.billingDate).toBe(
      '2026-12-30',
    );
  });

  it('is null once every month is due', () => {
    expect(nextMonthlyDate(item, at('2026-12-29T15:00:00Z'), TOKYO)).toBeNull();
  });

  it('stops at an early end: no month after endMonth is listed, due or next', () => {
    const ended = { startOn: '2026-11-30', months: 6, endMonth: '2027-01' };
    expect(monthlySchedule(ended, TOKYO).map((p) => p.period)).toEqual([
      '2026-11',
      '2026-12',
      '2027-01',
    ]);
    expect(nextMonthlyDate(ended, at('2026-12-29T15:00:00Z'), TOKYO)?.period).toBe('2027-01');
    expect(nextMonthlyDate(ended, at('2027-01-29T15:00:00Z'), TOKYO)).toBeNull();
    expect(
      monthlyPeriodsDue(ended, at('2027-12-31T00:00:00Z'), TOKYO).map((p) => p.period),
    ).toEqual(['2026-11', '2026-12', '2027-01']);
  });

  it('follows DST in New York', () => {
    const ny = { startOn: '2026-10-01', months: 3 };
    expect(nextMonthlyDate(ny, at('2026-12-01T04:59:59Z'), NEW_YORK)?.billingDate).toBe(
      '2026-12-01',
    );
    expect(nextMonthlyDate(ny, at('2026-12-01T05:00:00Z'), NEW_YORK)).toBeNull();
  });
});

describe('localDate', () => {
  it('is the calendar day in the zone', () => {
    expect(localDate(at('2026-11-29T15:00:00Z'), TOKYO)).toBe('2026-11-30');
    expect(localDate(at('2026-11-29T14:59:59Z'), TOKYO)).toBe('2026-11-29');
    expect(localDate(at('2026-11-29T15:00:00Z'), 'UTC')).toBe('2026-11-29');
    expect(localDate(at('2026-12-01T04:30:00Z'), NEW_YORK)).toBe('2026-11-30');
  });
});

describe('addDaysInZone', () => {
  it('adds calendar days, keeping the local time across DST', () => {
    // 12:00 EST on 7 March + 1 day = 12:00 EDT on 8 March: 23 hours later
    expect(addDaysInZone(at('2026-03-07T17:00:00Z'), 1, NEW_YORK)).toEqual(
      at('2026-03-08T16:00:00Z'),
    );
    // 12:00 EDT on 31 October + 1 day = 12:00 EST on 1 November: 25 hours later
    expect(addDaysInZone(at('2026-10-31T16:00:00Z'), 1, NEW_YORK)).toEqual(
      at('2026-11-01T17:00:00Z'),
    );
  });

  it('is plain 24-hour days in Tokyo, and accepts negative days', () => {
    expect(addDaysInZone(at('2026-11-29T15:00:00Z'), 5, TOKYO)).toEqual(at('2026-12-04T15:00:00Z'));
    expect(addDaysInZone(at('2026-11-29T15:00:00Z'), -30, TOKYO)).toEqual(
      at('2026-10-30T15:00:00Z'),
    );
  });

  it('refuses fractional days', () => {
    expect(() => addDaysInZone(at('2026-11-29T15:00:00Z'), 1.5, TOKYO)).toThrow(
      new ScheduleError('days must be an integer (got 1.5)'),
    );
  });
});

describe('startOfLocalDay', () => {
  it('is 00:00 local as a UTC instant', () => {
    expect(startOfLocalDay('2026-11-30', TOKYO)).toEqual(at('2026-11-29T15:00:00Z'));
    expect(startOfLocalDay('2026-11-30', 'UTC')).toEqual(at('2026-11-30T00:00:00Z'));
    expect(startOfLocalDay('2026-07-01', NEW_YORK)).toEqual(at('2026-07-01T04:00:00Z'));
    expect(startOfLocalDay('2026-01-01', NEW_YORK)).toEqual(at('2026-01-01T05:00:00Z'));
  });

  it('is the first instant of the day when DST skips midnight (Chile, 6 September 2026)', () => {
    expect(startOfLocalDay('2026-09-06', 'America/Santiago')).toEqual(at('2026-09-06T04:00:00Z'));
  });

  it('refuses malformed or impossible dates', () => {
    expect(() => startOfLocalDay('2026-02-30', TOKYO)).toThrow(
      new ScheduleError('date must be a valid date in YYYY-MM-DD form (got "2026-02-30")'),
    );
    expect(() => startOfLocalDay('2026-2-3', TOKYO)).toThrow(ScheduleError);
    expect(() => startOfLocalDay('2026-11-30T00:00', TOKYO)).toThrow(ScheduleError);
  });
});

describe('validation', () => {
  it('throws for unknown time zones', () => {
    const error = new ScheduleError('unknown time zone "Mars/Olympus"');
    expect(() =>
      monthlyPeriodsDue({ startOn: '2026-01-01', months: 1 }, new Date(), 'Mars/Olympus'),
    ).toThrow(error);
    expect(() =>
      nextMonthlyDate({ startOn: '2026-01-01', months: 1 }, new Date(), 'Mars/Olympus'),
    ).toThrow(error);
    expect(() => localDate(new Date(), 'Mars/Olympus')).toThrow(error);
    expect(() => addDaysInZone(new Date(), 1, 'Mars/Olympus')).toThrow(error);
    expect(() => startOfLocalDay('2026-01-01', 'Mars/Olympus')).toThrow(error);
    expect(() => localDate(new Date(), '')).toThrow(ScheduleError);
    expect(() => localDate(new Date(), 'UTC+9')).toThrow(ScheduleError);
  });

  it('throws for a bad startOn, months or instant', () => {
    expect(() => monthlySchedule({ startOn: '2026-13-01', months: 1 }, TOKYO)).toThrow(
      new ScheduleError('startOn must be a valid date in YYYY-MM-DD form (got "2026-13-01")'),
    );
    expect(() => monthlySchedule({ startOn: '2026-01-01', months: 0 }, TOKYO)).toThrow(
      new ScheduleError('months must be a positive integer (got 0)'),
    );
    expect(() => monthlySchedule({ startOn: '2026-01-01', months: 1.5 }, TOKYO)).toThrow(
      ScheduleError,
    );
    expect(() =>
      monthlyPeriodsDue({ startOn: '2026-01-01', months: 1 }, new Date('nope'), TOKYO),
    ).toThrow(new ScheduleError('now must be a valid Date'));
  });
});
