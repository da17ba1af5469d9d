import { PermanentError } from '../../common/errors';
import { AppConfig } from '../../config/app-config';
import { MalformedDeliveryError } from '../../ports/webhook-door.port';
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

describe('GenericReferralWebhook: built-in platform names are refused (CONTRACT §3.5)', () => {
  const door = new GenericReferralWebhook({} as AppConfig);
  const req = {
    rawBody: Buffer.alloc(0),
    headers: { 'webhook-id': 'msg_1' },
    method: 'POST',
    url: '/webhooks/referrals/generic',
  };
  const body = (platform: unknown) => ({
    type: 'referral.created',
    data: { referralId: 'R-1', platform, customer: { name: 'Contoso' }, title: 'Migration' },
  });

  it.each([
    'partner-center',
    'Partner-Center',
    'partner_center',
    ' PARTNER CENTER ',
    'ｐａｒｔｎｅｒ-center',
  ])('%j is refused at the door (400, nothing stored)', (platform) => {
    expect(() => door.identify(body(platform), req)).toThrow(MalformedDeliveryError);
    expect(() => door.identify(body(platform), req)).toThrow(/built-in platform/);
  });

  it('any other platform name passes the door', () => {
    expect(door.identify(body('aimitsu'), req)).toHaveLength(1);
    expect(door.identify(body('partner-center-jp'), req)).toHaveLength(1);
  });

  it('an event stored before the rule is refused when processed (permanent, never applied)', () => {
    expect(() => door.normalize('referral.created', body('partner-center'))).toThrow(
      PermanentError,
    );
  });
});
