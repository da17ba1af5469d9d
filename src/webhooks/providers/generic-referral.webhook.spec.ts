import { PermanentError } from '../../common/errors';
import { AppConfig } from '../../config/app-config';
import { GenericReferralWebhook } from './generic-referral.webhook';

describe('GenericReferralWebhook.normalize: estimatedValue of real size', () => {
  const door = new GenericReferralWebhook({} as AppConfig);
  const payload = (estimatedValue: number) => ({
    type: 'referral.created',
    timestamp: '2026-12-01T00:00:00Z',
    data: {
      referralId: 'R-big',
      platform: 'partner-network',
      customer: { name: '株式会社ビッグ' },
      title: 'Core banking renewal',
      estimatedValue,
      currency: 'jpy',
    },
  });

  it('takes an estimated value up to 999,999,999,999 exactly', () => {
    const ev = door.normalize('referral.created', payload(999_999_999_999));
    expect(ev?.data.estimatedValue).toBe(999_999_999_999);
    expect(door.normalize('referral.created', payload(3_000_000_000))?.data.estimatedValue).toBe(
      3_000_000_000,
    );
  });

  it('refuses 1,000,000,000,000 (permanently: a retry cannot fix the payload)', () => {
    expect(() => door.normalize('referral.created', payload(1_000_000_000_000))).toThrow(
      PermanentError,
    );
    expect(() => door.normalize('referral.created', payload(1_000_000_000_000))).toThrow(
      /estimatedValue: must be at most 999999999999/,
    );
  });
});
