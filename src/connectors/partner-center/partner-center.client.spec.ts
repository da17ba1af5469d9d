import nock from 'nock';

import { PermanentError, TransientError } from '../../common/errors';
import { loadConfig } from '../../config/app-config';
import { countedStatuses, loggerStub, metricsStub } from '../connector-test-utils';
import {
  PartnerCenterClient,
  PartnerCenterNotFoundError,
  PartnerCenterPreconditionFailedError,
  referralIdFromResourceUri,
  statusPatch,
} from './partner-center.client';
import { JsonPatchOp } from './partner-center.types';

const API = 'https://api.partner.microsoft.com';
const LOGIN = 'https://login.microsoftonline.com';
const TOKEN_PATH = '/tenant-1/oauth2/token';
const REFERRAL_ID = '5ab7d1a6-0e5c-4b5a-8c8a-123456789abc';
const REFERRAL_PATH = `/v1.0/engagements/referrals/${REFERRAL_ID}`;

const ENV = {
  PARTNER_CENTER_TENANT_ID: 'tenant-1',
  PARTNER_CENTER_CLIENT_ID: 'client-1',
  PARTNER_CENTER_CLIENT_SECRET: 'secret-1',
  PARTNER_CENTER_REFRESH_TOKEN: 'refresh-0',
};

function setup(env: Record<string, string> = {}) {
  const { metrics, inc } = metricsStub();
  const config = loadConfig({ ...ENV, ...env });
  return { client: new PartnerCenterClient(config, metrics, loggerStub()), inc };
}

function referralJson(overrides: Record<string, unknown> = {}) {
  return {
    id: REFERRAL_ID,
    engagementId: 'eng-1',
    name: 'Contoso modernisation',
    status: 'New',
    substatus: 'Received',
    statusReason: null,
    type: 'Shared',
    qualification: 'SalesQualified',
    customerProfile: { name: 'Contoso K.K.', team: [{ firstName: 'Taro', email: 't@c.jp' }] },
    details: { notes: 'n', dealValue: 10000, currency: 'JPY', closingDateTime: null },
    createdDateTime: '2026-11-01T00:00:00Z',
    updatedDateTime: '2026-11-02T00:00:00Z',
    expirationDateTime: '2026-11-04T00:00:00Z',
    acceptedDateTime: null,
    eTag: '"etag-1"',
    ...overrides,
  };
}

/** Intercepts one token request; its form body is pushed to `bodies`. */
function tokenOnce(
  bodies: URLSearchParams[],
  reply: Record<string, unknown> = { access_token: 'at-1', expires_in: '3599' },
  path = TOKEN_PATH,
) {
  return nock(LOGIN)
    .matchHeader('content-type', /application\/x-www-form-urlencoded/)
    .post(path, (body: unknown) => {
      // nock hands a form body over parsed (an object); keep the raw string form working too.
      bodies.push(
        new URLSearchParams(typeof body === 'string' ? body : (body as Record<string, string>)),
      );
      return true;
    })
    .reply(200, { token_type: 'Bearer', ...reply });
}

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  nock.cleanAll();
  jest.restoreAllMocks();
});
afterAll(() => nock.enableNetConnect());

describe('PartnerCenterClient token (App+User, refresh-token grant)', () => {
  it('redeems the refresh token at the v1 endpoint for the Partner Center resource and reuses the token', async () => {
    const { client, inc } = setup();
    const bodies: URLSearchParams[] = [];
    const token = tokenOnce(bodies);
    const api = nock(API)
      .matchHeader('authorization', 'Bearer at-1')
      .get(REFERRAL_PATH)
      .twice()
      .reply(200, referralJson());

    const first = await client.getReferral(REFERRAL_ID);
    const second = await client.getReferral(REFERRAL_ID);

    expect(token.isDone()).toBe(true);
    expect(api.isDone()).toBe(true);
    expect(bodies).toHaveLength(1);
    expect(Object.fromEntries(bodies[0])).toEqual({
      grant_type: 'refresh_token',
      client_id: 'client-1',
      client_secret: 'secret-1',
      refresh_token: 'refresh-0',
      resource: 'https://api.partner.microsoft.com',
    });
    expect(first).toEqual(referralJson());
    expect(second.eTag).toBe('"etag-1"');
    expect(countedStatuses(inc)).toEqual(['200', '200', '200']);
  });

  it('shares one in-flight token request between concurrent callers', async () => {
    const { client } = setup();
    const bodies: URLSearchParams[] = [];
    tokenOnce(bodies);
    nock(API).get(REFERRAL_PATH).times(3).reply(200, referralJson());

    await Promise.all([
      client.getReferral(REFERRAL_ID),
      client.getReferral(REFERRAL_ID),
      client.getReferral(REFERRAL_ID),
    ]);
    expect(bodies).toHaveLength(1);
  });

  it('keeps the token until 5 minutes before expiry, then refreshes with the rotated refresh token', async () => {
    const { client } = setup();
    const t0 = Date.UTC(2026, 10, 1);
    const now = jest.spyOn(Date, 'now').mockReturnValue(t0);
    const bodies: URLSearchParams[] = [];
    tokenOnce(bodies, { access_token: 'at-1', expires_in: '3600', refresh_token: 'refresh-1' });
    nock(API)
      .matchHeader('authorization', 'Bearer at-1')
      .get(REFERRAL_PATH)
      .twice()
      .reply(200, referralJson());

    await client.getReferral(REFERRAL_ID);
    // 5 min + 1 s before expiry: still cached.
    now.mockReturnValue(t0 + (3600 - 301) * 1000);
    await client.getReferral(REFERRAL_ID);
    expect(bodies).toHaveLength(1);

    // 4 min 59 s before expiry: refreshed, with the refresh token Entra ID returned last time.
    now.mockReturnValue(t0 + (3600 - 299) * 1000);
    tokenOnce(bodies, { access_token: 'at-2', expires_in: 3600 });
    const api2 = nock(API)
      .matchHeader('authorization', 'Bearer at-2')
      .get(REFERRAL_PATH)
      .reply(200, referralJson());
    await client.getReferral(REFERRAL_ID);
    expect(api2.isDone()).toBe(true);
    expect(bodies).toHaveLength(2);
    expect(bodies[1].get('refresh_token')).toBe('refresh-1');
  });

  it('sends scope instead of resource when PARTNER_CENTER_TOKEN_URL is a v2 endpoint', async () => {
    const { client } = setup({
      PARTNER_CENTER_TOKEN_URL: `${LOGIN}/tenant-1/oauth2/v2.0/token`,
    });
    const bodies: URLSearchParams[] = [];
    tokenOnce(bodies, { access_token: 'at-1', expires_in: 3599 }, '/tenant-1/oauth2/v2.0/token');
    nock(API).get(REFERRAL_PATH).reply(200, referralJson());

    await client.getReferral(REFERRAL_ID);
    expect(bodies[0].get('scope')).toBe(
      'https://api.partner.microsoft.com/.default offline_access',
    );
    expect(bodies[0].has('resource')).toBe(false);
  });

  it('invalid_grant → PermanentError telling to renew PARTNER_CENTER_REFRESH_TOKEN', async () => {
    const { client } = setup();
    nock(LOGIN).post(TOKEN_PATH).reply(400, {
      error: 'invalid_grant',
      error_description: 'AADSTS700082: The refresh token has expired.\r\nTrace ID: x',
    });

    const err: unknown = await client.getReferral(REFERRAL_ID).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(/AADSTS700082/);
    expect((err as Error).message).toMatch(/renew PARTNER_CENTER_REFRESH_TOKEN/);
    expect((err as Error).message).not.toMatch(/Trace ID/);
  });

  it('a 503 from the token endpoint is transient and not cached as a failure', async () => {
    const { client } = setup();
    nock(LOGIN).post(TOKEN_PATH).reply(503, 'busy', { 'retry-after': '3' });
    const err: unknown = await client.getReferral(REFERRAL_ID).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryAfterMs).toBe(3000);

    tokenOnce([]);
    nock(API).get(REFERRAL_PATH).reply(200, referralJson());
    await expect(client.getReferral(REFERRAL_ID)).resolves.toMatchObject({ id: REFERRAL_ID });
  });

  it('unconfigured → PermanentError naming the variables, without any request', async () => {
    const { metrics } = metricsStub();
    const client = new PartnerCenterClient(loadConfig({}), metrics, loggerStub());
    await expect(client.getReferral(REFERRAL_ID)).rejects.toThrow(
      new PermanentError(
        'partner center is not configured: set PARTNER_CENTER_TENANT_ID, PARTNER_CENTER_CLIENT_ID, PARTNER_CENTER_CLIENT_SECRET, PARTNER_CENTER_REFRESH_TOKEN',
      ),
    );
  });
});

describe('PartnerCenterClient.getReferral', () => {
  it('calls the configured API base even when given a ResourceUri on another host', async () => {
    const { client } = setup({ PARTNER_CENTER_API_BASE: 'http://127.0.0.1:4010/' });
    tokenOnce([]);
    // No interceptor for evil.example: disableNetConnect makes any call there fail the test.
    const api = nock('http://127.0.0.1:4010').get(REFERRAL_PATH).reply(200, referralJson());

    const referral = await client.getReferral(
      `https://evil.example/engagements/v1/referrals/${REFERRAL_ID}`,
    );
    expect(api.isDone()).toBe(true);
    expect(referral.id).toBe(REFERRAL_ID);

    tokenOnce([]);
    const api2 = nock('http://127.0.0.1:4010').get(REFERRAL_PATH).reply(200, referralJson());
    await client.getReferral(referralIdFromResourceUri(`https://evil.example/x/${REFERRAL_ID}`));
    expect(api2.isDone()).toBe(true);
  });

  it('takes the eTag from the ETag header when the body has none', async () => {
    const { client } = setup();
    tokenOnce([]);
    nock(API)
      .get(REFERRAL_PATH)
      .reply(200, referralJson({ eTag: undefined }), { etag: 'W/"h-1"' });
    await expect(client.getReferral(REFERRAL_ID)).resolves.toMatchObject({ eTag: 'W/"h-1"' });
  });

  it('404 → PartnerCenterNotFoundError (permanent); 429 → transient with Retry-After', async () => {
    const { client } = setup();
    tokenOnce([]);
    nock(API)
      .get(REFERRAL_PATH)
      .reply(404, { code: 'NotFound', description: 'Referral not found' })
      .get(REFERRAL_PATH)
      .reply(429, { message: 'slow down' }, { 'retry-after': '7' });

    const notFound: unknown = await client.getReferral(REFERRAL_ID).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(PartnerCenterNotFoundError);
    expect(notFound).toBeInstanceOf(PermanentError);
    expect((notFound as Error).message).toBe('partner-center 404: NotFound: Referral not found');

    const limited: unknown = await client.getReferral(REFERRAL_ID).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(TransientError);
    expect((limited as TransientError).retryAfterMs).toBe(7000);
  });

  it('a network failure is transient', async () => {
    const { client, inc } = setup();
    tokenOnce([]);
    nock(API).get(REFERRAL_PATH).replyWithError({ code: 'ECONNRESET', message: 'socket hang up' });
    await expect(client.getReferral(REFERRAL_ID)).rejects.toBeInstanceOf(TransientError);
    expect(countedStatuses(inc)).toEqual(['200', 'error']);
  });

  it('refuses an id that is not a plain referral id, before any request', async () => {
    const { client } = setup();
    await expect(client.getReferral('../admin')).rejects.toThrow(PermanentError);
    await expect(client.getReferral('a b')).rejects.toThrow(PermanentError);
  });
});

describe('referralIdFromResourceUri', () => {
  it('returns the last path segment and ignores the host', () => {
    expect(
      referralIdFromResourceUri(
        `https://api.partnercenter.microsoft.com/engagements/v1/referrals/${REFERRAL_ID}`,
      ),
    ).toBe(REFERRAL_ID);
    expect(referralIdFromResourceUri(`https://evil.example/a/${REFERRAL_ID}?x=1#y`)).toBe(
      REFERRAL_ID,
    );
  });

  it.each([
    'https://api.partnercenter.microsoft.com/engagements/v1/referrals/',
    'https://x.example/referrals/..%2Fadmin',
    'https://x.example/referrals/a.b',
    'https://x.example/referrals/%2e%2e',
    `https://x.example/referrals/${REFERRAL_ID}/..`,
    `/engagements/v1/referrals/${REFERRAL_ID}`,
    '../admin',
    '',
  ])('refuses %j', (uri) => {
    expect(() => referralIdFromResourceUri(uri)).toThrow(PermanentError);
  });
});

describe('PartnerCenterClient.patchReferral', () => {
  const ops: JsonPatchOp[] = [
    { op: 'replace', path: '/status', value: 'Closed' },
    { op: 'replace', path: '/substatus', value: 'Won' },
  ];

  it('sends the JSON Patch array with Content-Type, If-Match and Prefer, and returns the representation', async () => {
    const { client } = setup();
    tokenOnce([]);
    let sent: { headers: Record<string, unknown>; body: unknown } | undefined;
    nock(API)
      .patch(REFERRAL_PATH)
      .reply(function (_uri, body) {
        sent = { headers: this.req.headers, body };
        return [200, referralJson({ status: 'Closed', substatus: 'Won', eTag: '"etag-2"' })];
      });

    const updated = await client.patchReferral(REFERRAL_ID, ops, '"etag-1"');

    expect(sent?.body).toEqual(ops);
    expect(sent?.headers['content-type']).toBe('application/json');
    expect(sent?.headers['if-match']).toBe('"etag-1"');
    expect(sent?.headers['prefer']).toBe('return=representation');
    expect(sent?.headers['authorization']).toBe('Bearer at-1');
    expect(updated).toMatchObject({ status: 'Closed', substatus: 'Won', eTag: '"etag-2"' });
  });

  it('sends no If-Match without an eTag, and re-reads when the answer has no body', async () => {
    const { client } = setup();
    tokenOnce([]);
    let headers: Record<string, unknown> = {};
    const scope = nock(API)
      .patch(REFERRAL_PATH)
      .reply(function () {
        headers = this.req.headers;
        return [204, ''];
      })
      .get(REFERRAL_PATH)
      .reply(200, referralJson({ status: 'Active' }));

    await expect(client.patchReferral(REFERRAL_ID, ops)).resolves.toMatchObject({
      status: 'Active',
    });
    expect(scope.isDone()).toBe(true);
    expect(headers).not.toHaveProperty('if-match');
  });

  it('412 (stale eTag) → transient PartnerCenterPreconditionFailedError saying to re-read', async () => {
    const { client } = setup();
    tokenOnce([]);
    nock(API).patch(REFERRAL_PATH).reply(412, { code: 'PreconditionFailed', description: 'eTag' });

    const err: unknown = await client
      .patchReferral(REFERRAL_ID, ops, '"old"')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PartnerCenterPreconditionFailedError);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toMatch(/re-read/);
  });

  it('401 → drops the token, refreshes once and retries once', async () => {
    const { client, inc } = setup();
    const bodies: URLSearchParams[] = [];
    tokenOnce(bodies, { access_token: 'at-1', expires_in: '3599' });
    tokenOnce(bodies, { access_token: 'at-2', expires_in: '3599' });
    const api = nock(API)
      .patch(REFERRAL_PATH)
      .matchHeader('authorization', 'Bearer at-1')
      .reply(401, { message: 'expired' })
      .patch(REFERRAL_PATH)
      .matchHeader('authorization', 'Bearer at-2')
      .reply(200, referralJson({ status: 'Closed' }));

    await expect(client.patchReferral(REFERRAL_ID, ops, '"e"')).resolves.toMatchObject({
      status: 'Closed',
    });
    expect(api.isDone()).toBe(true);
    expect(bodies).toHaveLength(2);
    expect(countedStatuses(inc)).toEqual(['200', '401', '200', '200']);
  });

  it('a second 401 is permanent (no endless refresh loop)', async () => {
    const { client } = setup();
    const bodies: URLSearchParams[] = [];
    tokenOnce(bodies, { access_token: 'at-1', expires_in: '3599' });
    tokenOnce(bodies, { access_token: 'at-2', expires_in: '3599' });
    nock(API).patch(REFERRAL_PATH).twice().reply(401, { message: 'no role' });

    const err: unknown = await client.patchReferral(REFERRAL_ID, ops).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(/no role/);
    expect(bodies).toHaveLength(2);
  });

  it("400 → PermanentError carrying Partner Center's message", async () => {
    const { client } = setup();
    tokenOnce([]);
    nock(API)
      .patch(REFERRAL_PATH)
      .reply(400, { code: 'BadRequest', description: 'Invalid substatus transition' });

    const err: unknown = await client.patchReferral(REFERRAL_ID, ops).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).not.toBeInstanceOf(TransientError);
    expect((err as Error).message).toBe(
      'partner-center 400: BadRequest: Invalid substatus transition',
    );
  });

  it('500 → TransientError', async () => {
    const { client } = setup();
    tokenOnce([]);
    nock(API).patch(REFERRAL_PATH).reply(500, 'oops');
    await expect(client.patchReferral(REFERRAL_ID, ops)).rejects.toBeInstanceOf(TransientError);
  });

  it.each(['remove', 'move', 'copy', 'test'])(
    'refuses a %s op before sending anything',
    async (op) => {
      const { client, inc } = setup();
      const bad = [...ops, { op, path: '/name', value: 'x' }] as unknown as JsonPatchOp[];
      const err: unknown = await client.patchReferral(REFERRAL_ID, bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as Error).message).toMatch(new RegExp(`"${op}" is not allowed`));
      expect(inc).not.toHaveBeenCalled();
    },
  );

  it('refuses an empty patch', async () => {
    const { client } = setup();
    await expect(client.patchReferral(REFERRAL_ID, [])).rejects.toThrow(PermanentError);
  });
});

describe('statusPatch', () => {
  it('won → Closed/Won with the deal value in major units and the currency', () => {
    expect(statusPatch('won', { dealValue: 300000, currency: 'jpy' })).toEqual([
      { op: 'replace', path: '/status', value: 'Closed' },
      { op: 'replace', path: '/substatus', value: 'Won' },
      { op: 'replace', path: '/details/dealValue', value: '300000' },
      { op: 'replace', path: '/details/currency', value: 'JPY' },
    ]);
    expect(statusPatch('won', { dealValue: 100050, currency: 'usd' })?.[2]).toEqual({
      op: 'replace',
      path: '/details/dealValue',
      value: '1000.50',
    });
    expect(statusPatch('won', { dealValue: 5, currency: 'USD' })?.[2].value).toBe('0.05');
  });

  it('won needs an integer value and a currency', () => {
    expect(() => statusPatch('won', { currency: 'JPY' })).toThrow(PermanentError);
    expect(() => statusPatch('won', { dealValue: 1.5, currency: 'JPY' })).toThrow(PermanentError);
    expect(() => statusPatch('won', { dealValue: 100 })).toThrow(PermanentError);
  });

  it('won carries the closing date when known, as UTC midnight of the date', () => {
    expect(
      statusPatch('won', { dealValue: 300000, currency: 'jpy', closingDate: '2027-03-31' })?.[4],
    ).toEqual({ op: 'replace', path: '/details/closingDateTime', value: '2027-03-31T00:00:00Z' });
  });

  it.each([
    ['lost', 'Lost', 'the customer chose another vendor'],
    ['declined', 'Declined', 'outside our expertise'],
    ['expired', 'Expired', "No response within 72 hours of the referral's creation"],
  ] as const)('%s → Closed/%s with the reason as statusReason', (kind, substatus, reason) => {
    expect(statusPatch(kind, { reason })).toEqual([
      { op: 'replace', path: '/status', value: 'Closed' },
      { op: 'replace', path: '/substatus', value: substatus },
      { op: 'replace', path: '/statusReason', value: reason },
    ]);
  });

  it('every close carries a statusReason, the reason on one line or a default', () => {
    expect(statusPatch('declined', { reason: '  too\n small\t budget ' })?.[2].value).toBe(
      'too small budget',
    );
    expect(statusPatch('declined')?.[2].value).toBe('Declined by the vendor');
    expect(statusPatch('lost', { reason: '   ' })?.[2].value).toBe('The customer did not proceed');
    expect(statusPatch('expired')?.[2].value).toBe('No response within the response window');
  });

  it.each(['accepted', 'engaged', 'appointment'] as const)(
    '%s → Active/Accepted with the deal value, currency and closing date',
    (kind) => {
      expect(
        statusPatch(kind, { dealValue: 3_000_000, currency: 'jpy', closingDate: '2027-03-31' }),
      ).toEqual([
        { op: 'replace', path: '/status', value: 'Active' },
        { op: 'replace', path: '/substatus', value: 'Accepted' },
        { op: 'replace', path: '/details/dealValue', value: '3000000' },
        { op: 'replace', path: '/details/currency', value: 'JPY' },
        { op: 'replace', path: '/details/closingDateTime', value: '2027-03-31T00:00:00Z' },
      ]);
    },
  );

  it('accepting without a known value or close date sends the status alone', () => {
    expect(statusPatch('appointment')).toEqual([
      { op: 'replace', path: '/status', value: 'Active' },
      { op: 'replace', path: '/substatus', value: 'Accepted' },
    ]);
    // A value without a usable currency, or an impossible date, is left out rather than guessed.
    expect(
      statusPatch('appointment', { dealValue: 100, closingDate: '2027-02-30' })?.map((o) => o.path),
    ).toEqual(['/status', '/substatus']);
  });

  it('in_evaluation → New/Received (the vendor is evaluating it)', () => {
    expect(statusPatch('in_evaluation')).toEqual([
      { op: 'replace', path: '/status', value: 'New' },
      { op: 'replace', path: '/substatus', value: 'Received' },
    ]);
  });

  it('lost_withdrawn → null (Partner Center cannot reopen a closed referral)', () => {
    expect(statusPatch('lost_withdrawn')).toBeNull();
  });

  it('other report kinds have no Partner Center status', () => {
    expect(() => statusPatch('delivered' as never)).toThrow(PermanentError);
  });
});
