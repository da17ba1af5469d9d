import { closeDateOf } from './crm-deal.handler';

describe("the CRM's close date as the deal's local date", () => {
  it('keeps a plain date', () => {
    expect(closeDateOf('2027-03-31', 'Asia/Tokyo')).toBe('2027-03-31');
  });

  it("reads a date-time (HubSpot's closedate) as its calendar day in the deal's zone", () => {
    // Midnight in Tokyo, as HubSpot stores a date picked by a user in Japan.
    expect(closeDateOf('2027-03-30T15:00:00.000Z', 'Asia/Tokyo')).toBe('2027-03-31');
    expect(closeDateOf('2027-03-31T00:00:00Z', 'Asia/Tokyo')).toBe('2027-03-31');
    expect(closeDateOf('2027-03-31T00:00:00Z', 'America/Los_Angeles')).toBe('2027-03-30');
    expect(closeDateOf('1806364800000', 'UTC')).toBe('2027-03-30');
  });

  it('has none for an empty value, and refuses what is not a date', () => {
    expect(closeDateOf(null, 'Asia/Tokyo')).toBeNull();
    expect(closeDateOf('  ', 'Asia/Tokyo')).toBeNull();
    expect(closeDateOf('2027-02-30', 'Asia/Tokyo')).toBeUndefined();
    expect(closeDateOf('soon', 'Asia/Tokyo')).toBeUndefined();
  });
});
