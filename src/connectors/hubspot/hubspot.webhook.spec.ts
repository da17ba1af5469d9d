import { loadConfig } from '../../config/app-config';
import { MalformedDeliveryError, WebhookProvider } from '../../ports/webhook-door.port';
import { HubspotWebhook } from './hubspot.webhook';

const hubspot: WebhookProvider = new HubspotWebhook(
  loadConfig({ HUBSPOT_CLIENT_SECRET: 'secret' }),
);

const stageChange = {
  eventId: 3816279340,
  subscriptionId: 25,
  portalId: 33,
  appId: 1160452,
  occurredAt: 1462216307945,
  subscriptionType: 'deal.propertyChange',
  attemptNumber: 0,
  objectId: 1246965,
  propertyName: 'dealstage',
  propertyValue: 'closedwon',
  changeSource: 'CRM_UI',
};

describe('HubspotWebhook.normalize', () => {
  it('maps a dealstage change to crm.deal_stage_changed with the new stage and CRM deal id', () => {
    expect(hubspot.normalize('deal.propertyChange', stageChange)).toEqual({
      source: 'hubspot',
      kind: 'crm.deal_stage_changed',
      occurredAt: new Date(1462216307945).toISOString(),
      subject: { crmDealId: '1246965' },
      data: { portalId: '33', changeSource: 'CRM_UI', stage: 'closedwon' },
    });
  });

  it('ignores a change of any other property (null → IGNORED)', () => {
    expect(
      hubspot.normalize('deal.propertyChange', {
        ...stageChange,
        propertyName: 'amount',
        propertyValue: '5000',
      }),
    ).toBeNull();
  });

  it('maps a closeloop_cosell change to crm.deal_updated (the deal is read again, no stage)', () => {
    expect(
      hubspot.normalize('deal.propertyChange', {
        ...stageChange,
        propertyName: 'closeloop_cosell',
        propertyValue: 'true',
      }),
    ).toEqual({
      source: 'hubspot',
      kind: 'crm.deal_updated',
      occurredAt: new Date(1462216307945).toISOString(),
      subject: { crmDealId: '1246965' },
      data: { portalId: '33', changeSource: 'CRM_UI', property: 'closeloop_cosell' },
    });
  });

  it('maps deal.creation and deal.deletion', () => {
    const created = hubspot.normalize('deal.creation', { ...stageChange, propertyName: undefined });
    expect(created).toMatchObject({ kind: 'crm.deal_created', subject: { crmDealId: '1246965' } });
    expect(hubspot.normalize('deal.deletion', stageChange)).toMatchObject({
      kind: 'crm.deal_deleted',
      subject: { crmDealId: '1246965' },
    });
  });

  it('ignores types the hub does not use', () => {
    expect(hubspot.normalize('contact.creation', stageChange)).toBeNull();
    expect(hubspot.normalize('deal.merge', stageChange)).toBeNull();
  });
});

describe('HubspotWebhook.identify', () => {
  const req = { rawBody: Buffer.alloc(0), headers: {}, method: 'POST', url: '/webhooks/hubspot' };

  it('gives each element the composite identity portalId|subscriptionId|eventId|occurredAt|objectId', () => {
    const [event] = hubspot.identify([stageChange], req);
    expect(event).toEqual({
      providerEventId: '33|25|3816279340|1462216307945|1246965',
      type: 'deal.propertyChange',
      payload: stageChange,
    });
  });

  it('two elements sharing an eventId but not the rest are two identities', () => {
    const other = { ...stageChange, objectId: 99 };
    const ids = hubspot.identify([stageChange, other], req).map((e) => e.providerEventId);
    expect(new Set(ids).size).toBe(2);
  });

  it('accepts the type in eventType when subscriptionType is absent', () => {
    const { subscriptionType: _omit, ...rest } = stageChange;
    const [event] = hubspot.identify([{ ...rest, eventType: 'deal.creation' }], req);
    expect(event.type).toBe('deal.creation');
  });

  it.each([
    ['not an array', { ...stageChange }],
    [
      'more than 100 events',
      Array.from({ length: 101 }, (_, i) => ({ ...stageChange, eventId: i })),
    ],
  ])('refuses %s (not a batch at all)', (_what, body) => {
    expect(() => hubspot.identify(body, req)).toThrow(MalformedDeliveryError);
  });

  it('an empty batch identifies nothing (answered 2xx: HubSpot would retry a 4xx for a day)', () => {
    expect(hubspot.identify([], req)).toEqual([]);
  });

  it('skips, one by one, the elements it cannot identify or type; the stage change beside them stays', () => {
    const association = {
      eventId: 1,
      subscriptionId: 30,
      portalId: 33,
      occurredAt: 1462216307945,
      subscriptionType: 'deal.associationChange',
      fromObjectId: 1246965,
      toObjectId: 77,
      associationType: 'DEAL_TO_CONTACT',
    };
    const events = hubspot.identify(
      [
        association,
        stageChange,
        { ...stageChange, eventId: undefined },
        { ...stageChange, subscriptionType: undefined },
        42,
      ],
      req,
    );
    expect(events.map((e) => e.skip ?? e.providerEventId)).toEqual([
      'HubSpot event #0 (deal.associationChange) has no objectId',
      '33|25|3816279340|1462216307945|1246965',
      'HubSpot event #2 (deal.propertyChange) has no eventId',
      'HubSpot event #3 has no subscriptionType',
      'HubSpot event #4 has no portalId, subscriptionId, eventId, occurredAt, objectId, subscriptionType',
    ]);
  });
});

describe('HubspotWebhook.normalize: occurredAt', () => {
  it('is never later than now: a stamp from the future becomes the time it is read', () => {
    const before = Date.now();
    const ev = hubspot.normalize('deal.propertyChange', {
      ...stageChange,
      occurredAt: 32503680000000, // year 3000
    });
    expect(Date.parse(ev!.occurredAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(ev!.occurredAt)).toBeLessThanOrEqual(Date.now());
  });

  it('a stamp that is not epoch milliseconds becomes now as well', () => {
    const ev = hubspot.normalize('deal.creation', { ...stageChange, occurredAt: '1e400' });
    expect(Math.abs(Date.parse(ev!.occurredAt) - Date.now())).toBeLessThan(5000);
  });
});
