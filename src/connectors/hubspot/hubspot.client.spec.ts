import nock from 'nock';

import { PermanentError, TransientError } from '../../common/errors';
import { loadConfig } from '../../config/app-config';
import { countedStatuses, loggerStub, metricsStub } from '../connector-test-utils';
import { HubspotClient, mapHubspotError } from './hubspot.client';

const API = 'https://api.hubapi.com';

function setup(env: Record<string, string> = {}) {
  const { metrics, inc } = metricsStub();
  const config = loadConfig({ HUBSPOT_ACCESS_TOKEN: 'pat-na1-test', ...env });
  return { client: new HubspotClient(config, metrics, loggerStub()), inc };
}

function dealJson(associations: unknown) {
  return {
    id: '123',
    properties: {
      dealname: 'Website renewal',
      amount: '300000',
      deal_currency_code: 'JPY',
      dealstage: 'contractsent',
      pipeline: 'default',
      closedate: '2026-12-01T00:00:00Z',
      closeloop_billing_plan: '{"currency":"jpy"}',
      closeloop_referral_platform: 'generic',
      closeloop_referral_id: 'R-1',
      closeloop_cosell: 'true',
      description: 'Renewal of the corporate site',
      hs_object_id: '123',
    },
    createdAt: '2026-11-01T00:00:00Z',
    updatedAt: '2026-11-02T00:00:00Z',
    archived: false,
    associations,
  };
}

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

describe('HubspotClient.getDeal', () => {
  it('reads the deal with the contract properties and associations, then its primary contact and company', async () => {
    const { client, inc } = setup();
    const queries: URLSearchParams[] = [];
    const auth: (string | undefined)[] = [];
    const scope = nock(API)
      .get('/crm/v3/objects/deals/123')
      .query(true)
      .reply(function (uri) {
        queries.push(new URL(uri, API).searchParams);
        auth.push(this.req.headers.authorization as string | undefined);
        return [
          200,
          dealJson({
            contacts: {
              results: [
                { id: '201', type: 'deal_to_contact' },
                { id: '202', type: 'deal_to_contact_primary' },
              ],
            },
            companies: {
              results: [
                { id: '301', type: 'deal_to_company_unlabeled' },
                { id: '302', type: 'deal_to_company_primary' },
              ],
            },
          }),
        ];
      })
      .get('/crm/v3/objects/contacts/202')
      .query({ properties: ['email', 'firstname', 'lastname', 'phone'] })
      .reply(200, {
        id: '202',
        properties: {
          email: 'taro@example.jp',
          firstname: 'Taro',
          lastname: 'Yamada',
          phone: '+81 3 1234 5678',
        },
      })
      .get('/crm/v3/objects/companies/302')
      .query({ properties: ['name', 'address', 'address2', 'city', 'state', 'zip', 'country'] })
      .reply(200, {
        id: '302',
        properties: { name: 'ACME K.K.', city: 'Chiyoda-ku', zip: '100-0005', country: 'Japan' },
      });

    const deal = await client.getDeal('123');

    scope.done();
    expect(queries[0].getAll('properties')).toEqual([
      'dealname',
      'amount',
      'deal_currency_code',
      'dealstage',
      'pipeline',
      'closedate',
      'closeloop_billing_plan',
      'closeloop_referral_platform',
      'closeloop_referral_id',
      'closeloop_cosell',
      'description',
    ]);
    expect(queries[0].getAll('associations')).toEqual(['contacts', 'companies']);
    expect(auth[0]).toBe('Bearer pat-na1-test');
    expect(deal).toEqual({
      id: '123',
      properties: {
        dealname: 'Website renewal',
        amount: '300000',
        deal_currency_code: 'JPY',
        dealstage: 'contractsent',
        pipeline: 'default',
        closedate: '2026-12-01T00:00:00Z',
        closeloop_billing_plan: '{"currency":"jpy"}',
        closeloop_referral_platform: 'generic',
        closeloop_referral_id: 'R-1',
        closeloop_cosell: 'true',
        description: 'Renewal of the corporate site',
      },
      archived: false,
      contact: {
        id: '202',
        email: 'taro@example.jp',
        firstname: 'Taro',
        lastname: 'Yamada',
        phone: '+81 3 1234 5678',
      },
      company: {
        id: '302',
        name: 'ACME K.K.',
        address: null,
        address2: null,
        city: 'Chiyoda-ku',
        state: null,
        zip: '100-0005',
        country: 'Japan',
      },
    });
    expect(countedStatuses(inc)).toEqual(['200', '200', '200']);
  });

  it('takes the first association when none is primary, and none when there are none', async () => {
    const { client } = setup();
    nock(API)
      .get('/crm/v3/objects/deals/123')
      .query(true)
      .reply(200, dealJson({ contacts: { results: [{ id: '201', type: 'deal_to_contact' }] } }))
      .get('/crm/v3/objects/contacts/201')
      .query(true)
      .reply(200, { id: '201', properties: { email: 'a@example.jp' } });

    const deal = await client.getDeal('123');
    expect(deal?.contact).toEqual({
      id: '201',
      email: 'a@example.jp',
      firstname: null,
      lastname: null,
      phone: null,
    });
    expect(deal?.company).toBeUndefined();
  });

  it('returns null when HubSpot answers 404', async () => {
    const { client, inc } = setup();
    nock(API).get('/crm/v3/objects/deals/999').query(true).reply(404, {
      status: 'error',
      message: 'Object not found.  objectId are usually numeric.',
      category: 'OBJECT_NOT_FOUND',
    });
    await expect(client.getDeal('999')).resolves.toBeNull();
    expect(countedStatuses(inc)).toEqual(['404']);
  });

  it('429 TEN_SECONDLY_ROLLING → TransientError retrying after ~10 s', async () => {
    const { client } = setup();
    nock(API).get('/crm/v3/objects/deals/123').query(true).reply(
      429,
      {
        status: 'error',
        message: 'You have reached your ten_secondly_rolling limit.',
        errorType: 'RATE_LIMIT',
        category: 'RATE_LIMITS',
        policyName: 'TEN_SECONDLY_ROLLING',
      },
      { 'X-HubSpot-RateLimit-Remaining': '0' },
    );
    const err = await client.getDeal('123').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryAfterMs).toBe(10_000);
    expect((err as Error).message).toBe(
      'hubspot 429 RATE_LIMITS: You have reached your ten_secondly_rolling limit.',
    );
  });

  it('maps 5xx to TransientError, other 4xx to PermanentError', async () => {
    const { client } = setup();
    nock(API)
      .get('/crm/v3/objects/deals/1')
      .query(true)
      .reply(502, { status: 'error', message: 'Bad gateway' })
      .get('/crm/v3/objects/deals/3')
      .query(true)
      .reply(401, {
        status: 'error',
        message: 'Authentication credentials not found.',
        category: 'INVALID_AUTHENTICATION',
      });

    await expect(client.getDeal('1')).rejects.toBeInstanceOf(TransientError);
    const err = await client.getDeal('3').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toBe(
      'hubspot 401 INVALID_AUTHENTICATION: Authentication credentials not found.',
    );
  });

  it('a connection failure → TransientError, counted as error', async () => {
    // A real refused connection (nothing listens on port 1): no HTTP status at all.
    nock.enableNetConnect('127.0.0.1:1');
    try {
      const { client, inc } = setup({ HUBSPOT_API_BASE: 'http://127.0.0.1:1' });
      await expect(client.getDeal('2')).rejects.toBeInstanceOf(TransientError);
      expect(countedStatuses(inc)).toEqual(['error']);
    } finally {
      nock.disableNetConnect();
    }
  });

  it('talks to HUBSPOT_API_BASE when set', async () => {
    const { client } = setup({ HUBSPOT_API_BASE: 'http://127.0.0.1:12112/' });
    const scope = nock('http://127.0.0.1:12112')
      .get('/crm/v3/objects/deals/123')
      .query(true)
      .reply(200, dealJson(undefined));
    await expect(client.getDeal('123')).resolves.toMatchObject({ id: '123' });
    scope.done();
  });

  it('throws PermanentError when HubSpot is not configured', async () => {
    const { metrics } = metricsStub();
    const client = new HubspotClient(loadConfig({}), metrics, loggerStub());
    await expect(client.getDeal('1')).rejects.toThrow(
      new PermanentError('hubspot is not configured: set HUBSPOT_ACCESS_TOKEN'),
    );
  });
});

describe('HubspotClient writes', () => {
  it('updateDeal PATCHes the properties', async () => {
    const { client } = setup();
    let body: unknown;
    const scope = nock(API)
      .patch('/crm/v3/objects/deals/123', (b: unknown) => {
        body = b;
        return true;
      })
      .reply(200, { id: '123', properties: {} });
    await client.updateDeal('123', { dealstage: 'closedwon', amount: '300000' });
    scope.done();
    expect(body).toEqual({ properties: { dealstage: 'closedwon', amount: '300000' } });
  });

  it('createDeal POSTs the properties and returns the new id', async () => {
    const { client } = setup();
    let body: unknown;
    nock(API)
      .post('/crm/v3/objects/deals', (b: unknown) => {
        body = b;
        return true;
      })
      .reply(201, {
        id: '777',
        properties: {},
        createdAt: '2026-11-23T00:00:00Z',
        updatedAt: '2026-11-23T00:00:00Z',
      });
    await expect(
      client.createDeal({ dealname: 'Referral', closeloop_referral_id: 'R-1' }),
    ).resolves.toBe('777');
    expect(body).toEqual({
      properties: { dealname: 'Referral', closeloop_referral_id: 'R-1' },
      associations: [],
    });
  });

  it('findDealIds searches with one EQ filter and returns the ids', async () => {
    const { client } = setup();
    let body: unknown;
    nock(API)
      .post('/crm/v3/objects/deals/search', (b: unknown) => {
        body = b;
        return true;
      })
      .reply(200, {
        total: 1,
        results: [
          {
            id: '777',
            properties: { closeloop_referral_id: 'R-1' },
            createdAt: '2026-11-23T00:00:00Z',
            updatedAt: '2026-11-23T00:00:00Z',
            archived: false,
          },
        ],
      });
    await expect(client.findDealIds('closeloop_referral_id', 'R-1')).resolves.toEqual(['777']);
    expect(body).toMatchObject({
      filterGroups: [
        { filters: [{ propertyName: 'closeloop_referral_id', operator: 'EQ', value: 'R-1' }] },
      ],
    });
  });

  it('createNote associates the note with the deal (type 214, HUBSPOT_DEFINED)', async () => {
    const { client } = setup();
    let body: unknown;
    nock(API)
      .post('/crm/v3/objects/notes', (b: unknown) => {
        body = b;
        return true;
      })
      .reply(201, { id: 'note_1', properties: {} });
    const at = new Date('2026-11-23T10:00:00Z');
    await expect(client.createNote('123', 'Invoice A-0001 sent', at)).resolves.toBe('note_1');
    expect(body).toEqual({
      properties: { hs_note_body: 'Invoice A-0001 sent', hs_timestamp: '2026-11-23T10:00:00.000Z' },
      associations: [
        {
          to: { id: '123' },
          types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 214 }],
        },
      ],
    });
  });
});

describe('mapHubspotError 429 hints', () => {
  const now = Date.parse('2026-11-23T23:30:00Z');
  const exception = (body: unknown, headers: Record<string, string> = {}) =>
    Object.assign(new Error('HTTP-Code: 429'), { code: 429, body, headers });

  it('prefers Retry-After', () => {
    const err = mapHubspotError(
      exception({ policyName: 'TEN_SECONDLY_ROLLING' }, { 'retry-after': '3' }),
      now,
    );
    expect((err as TransientError).retryAfterMs).toBe(3000);
  });

  it('secondly limit → 1 s', () => {
    const err = mapHubspotError(
      exception({ message: 'You have reached your secondly limit.' }),
      now,
    );
    expect((err as TransientError).retryAfterMs).toBe(1000);
  });

  it('DAILY → transient until midnight UTC, capped at one hour', () => {
    const err = mapHubspotError(exception({ policyName: 'DAILY' }), now);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryAfterMs).toBe(30 * 60_000);
    const early = mapHubspotError(
      exception({ policyName: 'DAILY' }),
      Date.parse('2026-11-23T08:00:00Z'),
    );
    expect((early as TransientError).retryAfterMs).toBe(3_600_000);
  });
});
