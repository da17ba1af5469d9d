import { PermanentError } from '../../common/errors';
import { loadConfig } from '../../config/app-config';
import { MalformedDeliveryError } from '../../ports/webhook-door.port';
import { GenericReferralWebhook } from './generic-referral.webhook';
import { MilestonesWebhook } from './milestones.webhook';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const config = loadConfig({ MILESTONE_WEBHOOK_SECRET: SECRET, REFERRAL_WEBHOOK_SECRET: SECRET });
const milestones = new MilestonesWebhook(config);
const referrals = new GenericReferralWebhook(config);
const req = (id?: string) => ({
  rawBody: Buffer.alloc(0),
  headers: id ? { 'webhook-id': id } : {},
  method: 'POST',
  url: '/webhooks/milestones',
});

const accepted = {
  type: 'milestone.accepted',
  data: {
    dealId: 'cl_deal_1',
    crmDealId: '12345',
    itemKey: 'design',
    acceptedAt: '2026-11-23T10:00:00Z',
    acceptedBy: 'client@example.com',
    progressPercent: 100,
  },
};

describe('MilestonesWebhook.normalize', () => {
  it('maps milestone.accepted with its deal ids and acceptance time', () => {
    expect(milestones.normalize('milestone.accepted', accepted)).toEqual({
      source: 'milestones',
      kind: 'milestone.accepted',
      occurredAt: '2026-11-23T10:00:00.000Z',
      subject: { dealId: 'cl_deal_1', crmDealId: '12345' },
      data: accepted.data,
    });
  });

  it('crmDealId alone identifies the deal', () => {
    const n = milestones.normalize('milestone.progress', {
      data: { crmDealId: '12345', itemKey: 'build', progressPercent: 40 },
    });
    expect(n?.subject).toEqual({ dealId: undefined, crmDealId: '12345' });
  });

  it.each([
    ['no deal id at all', 'milestone.accepted', { itemKey: 'design' }],
    ['no itemKey', 'milestone.accepted', { dealId: 'cl_deal_1' }],
    ['a bad acceptedAt', 'milestone.accepted', { dealId: 'd', itemKey: 'k', acceptedAt: 'soon' }],
    [
      'progress over 100',
      'milestone.progress',
      { dealId: 'd', itemKey: 'k', progressPercent: 150 },
    ],
    ['an empty items list', 'order.additional', { dealId: 'd', description: 'more', items: [] }],
    ['no deliveredOn', 'delivery.completed', { dealId: 'd' }],
    ['no data', 'milestone.rejected', undefined],
  ])('throws PermanentError for %s', (_what, type, data) => {
    expect(() => milestones.normalize(type, { type, data })).toThrow(PermanentError);
  });

  it('names the invalid field in the error', () => {
    expect(() =>
      milestones.normalize('milestone.accepted', { data: { dealId: 'cl_deal_1' } }),
    ).toThrow(/invalid milestone\.accepted payload: itemKey/);
  });

  it('ignores unknown types', () => {
    expect(milestones.normalize('milestone.exploded', accepted)).toBeNull();
  });
});

describe('MilestonesWebhook.identify (Standard Webhooks: identity is webhook-id)', () => {
  it('takes the webhook-id header as identity and the body type', () => {
    expect(milestones.identify(accepted, req('msg_1'))).toEqual([
      { providerEventId: 'msg_1', type: 'milestone.accepted', payload: accepted },
    ]);
  });

  it('refuses a body without type, or a request without webhook-id', () => {
    expect(() => milestones.identify({ data: {} }, req('msg_1'))).toThrow(MalformedDeliveryError);
    expect(() => milestones.identify(accepted, req())).toThrow(MalformedDeliveryError);
  });
});

describe('GenericReferralWebhook.normalize', () => {
  const created = {
    type: 'referral.created',
    data: {
      referralId: 'ref-1',
      platform: 'imitsu',
      customer: { name: 'ACME K.K.', email: 'buyer@acme.example' },
      title: 'Website renewal',
      estimatedValue: 3000000,
      currency: 'JPY',
      respondBy: '2026-11-30T00:00:00Z',
    },
  };

  it('maps referral.created with the referral as subject', () => {
    const n = referrals.normalize('referral.created', created);
    expect(n?.kind).toBe('referral.created');
    expect(n?.subject).toEqual({ referralId: 'ref-1', platform: 'imitsu' });
    expect(n?.data).toEqual(created.data);
  });

  it('throws PermanentError for an invalid referral', () => {
    const bad = { ...created, data: { ...created.data, customer: { email: 'not-an-email' } } };
    expect(() => referrals.normalize('referral.updated', bad)).toThrow(PermanentError);
  });

  it('ignores other types', () => {
    expect(referrals.normalize('referral.deleted', created)).toBeNull();
  });
});
