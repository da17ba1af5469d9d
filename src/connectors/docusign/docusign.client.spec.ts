import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import jwt from 'jsonwebtoken';
import nock from 'nock';

import { PermanentError, TransientError } from '../../common/errors';
import { loadConfig } from '../../config/app-config';
import { countedStatuses, loggerStub, metricsStub } from '../connector-test-utils';
import { DocusignClient } from './docusign.client';
import { CreateEnvelopeInput } from '../../ports/e-signature.port';

const OAUTH = 'https://account-d.docusign.com';
const REST = 'https://demo.docusign.net';
const ENVELOPES = '/restapi/v2.1/accounts/acct-1/envelopes';

const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});

const BASE_ENV = {
  DOCUSIGN_INTEGRATION_KEY: 'ik-1',
  DOCUSIGN_USER_ID: 'user-1',
  DOCUSIGN_ACCOUNT_ID: 'acct-1',
  DOCUSIGN_TEMPLATE_ID: 'tpl-1',
  DOCUSIGN_PRIVATE_KEY: privateKey,
};

function setup(env: Record<string, string> = {}) {
  const { metrics, inc } = metricsStub();
  const config = loadConfig({ ...BASE_ENV, ...env });
  return { client: new DocusignClient(config, metrics, loggerStub()), inc };
}

const INPUT: CreateEnvelopeInput = {
  dealId: 'cl_deal_1',
  contractId: 'ctr_1',
  emailSubject: 'Please sign: Order Form',
  signer: { email: 'taro@example.jp', name: 'Taro Yamada' },
  textTabs: { company_name: 'ACME K.K.', contract_amount: '¥300,000' },
};

/** Token endpoint answering tokens tok-1, tok-2, … and recording each JWT assertion. */
function tokenEndpoint(times: number, expiresIn = 3600) {
  const assertions: URLSearchParams[] = [];
  const scope = nock(OAUTH)
    .post('/oauth/token')
    .times(times)
    .reply(function (_uri, body) {
      assertions.push(new URLSearchParams(typeof body === 'string' ? body : ''));
      return [
        200,
        { access_token: `tok-${assertions.length}`, token_type: 'Bearer', expires_in: expiresIn },
      ];
    });
  return { scope, assertions };
}

function envelopeEndpoint(times = 1) {
  const calls: { auth: string | undefined; body: unknown }[] = [];
  const scope = nock(REST)
    .post(ENVELOPES)
    .times(times)
    .reply(function (_uri, body) {
      calls.push({ auth: this.req.headers.authorization as string | undefined, body });
      return [201, { envelopeId: `env-${calls.length}`, status: 'sent', uri: '/envelopes/x' }];
    });
  return { scope, calls };
}

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  nock.cleanAll();
  jest.restoreAllMocks();
});
afterAll(() => nock.enableNetConnect());

describe('DocusignClient.createEnvelope', () => {
  it('gets a JWT-grant token from the OAuth host, then posts the template envelope', async () => {
    const { client, inc } = setup();
    const token = tokenEndpoint(1);
    const envelope = envelopeEndpoint();

    const view = await client.createEnvelope(INPUT);

    token.scope.done();
    envelope.scope.done();
    expect(view).toEqual({
      envelopeId: 'env-1',
      status: 'sent',
      dealId: 'cl_deal_1',
      contractId: 'ctr_1',
    });
    const form = token.assertions[0];
    expect(form.get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
    const claims = jwt.verify(form.get('assertion')!, publicKey, { algorithms: ['RS256'] });
    expect(claims).toMatchObject({
      iss: 'ik-1',
      sub: 'user-1',
      aud: 'account-d.docusign.com',
      scope: 'signature impersonation',
    });
    expect(envelope.calls[0].auth).toBe('Bearer tok-1');
    expect(envelope.calls[0].body).toEqual({
      templateId: 'tpl-1',
      status: 'sent',
      emailSubject: 'Please sign: Order Form',
      templateRoles: [
        {
          email: 'taro@example.jp',
          name: 'Taro Yamada',
          roleName: 'signer',
          tabs: {
            textTabs: [
              { tabLabel: 'company_name', value: 'ACME K.K.' },
              { tabLabel: 'contract_amount', value: '¥300,000' },
            ],
          },
        },
      ],
      customFields: {
        textCustomFields: [
          { name: 'closeloop_deal_id', value: 'cl_deal_1', show: 'false', required: 'false' },
          { name: 'closeloop_contract_id', value: 'ctr_1', show: 'false', required: 'false' },
        ],
      },
    });
    expect(countedStatuses(inc)).toEqual(['200', '201']);
  });

  it('uses DOCUSIGN_TEMPLATE_ROLE, DOCUSIGN_OAUTH_BASE and DOCUSIGN_API_BASE', async () => {
    const { client } = setup({
      DOCUSIGN_TEMPLATE_ROLE: 'Client',
      DOCUSIGN_OAUTH_BASE: 'auth.local:8443',
      DOCUSIGN_API_BASE: 'http://127.0.0.1:12113/restapi',
    });
    const token = nock('https://auth.local:8443')
      .post('/oauth/token')
      .reply(200, { access_token: 'tok-x', expires_in: 3600 });
    let role: unknown;
    const rest = nock('http://127.0.0.1:12113')
      .post(ENVELOPES, (b: { templateRoles: { roleName: string }[] }) => {
        role = b.templateRoles[0].roleName;
        return true;
      })
      .reply(201, { envelopeId: 'env-9', status: 'sent' });
    await client.createEnvelope(INPUT);
    token.done();
    rest.done();
    expect(role).toBe('Client');
  });

  it('caches the token across calls: one token request for two envelopes', async () => {
    const { client } = setup();
    const token = tokenEndpoint(1);
    const envelope = envelopeEndpoint(2);
    await client.createEnvelope(INPUT);
    await client.createEnvelope(INPUT);
    token.scope.done();
    expect(token.assertions).toHaveLength(1);
    expect(envelope.calls.map((c) => c.auth)).toEqual(['Bearer tok-1', 'Bearer tok-1']);
  });

  it('shares one in-flight token request between concurrent callers', async () => {
    const { client } = setup();
    const token = tokenEndpoint(1);
    const envelope = envelopeEndpoint(3);
    await Promise.all([
      client.createEnvelope(INPUT),
      client.createEnvelope(INPUT),
      client.createEnvelope(INPUT),
    ]);
    expect(token.assertions).toHaveLength(1);
    expect(envelope.calls).toHaveLength(3);
  });

  it('mints a new token within 10 minutes of expiry', async () => {
    const { client } = setup();
    const token = tokenEndpoint(2);
    const envelope = envelopeEndpoint(3);
    const t0 = Date.now();
    await client.createEnvelope(INPUT);
    jest.spyOn(Date, 'now').mockReturnValue(t0 + 45 * 60_000);
    await client.createEnvelope(INPUT); // 15 min left: still cached
    jest.spyOn(Date, 'now').mockReturnValue(t0 + 51 * 60_000);
    await client.createEnvelope(INPUT); // 9 min left: refreshed
    expect(token.assertions).toHaveLength(2);
    expect(envelope.calls.map((c) => c.auth)).toEqual([
      'Bearer tok-1',
      'Bearer tok-1',
      'Bearer tok-2',
    ]);
  });

  it('on a 401 drops the token once, mints a new one and retries once', async () => {
    const { client, inc } = setup();
    const token = tokenEndpoint(2);
    const auths: (string | undefined)[] = [];
    nock(REST)
      .post(ENVELOPES)
      .reply(function () {
        auths.push(this.req.headers.authorization as string | undefined);
        return [
          401,
          { errorCode: 'USER_AUTHENTICATION_FAILED', message: 'The access token has expired.' },
        ];
      })
      .post(ENVELOPES)
      .reply(function () {
        auths.push(this.req.headers.authorization as string | undefined);
        return [201, { envelopeId: 'env-2', status: 'sent' }];
      });

    await expect(client.createEnvelope(INPUT)).resolves.toMatchObject({ envelopeId: 'env-2' });
    expect(token.assertions).toHaveLength(2);
    expect(auths).toEqual(['Bearer tok-1', 'Bearer tok-2']);
    expect(countedStatuses(inc)).toEqual(['200', '401', '200', '201']);
  });

  it('a second 401 is a PermanentError', async () => {
    const { client } = setup();
    tokenEndpoint(2);
    nock(REST).post(ENVELOPES).times(2).reply(401, {
      errorCode: 'USER_AUTHENTICATION_FAILED',
      message: 'One or both of Username and Password are invalid.',
    });
    const err = await client.createEnvelope(INPUT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toBe(
      'docusign 401 USER_AUTHENTICATION_FAILED: One or both of Username and Password are invalid.',
    );
  });

  it('consent_required → PermanentError with the consent URL', async () => {
    const { client } = setup();
    nock(OAUTH).post('/oauth/token').reply(400, { error: 'consent_required' });
    const err = await client.createEnvelope(INPUT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toContain('docusign 400 consent_required');
    expect((err as Error).message).toContain(
      'https://account-d.docusign.com/oauth/auth?response_type=code&scope=signature%20impersonation&client_id=ik-1',
    );
  });

  it('maps REST errors: 5xx / 429 → Transient, other 4xx → Permanent with DocuSign’s message', async () => {
    const { client } = setup();
    tokenEndpoint(1);
    nock(REST)
      .post(ENVELOPES)
      .reply(503, { errorCode: 'SERVICE_UNAVAILABLE', message: 'try later' })
      .post(ENVELOPES)
      .reply(
        429,
        {
          errorCode: 'HOURLY_APIINVOCATION_LIMIT_EXCEEDED',
          message: 'The maximum number of hourly API invocations has been exceeded',
        },
        { 'Retry-After': '120' },
      )
      .post(ENVELOPES)
      .reply(400, { errorCode: 'TEMPLATE_ID_INVALID', message: 'Invalid template ID.' });

    const e503 = await client.createEnvelope(INPUT).catch((e: unknown) => e);
    expect(e503).toBeInstanceOf(TransientError);
    const e429 = await client.createEnvelope(INPUT).catch((e: unknown) => e);
    expect(e429).toBeInstanceOf(TransientError);
    expect((e429 as TransientError).retryAfterMs).toBe(120_000);
    const e400 = await client.createEnvelope(INPUT).catch((e: unknown) => e);
    expect(e400).toBeInstanceOf(PermanentError);
    expect((e400 as Error).message).toBe('docusign 400 TEMPLATE_ID_INVALID: Invalid template ID.');
  });

  it('a connection failure → TransientError, counted as error', async () => {
    // A real refused connection (nothing listens on port 1): no HTTP status at all.
    nock.enableNetConnect('127.0.0.1:1');
    try {
      const { client, inc } = setup({ DOCUSIGN_API_BASE: 'http://127.0.0.1:1/restapi' });
      tokenEndpoint(1);
      const err = await client.createEnvelope(INPUT).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransientError);
      expect((err as Error).message).toMatch(/^docusign call failed: /);
      expect(countedStatuses(inc)).toEqual(['200', 'error']);
    } finally {
      nock.disableNetConnect();
    }
  });

  it('reads the private key from DOCUSIGN_PRIVATE_KEY_FILE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'closeloop-ds-'));
    const file = join(dir, 'key.pem');
    writeFileSync(file, privateKey);
    const { client } = setup({ DOCUSIGN_PRIVATE_KEY: '', DOCUSIGN_PRIVATE_KEY_FILE: file });
    const token = tokenEndpoint(1);
    envelopeEndpoint();
    await client.createEnvelope(INPUT);
    expect(jwt.verify(token.assertions[0].get('assertion')!, publicKey)).toBeTruthy();
  });

  it('throws PermanentError when DocuSign is not configured', async () => {
    const { metrics } = metricsStub();
    const client = new DocusignClient(loadConfig({}), metrics, loggerStub());
    const err = await client.createEnvelope(INPUT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(
      /^docusign is not configured: set DOCUSIGN_INTEGRATION_KEY/,
    );
  });
});

describe('DocusignClient.findEnvelopeByDealId', () => {
  it('lists status changes since the date filtered by the deal custom field and returns the newest', async () => {
    const { client } = setup();
    tokenEndpoint(1);
    let query: URLSearchParams | undefined;
    nock(REST)
      .get(ENVELOPES)
      .query(true)
      .reply(function (uri) {
        query = new URL(uri, REST).searchParams;
        const field = (v: string, contract = 'ctr_1') => ({
          textCustomFields: [
            { name: 'closeloop_deal_id', value: v },
            { name: 'closeloop_contract_id', value: contract },
          ],
        });
        return [
          200,
          {
            resultSetSize: '5',
            envelopes: [
              {
                envelopeId: 'env-old',
                status: 'voided',
                createdDateTime: '2026-11-20T01:00:00.0000000Z',
                customFields: field('cl_deal_1'),
              },
              {
                envelopeId: 'env-new',
                status: 'sent',
                createdDateTime: '2026-11-21T01:00:00.0000000Z',
                customFields: field('cl_deal_1'),
              },
              {
                // Names the deal but not its contract: made outside the hub, never adopted.
                envelopeId: 'env-foreign',
                status: 'sent',
                createdDateTime: '2026-11-23T01:00:00.0000000Z',
                customFields: {
                  textCustomFields: [{ name: 'closeloop_deal_id', value: 'cl_deal_1' }],
                },
              },
              {
                envelopeId: 'env-other-contract',
                status: 'sent',
                createdDateTime: '2026-11-23T02:00:00.0000000Z',
                customFields: field('cl_deal_1', 'ctr_2'),
              },
              {
                envelopeId: 'env-other',
                status: 'sent',
                createdDateTime: '2026-11-22T01:00:00.0000000Z',
                customFields: field('cl_deal_10'),
              },
            ],
          },
        ];
      });

    const found = await client.findEnvelopeByDealId(
      'cl_deal_1',
      'ctr_1',
      new Date('2026-11-19T00:00:00Z'),
    );

    expect(found).toEqual({
      envelopeId: 'env-new',
      status: 'sent',
      dealId: 'cl_deal_1',
      contractId: 'ctr_1',
    });
    expect(query?.get('from_date')).toBe('2026-11-19T00:00:00.000Z');
    expect(query?.get('custom_field')).toBe('closeloop_deal_id=cl_deal_1');
    expect(query?.get('include')).toBe('custom_fields');
  });

  it('returns null when nothing matches', async () => {
    const { client } = setup();
    tokenEndpoint(1);
    nock(REST).get(ENVELOPES).query(true).reply(200, { resultSetSize: '0' });
    await expect(client.findEnvelopeByDealId('cl_deal_1', 'ctr_1', new Date())).resolves.toBeNull();
  });
});

describe('DocusignClient.downloadDocument', () => {
  const DOCS = `${ENVELOPES}/env-1/documents`;
  /** A PDF header, then every byte value twice: any text decoding on the way would change it. */
  const PDF = Buffer.concat([
    Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1'),
    Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256)),
    Buffer.from('\n%%EOF\n'),
  ]);

  it('GETs documents/combined?certificate=true with the bearer token and returns the bytes unchanged', async () => {
    const { client, inc } = setup();
    tokenEndpoint(1);
    const seen: { auth?: string; accept?: string; query?: string }[] = [];
    const rest = nock(REST)
      .get(`${DOCS}/combined`)
      .query({ certificate: 'true' })
      .reply(function (uri) {
        seen.push({
          auth: this.req.headers.authorization as string | undefined,
          accept: this.req.headers.accept as string | undefined,
          query: new URL(uri, REST).search,
        });
        return [200, PDF, { 'Content-Type': 'application/pdf' }];
      });

    const bytes = await client.downloadDocument('env-1', 'combined');

    rest.done();
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(bytes.equals(PDF)).toBe(true);
    expect(seen).toEqual([
      { auth: 'Bearer tok-1', accept: 'application/pdf', query: '?certificate=true' },
    ]);
    expect(countedStatuses(inc)).toEqual(['200', '200']);
  });

  it('GETs documents/certificate for the certificate of completion alone', async () => {
    const { client } = setup();
    tokenEndpoint(1);
    const certificate = Buffer.concat([PDF, Buffer.from('certificate')]);
    const rest = nock(REST)
      .get(`${DOCS}/certificate`)
      .reply(200, certificate, { 'Content-Type': 'application/pdf' });
    const bytes = await client.downloadDocument('env-1', 'certificate');
    rest.done();
    expect(bytes.equals(certificate)).toBe(true);
  });

  it('reads DocuSign’s JSON error out of the streamed body: 404 → PermanentError with its errorCode', async () => {
    const { client } = setup();
    tokenEndpoint(1);
    nock(REST).get(`${DOCS}/certificate`).reply(404, {
      errorCode: 'ENVELOPE_DOES_NOT_EXIST',
      message: 'The envelope specified either does not exist or you have no rights to it.',
    });
    const err = await client.downloadDocument('env-1', 'certificate').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toBe(
      'docusign 404 ENVELOPE_DOES_NOT_EXIST: The envelope specified either does not exist or you have no rights to it.',
    );
  });

  it('5xx and 429 → TransientError (Retry-After kept); a 401 mints a new token and retries once', async () => {
    const { client } = setup();
    const token = tokenEndpoint(2);
    nock(REST)
      .get(`${DOCS}/combined`)
      .query(true)
      .reply(503, { errorCode: 'SERVICE_UNAVAILABLE', message: 'try later' })
      .get(`${DOCS}/combined`)
      .query(true)
      .reply(
        429,
        { errorCode: 'HOURLY_APIINVOCATION_LIMIT_EXCEEDED', message: 'limit' },
        { 'Retry-After': '30' },
      )
      .get(`${DOCS}/combined`)
      .query(true)
      .reply(401, { errorCode: 'USER_AUTHENTICATION_FAILED', message: 'expired' })
      .get(`${DOCS}/combined`)
      .query(true)
      .reply(200, PDF, { 'Content-Type': 'application/pdf' });

    const e503 = await client.downloadDocument('env-1', 'combined').catch((e: unknown) => e);
    expect(e503).toBeInstanceOf(TransientError);
    expect((e503 as Error).message).toBe('docusign 503 SERVICE_UNAVAILABLE: try later');
    const e429 = await client.downloadDocument('env-1', 'combined').catch((e: unknown) => e);
    expect(e429).toBeInstanceOf(TransientError);
    expect((e429 as TransientError).retryAfterMs).toBe(30_000);
    const bytes = await client.downloadDocument('env-1', 'combined');
    expect(bytes.equals(PDF)).toBe(true);
    expect(token.assertions).toHaveLength(2);
  });

  it('refuses an answer that is not a PDF (empty, or an HTML page) as a PermanentError', async () => {
    const { client } = setup();
    tokenEndpoint(1);
    nock(REST)
      .get(`${DOCS}/certificate`)
      .reply(200, '', { 'Content-Type': 'application/pdf' })
      .get(`${DOCS}/certificate`)
      .reply(200, '<html>maintenance</html>', { 'Content-Type': 'text/html' });
    for (const size of [0, 24]) {
      const err = await client.downloadDocument('env-1', 'certificate').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as Error).message).toBe(
        `docusign certificate document of envelope env-1 is not a PDF (${size} bytes)`,
      );
    }
  });

  it('a body that stalls past PROVIDER_TIMEOUT_MS → TransientError', async () => {
    const { client } = setup({ PROVIDER_TIMEOUT_MS: '200' });
    tokenEndpoint(1);
    nock(REST)
      .get(`${DOCS}/certificate`)
      .delayBody(700)
      .reply(200, PDF, { 'Content-Type': 'application/pdf' });
    const err = await client.downloadDocument('env-1', 'certificate').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
  });
});
