import { loadConfig } from '../config/app-config';
import { ManualClock, ShiftedClock, SystemClock } from './clock';
import { PeriodicPass } from './periodic-pass';

describe('Clock', () => {
  it('SystemClock reads real time', () => {
    const before = Date.now();
    const t = new SystemClock().now().getTime();
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Date.now());
  });

  it('ShiftedClock starts at the given instant and runs at real speed', async () => {
    const start = new Date('2026-10-01T00:00:00.000Z');
    const clock = new ShiftedClock(start);
    const first = clock.nowMs();
    expect(first - start.getTime()).toBeGreaterThanOrEqual(0);
    expect(first - start.getTime()).toBeLessThan(1_000);
    await new Promise((r) => setTimeout(r, 30));
    const elapsed = clock.nowMs() - first;
    expect(elapsed).toBeGreaterThanOrEqual(25);
    expect(elapsed).toBeLessThan(1_000);
  });

  it('ManualClock stands still until set or advanced', () => {
    const clock = new ManualClock('2027-02-28T14:59:59.999Z');
    expect(clock.now().toISOString()).toBe('2027-02-28T14:59:59.999Z');
    clock.advance(1);
    expect(clock.now().toISOString()).toBe('2027-02-28T15:00:00.000Z');
    clock.set('2030-01-01T00:00:00Z');
    expect(clock.nowMs()).toBe(Date.parse('2030-01-01T00:00:00Z'));
  });

  it('CLOCK_START is an ISO instant (offset required), absent by default', () => {
    expect(loadConfig({}).env.CLOCK_START).toBeUndefined();
    expect(loadConfig({ CLOCK_START: '2026-11-01T09:00:00+09:00' }).env.CLOCK_START).toEqual(
      new Date('2026-11-01T00:00:00Z'),
    );
    expect(() => loadConfig({ CLOCK_START: '2026-11-01' })).toThrow(
      /CLOCK_START: must be an ISO 8601 instant/,
    );
  });
});

describe('PeriodicPass', () => {
  it("gives every pass the clock's time, never the machine's", async () => {
    const clock = new ManualClock('2031-05-05T05:05:05.000Z');
    const seen: string[] = [];
    const pass = new PeriodicPass(
      5,
      clock,
      async (now) => {
        seen.push(now.toISOString());
        clock.advance(60_000);
      },
      (err) => {
        throw err;
      },
    );
    pass.start();
    await new Promise((r) => setTimeout(r, 60));
    await pass.stop();
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen[0]).toBe('2031-05-05T05:05:05.000Z');
    expect(seen[1]).toBe('2031-05-05T05:06:05.000Z');
  });
});
