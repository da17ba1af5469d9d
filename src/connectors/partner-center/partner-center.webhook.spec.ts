import { loadConfig } from '../../config/app-config';
import { MalformedDeliveryError, WebhookProvider } from '../../ports/webhook-door.port';
import { PartnerCenterWebhook } from './partner-center.webhook';

const partnerCenter: WebhookProvider = new PartnerCenterWebhook(loadConfig({}));
const req = {
  rawBody: Buffer.alloc(0),
  headers: {},
  method: 'POST',
  url: '/webhooks/referrals/partner-center',
};

// The example of provider-facts §4.3 [PC-WHE].
const updated = {
  EventName: 'referral-updated',
  ResourceUri: 'https://api.partnercenter.microsoft.com/engagements/v1/referrals/7f1c0a2e-ref',
  ResourceName: 'referral',
  AuditUri: null,
  ResourceChangeUtcDate: '2018-02-17T00:05:39.5485487+00:00',
};

describe('PartnerCenterWebhook.normalize', () => {
  it('takes the referral id from the last segment of ResourceUri', () => {
    expect(partnerCenter.normalize('referral-updated', updated)).toEqual({
      source: 'partner-center',
      kind: 'referral.updated',
      occurredAt: '2018-02-17T00:05:39.548Z',
      subject: { referralId: '7f1c0a2e-ref', platform: 'partner-center' },
      data: { referralId: '7f1c0a2e-ref', resourceName: 'referral' },
    });
  });

  it('ignores a trailing slash and a query string in ResourceUri', () => {
    const n = partnerCenter.normalize('referral-created', {
      ...updated,
      EventName: 'referral-created',
      ResourceUri: 'https://api.partnercenter.microsoft.com/engagements/v1/referrals/abc-123/?x=1',
    });
    expect(n?.kind).toBe('referral.created');
    expect(n?.subject.referralId).toBe('abc-123');
  });

  it('ignores other events (e.g. test-created)', () => {
    expect(partnerCenter.normalize('test-created', updated)).toBeNull();
  });
});

describe('PartnerCenterWebhook.identify', () => {
  it('identity is EventName|ResourceUri|ResourceChangeUtcDate', () => {
    expect(partnerCenter.identify(updated, req)).toEqual([
      {
        providerEventId: `referral-updated|${updated.ResourceUri}|${updated.ResourceChangeUtcDate}`,
        type: 'referral-updated',
        payload: updated,
      },
    ]);
  });

  it('refuses an event without EventName, ResourceUri or ResourceChangeUtcDate', () => {
    for (const field of ['EventName', 'ResourceUri', 'ResourceChangeUtcDate']) {
      expect(() => partnerCenter.identify({ ...updated, [field]: undefined }, req)).toThrow(
        MalformedDeliveryError,
      );
    }
  });
});
