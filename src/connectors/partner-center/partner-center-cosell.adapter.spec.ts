import nock from 'nock';

import { PermanentError, TransientError } from '../../common/errors';
import { loadConfig } from '../../config/app-config';
import { OutboundReferral } from '../../ports/referral-platform.port';
import { loggerStub, metricsStub } from '../connector-test-utils';
import { PartnerCenterCosellAdapter } from './partner-center-cosell.adapter';
import {
  cosellReferralBody,
  countryCode,
  externalReferenceFilter,
  missingCosellFields,
} from './partner-center-cosell.mapper';
import { PartnerCenterClient } from './partner-center.client';

const API = 'https://api.partner.microsoft.com';
const LOGIN = 'https://login.microsoftonline.com';
const REFERRALS = '/v1.0/engagements/referrals';

const ENV = {
  PARTNER_CENTER_TENANT_ID: 'tenant-1',
  PARTNER_CENTER_CLIENT_ID: 'client-1',
  PARTNER_CENTER_CLIENT_SECRET: 'secret-1',
  PARTNER_CENTER_REFRESH_TOKEN: 'refresh-0',
};

/** A CRM deal with everything Partner Center asks for (HubSpot deal 53000000001). */
function request(overrides: Partial<OutboundReferral> = {}): OutboundReferral {
  return {
    externalReference: '53000000001',
    title: 'Contoso data platform',
    customer: {
      name: 'Contoso K.K.',
      address: {
        line1: '1-2-3 Marunouchi',
        line2: null,
        city: 'Chiyoda-ku',
        state: 'Tokyo',
        postalCode: '100-0005',
        country: 'Japan',
      },
    },
    contact: {
      firstName: 'Hanako',
      lastName: 'Yamada',
      email: 'hanako.yamada@contoso.example',
      phone: '+81-3-0000-0000',
    },
    value: 1_200_000,
    currency: 'jpy',
    closeDate: '2027-03-31',
    notes: 'Migrate the warehouse to Azure',
    ...overrides,
  };
}

function setup() {
  const { metrics } = metricsStub();
  const config = loadConfig(ENV);
  const client = new PartnerCenterClient(config, metrics, loggerStub());
  return { client, adapter: new PartnerCenterCosellAdapter(client, config) };
}

function token() {
  return nock(LOGIN)
    .post('/tenant-1/oauth2/token')
    .reply(200, { token_type: 'Bearer', access_token: 'at-1', expires_in: '3599' });
}

function created(body: Record<string, unknown>) {
  return {
    id: '4111fffc-f9ee-4d53-bba6-569135228642',
    engagementId: '37ef26aa-1d15-4533-9f93-a69bd33ab1e5',
    ...body,
    createdDateTime: '2026-11-23T02:05:23.2931817Z',
    updatedDateTime: '2026-11-23T02:05:23.2931817Z',
    acceptedDateTime: '2026-11-23T02:05:23.2931817Z',
    status: 'Active',
    substatus: 'Accepted',
    direction: 'Outgoing',
    eTag: '"00006d10-0000-0000-0000-5c70aa630000"',
  };
}

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

describe('the co-sell referral body (POST /v1.0/engagements/referrals)', () => {
  it('maps every field Partner Center requires, one by one', () => {
    expect(cosellReferralBody(request())).toEqual({
      name: 'Contoso data platform',
      externalReferenceId: '53000000001',
      type: 'Shared',
      qualification: 'SalesQualified',
      customerProfile: {
        name: 'Contoso K.K.',
        address: {
          addressLine1: '1-2-3 Marunouchi',
          city: 'Chiyoda-ku',
          state: 'Tokyo',
          postalCode: '100-0005',
          country: 'JP',
        },
        team: [
          {
            firstName: 'Hanako',
            lastName: 'Yamada',
            email: 'hanako.yamada@contoso.example',
            phoneNumber: '+81-3-0000-0000',
          },
        ],
      },
      consent: {
        consentToShareInfoWithOthers: true,
        consentToToShareInfoWithOthers: true,
        consentToContact: true,
        consentToShareReferralWithMicrosoftSellers: true,
      },
      details: {
        notes: 'Migrate the warehouse to Azure',
        dealValue: 1200000,
        currency: 'JPY',
        closingDateTime: '2027-03-31T00:00:00Z',
      },
    });
  });

  it('writes the value in major units of the currency', () => {
    expect(cosellReferralBody(request({ value: 100050, currency: 'usd' })).details).toMatchObject({
      dealValue: 1000.5,
      currency: 'USD',
    });
  });

  it('names every missing required field, in words for the person who fills them in', () => {
    const bare = request({
      customer: { name: ' ', address: null },
      contact: { email: 'a@b.example' },
      value: null,
      closeDate: null,
    });
    expect(missingCosellFields(bare)).toEqual([
      'the company name',
      "the company's country",
      "the contact's first name",
      "the contact's last name",
      'the amount',
      'the close date',
    ]);
    expect(() => cosellReferralBody(bare)).toThrow(PermanentError);
    expect(() => cosellReferralBody(bare)).toThrow(
      "the co-sell referral needs the company name, the company's country, the contact's first name, the contact's last name, the amount, the close date",
    );
    expect(missingCosellFields(request({ contact: null }))).toEqual([
      "the contact's e-mail",
      "the contact's first name",
      "the contact's last name",
    ]);
  });

  it('refuses a country it cannot name and a close date that is not a date', () => {
    expect(
      missingCosellFields(
        request({
          customer: { name: 'X', address: { country: 'Atlantis' } },
          closeDate: 'next spring',
        }),
      ),
    ).toEqual([
      'a country Partner Center knows ("Atlantis")',
      'a close date as YYYY-MM-DD ("next spring")',
    ]);
  });

  it('reads countries as CRMs hold them: codes and English or Japanese names', () => {
    expect(countryCode('jp')).toBe('JP');
    expect(countryCode('Japan')).toBe('JP');
    expect(countryCode('日本')).toBe('JP');
    expect(countryCode('United States')).toBe('US');
    expect(countryCode('USA')).toBe('US');
    expect(countryCode('UK')).toBe('GB');
    expect(countryCode('Germany')).toBe('DE');
    expect(countryCode('ZZ')).toBeUndefined();
    expect(countryCode('Narnia')).toBeUndefined();
  });

  it('quotes the external id as an OData string literal', () => {
    expect(externalReferenceFilter('53000000001')).toBe("externalReferenceId eq '53000000001'");
    expect(externalReferenceFilter("o'brien")).toBe("externalReferenceId eq 'o''brien'");
  });
});

describe('PartnerCenterCosellAdapter over the REST API (nock)', () => {
  it('POSTs the body as JSON with the bearer token and returns the created referral', async () => {
    const { adapter } = setup();
    let sent: Record<string, unknown> | undefined;
    let headers: Record<string, unknown> = {};
    token();
    nock(API)
      .post(REFERRALS, (body: Record<string, unknown>) => {
        sent = body;
        return true;
      })
      .reply(function (_uri, body) {
        headers = this.req.headers;
        return [201, created(body as Record<string, unknown>)];
      });

    const referral = await adapter.create(request());

    expect(sent).toEqual(cosellReferralBody(request()));
    expect(headers.authorization).toBe('Bearer at-1');
    expect(headers['content-type']).toBe('application/json');
    expect(referral).toMatchObject({
      id: '4111fffc-f9ee-4d53-bba6-569135228642',
      status: 'Active',
      substatus: 'Accepted',
      eTag: '"00006d10-0000-0000-0000-5c70aa630000"',
      externalReference: '53000000001',
      customerName: 'Contoso K.K.',
      customerEmail: 'hanako.yamada@contoso.example',
      estimatedValue: 1_200_000,
      currency: 'jpy',
      createdAt: new Date('2026-11-23T02:05:23.293Z'),
    });
  });

  it('sends nothing when a required field is missing', async () => {
    const { adapter } = setup();
    token();
    nock(API).post(REFERRALS).reply(201, created({}));
    await expect(adapter.create(request({ closeDate: null }))).rejects.toThrow(
      'the co-sell referral needs the close date',
    );
    // Neither the token nor the POST was asked for.
    expect(nock.pendingMocks()).toHaveLength(2);
  });

  it('maps Partner Center refusing the body to a permanent error with its message', async () => {
    const { adapter } = setup();
    token();
    nock(API)
      .post(REFERRALS)
      .reply(400, {
        error: { code: 'InvalidInput', message: 'customerProfile.address.country is required' },
      });
    const err = (await adapter.create(request()).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toBe(
      'partner-center 400: InvalidInput: customerProfile.address.country is required',
    );
  });

  it('a 503 on the POST is transient (the retry searches before posting again)', async () => {
    const { adapter } = setup();
    token();
    nock(API)
      .post(REFERRALS)
      .reply(503, { error: { code: 'Busy', message: 'try later' } });
    await expect(adapter.create(request())).rejects.toBeInstanceOf(TransientError);
  });

  it('finds the referrals of a CRM deal with $filter=externalReferenceId eq …, and only those', async () => {
    const { adapter } = setup();
    const queries: URLSearchParams[] = [];
    token();
    nock(API)
      .get(REFERRALS)
      .query(true)
      .reply(function (uri) {
        queries.push(new URL(uri, API).searchParams);
        return [
          200,
          {
            value: [
              created({ name: 'mine', externalReferenceId: '53000000001' }),
              // A filter Partner Center ignored must not adopt another deal's referral.
              { ...created({ name: 'other' }), id: 'other-1', externalReferenceId: '999' },
            ],
          },
        ];
      });

    const found = await adapter.findByExternalReference('53000000001');

    expect(queries[0].get('$filter')).toBe("externalReferenceId eq '53000000001'");
    expect(found.map((r) => [r.id, r.title])).toEqual([
      ['4111fffc-f9ee-4d53-bba6-569135228642', 'mine'],
    ]);
  });

  it('finds nothing in an empty list', async () => {
    const { adapter } = setup();
    token();
    nock(API).get(REFERRALS).query(true).reply(200, { value: [] });
    await expect(adapter.findByExternalReference('53000000001')).resolves.toEqual([]);
  });
});
