import { AdminErrorCode } from './admin-error-code';
import { eventPurged, purgeNote } from './purged-event';

describe('purged events', () => {
  const receivedAt = new Date('2026-01-01T10:00:00.000Z');

  it('has no note while the payload is kept', () => {
    expect(purgeNote({ id: 'evt_1', receivedAt, purgedAt: null })).toBeNull();
  });

  it('says when the payload was purged and how many whole days after receipt', () => {
    const purgedAt = new Date('2027-02-05T09:59:59.000Z'); // 400 days minus a second
    expect(purgeNote({ id: 'evt_1', receivedAt, purgedAt })).toBe(
      'payload, headers, normalized event and last error purged on 2027-02-05 (399 days after it was received, RETENTION_DAYS)',
    );
  });

  it('refuses a replay with 410 EVENT_PURGED naming the event', () => {
    const err = eventPurged({
      id: 'evt_1',
      receivedAt,
      purgedAt: new Date('2027-02-06T11:00:00Z'),
    });
    expect(err.getStatus()).toBe(410);
    expect(err.code).toBe(AdminErrorCode.EventPurged);
    expect(err.getResponse()).toEqual({
      error: {
        code: 'EVENT_PURGED',
        message:
          'event evt_1 cannot be replayed: its payload, headers, normalized event and last error purged on 2027-02-06 (401 days after it was received, RETENTION_DAYS)',
      },
    });
  });
});
