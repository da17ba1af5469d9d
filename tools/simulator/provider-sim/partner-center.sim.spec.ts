import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

import { DEFAULT_PARTNER_CENTER_CERT_URL_PREFIXES } from '../../../src/config/app-config';
import { PartnerCenterSignatureVerifier } from '../../../src/connectors/partner-center/partner-center-signature.verifier';
import { SignatureError } from '../../../src/ports/webhook-door.port';
import { createPartnerCenterTestCert } from '../partner-center-cert';
import {
  PARTNER_CENTER_SIM_CERT_ALIAS_PATH,
  PARTNER_CENTER_SIM_CERT_PATH,
  PARTNER_CENTER_SIM_ISSUER_PATH,
  PartnerCenterSim,
  type PartnerCenterReferral,
  type PartnerCenterWebhookEvent,
  waitUntil,
} from './partner-center.sim';
import type { SimProviderModule } from './sim.types';
import { ProviderSimulator } from './simulator';

// ---------------------------------------------------------------------------------------------
// Harness: the module behind a plain HTTP server (`/_sim/partner-center/...` → control), and a
// stand-in for the hub's webhook door.
// ---------------------------------------------------------------------------------------------

async function listen(server: ReturnType<typeof createServer>) {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The module behind the simulator core (the same server the tests, demo and bench use). */
async function serve(module: SimProviderModule): Promise<{ url: string; close(): Promise<void> }> {
  const core = await ProviderSimulator.start({ modules: [module] });
  return { url: core.url, close: () => core.close() };
}

interface Received {
  url: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
}

async function hubDoor() {
  const received: Received[] = [];
  const statuses: number[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ url: req.url ?? '', headers: req.headers, raw: Buffer.concat(chunks) });
      res.writeHead(statuses.shift() ?? 200).end();
    });
  });
  return { ...(await listen(server)), received, statuses };
}

const TENANT = 'contoso-tenant';
const CLIENT_ID = 'app-123';
const CLIENT_SECRET = 'app-secret';
const REFRESH = 'rt-initial';

describe('PartnerCenterSim', () => {
  let clockMs = Date.parse('2026-11-20T09:00:00.000Z');
  let sim: PartnerCenterSim;
  let api: Awaited<ReturnType<typeof serve>>;
  let hub: Awaited<ReturnType<typeof hubDoor>>;

  beforeAll(async () => {
    sim = new PartnerCenterSim({
      tenantId: TENANT,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      refreshToken: REFRESH,
      webhookRetryDelayMs: 5,
      now: () => new Date(clockMs),
    });
    api = await serve(sim);
    sim.setBaseUrl(api.url);
    hub = await hubDoor();
  });

  afterAll(async () => {
    await sim.close();
    await api.close();
    await hub.close();
  });

  beforeEach(async () => {
    await sim.webhooksIdle();
    sim.reset();
    sim.setTarget(undefined);
    hub.received.length = 0;
    hub.statuses.length = 0;
    clockMs = Date.parse('2026-11-20T09:00:00.000Z');
  });

  async function token(
    fields: Record<string, string> = {},
    version: 'v1' | 'v2.0' = 'v2.0',
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      refresh_token: REFRESH,
      ...(version === 'v2.0'
        ? { scope: 'https://api.partner.microsoft.com/.default offline_access' }
        : { resource: 'https://api.partner.microsoft.com' }),
      ...fields,
    });
    const url = version === 'v2.0' ? sim.tokenUrl : `${api.url}/${TENANT}/oauth2/token`;
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  async function accessToken(): Promise<string> {
    const t = await token();
    expect(t.status).toBe(200);
    return t.body.access_token as string;
  }

  async function call(
    method: string,
    path: string,
    opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
  ) {
    const res = await fetch(`${sim.apiBase}${path}`, {
      method,
      headers: {
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...opts.headers,
      },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    const text = await res.text();
    return {
      status: res.status,
      etag: res.headers.get('etag'),
      headers: res.headers,
      body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
    };
  }

  const patch = (id: string, ops: unknown, tok: string, headers: Record<string, string> = {}) =>
    call('PATCH', `/v1.0/engagements/referrals/${id}`, { token: tok, body: ops, headers });

  // ------------------------------------------------------------------------------------------

  describe('token endpoint', () => {
    it('issues a Bearer token for the refresh-token grant (v2.0) that the Referrals API accepts', async () => {
      const t = await token();
      expect(t.status).toBe(200);
      expect(t.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
      expect(typeof t.body.access_token).toBe('string');
      expect(typeof t.body.refresh_token).toBe('string');
      expect(sim.lastTokenRequest).toMatchObject({
        grant_type: 'refresh_token',
        client_id: CLIENT_ID,
        client_secret: '***',
        endpoint: 'v2.0',
      });

      const list = await call('GET', '/v1.0/engagements/referrals', {
        token: t.body.access_token as string,
      });
      expect(list.status).toBe(200);
      expect(list.body).toEqual({ value: [] });

      // the rotated refresh token works as well as the configured one
      const again = await token({ refresh_token: t.body.refresh_token as string });
      expect(again.status).toBe(200);
      expect(again.body.access_token).not.toBe(t.body.access_token);
      expect(sim.tokenRequests).toBe(2);
      expect(sim.tokensIssued).toBe(2);
    });

    it('v1 endpoint takes `resource` and answers numbers as strings, as Entra ID v1 does', async () => {
      const t = await token({}, 'v1');
      expect(t.status).toBe(200);
      expect(t.body).toMatchObject({
        token_type: 'Bearer',
        expires_in: '3600',
        resource: 'https://api.partner.microsoft.com',
      });
    });

    it('refuses a wrong secret, refresh token, grant, client, tenant or audience', async () => {
      const bad = await token({ client_secret: 'nope' });
      expect(bad.status).toBe(400);
      expect(bad.body.error).toBe('invalid_grant');
      expect(String(bad.body.error_description)).toContain('AADSTS7000215');

      const badRt = await token({ refresh_token: 'stolen' });
      expect(badRt.status).toBe(400);
      expect(badRt.body.error).toBe('invalid_grant');

      expect((await token({ grant_type: 'client_credentials' })).body.error).toBe(
        'unsupported_grant_type',
      );
      expect((await token({ client_id: 'other-app' })).status).toBe(400);
      expect((await token({ scope: 'https://graph.microsoft.com/.default' })).body.error).toBe(
        'invalid_scope',
      );
      const wrongTenant = await fetch(`${api.url}/other-tenant/oauth2/v2.0/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          refresh_token: REFRESH,
          scope: 'https://api.partner.microsoft.com/.default',
        }).toString(),
      });
      expect(wrongTenant.status).toBe(400);
      expect(sim.tokenRequests).toBe(6);
      expect(sim.tokensIssued).toBe(0);
    });

    it('access tokens stop working when forced to expire or when their lifetime ends', async () => {
      const { id } = sim.createReferral();
      const first = await accessToken();
      expect(
        (await call('GET', `/v1.0/engagements/referrals/${id}`, { token: first })).status,
      ).toBe(200);

      sim.expireAccessTokens();
      const expired = await call('GET', `/v1.0/engagements/referrals/${id}`, { token: first });
      expect(expired.status).toBe(401);
      expect(expired.headers.get('www-authenticate')).toContain('invalid_token');

      const second = await accessToken();
      expect(
        (await call('GET', `/v1.0/engagements/referrals/${id}`, { token: second })).status,
      ).toBe(200);
      clockMs += 3600 * 1000;
      expect(
        (await call('GET', `/v1.0/engagements/referrals/${id}`, { token: second })).status,
      ).toBe(401);
    });
  });

  // ------------------------------------------------------------------------------------------

  describe('Referrals API', () => {
    it('GET answers the referral with its eTag (body and ETag header); 401 without a token, 404 unknown', async () => {
      const created = sim.createReferral({
        name: 'ACME migration',
        externalReferenceId: null,
        customerProfile: {
          name: 'ACME K.K.',
          team: [
            { firstName: 'Ana', lastName: 'Sato', email: 'ana@acme.example', phoneNumber: '1' },
          ],
        },
        details: { dealValue: 500000, currency: 'JPY' },
        expirationDateTime: '2026-11-23T09:00:00.000Z',
      });
      const tok = await accessToken();
      const got = await call('GET', `/v1.0/engagements/referrals/${created.id}`, { token: tok });
      expect(got.status).toBe(200);
      const body = got.body as unknown as PartnerCenterReferral;
      expect(body).toMatchObject({
        id: created.id,
        name: 'ACME migration',
        status: 'New',
        substatus: 'Pending',
        expirationDateTime: '2026-11-23T09:00:00.000Z',
        customerProfile: {
          name: 'ACME K.K.',
          address: { country: 'JP' },
          team: [{ email: 'ana@acme.example' }],
        },
        details: { dealValue: 500000, currency: 'JPY' },
      });
      expect(body.engagementId).toMatch(/^[0-9a-f-]{36}$/);
      expect(body.eTag).toBe(created.eTag);
      expect(got.etag).toBe(created.eTag);

      expect((await call('GET', `/v1.0/engagements/referrals/${created.id}`)).status).toBe(401);
      expect(
        (await call('GET', `/v1.0/engagements/referrals/${created.id}`, { token: 'forged' }))
          .status,
      ).toBe(401);
      expect((await call('GET', '/v1.0/engagements/referrals/nope', { token: tok })).status).toBe(
        404,
      );
    });

    it('lists with an OData $filter, $orderby and $top', async () => {
      const a = sim.createReferral({ name: 'A' });
      clockMs += 1000;
      const b = sim.createReferral({ name: 'B' });
      clockMs += 1000;
      sim.createReferral({ name: 'C', status: 'Closed', substatus: 'Expired' });
      const tok = await accessToken();
      const res = await call(
        'GET',
        `/v1.0/engagements/referrals?${new URLSearchParams({
          $filter: "status eq 'New' and direction eq 'Incoming'",
          $orderby: 'createdDateTime desc',
          $top: '1',
        }).toString()}`,
        { token: tok },
      );
      expect(res.status).toBe(200);
      const value = res.body?.value as PartnerCenterReferral[];
      expect(value.map((r) => r.id)).toEqual([b.id]);
      const next = String(res.body?.['@odata.nextLink']);
      const page2 = await call('GET', next.slice(sim.apiBase.length), { token: tok });
      expect((page2.body?.value as PartnerCenterReferral[]).map((r) => r.id)).toEqual([a.id]);
    });

    it('PATCH with a matching If-Match applies the JSON Patch, bumps eTag and updatedDateTime; stale → 412', async () => {
      const r = sim.createReferral();
      const tok = await accessToken();
      clockMs += 60_000;
      const accepted = await patch(
        r.id,
        [
          { op: 'replace', path: '/status', value: 'Active' },
          { op: 'replace', path: '/substatus', value: 'Accepted' },
        ],
        tok,
        { 'if-match': r.eTag, prefer: 'return=representation' },
      );
      expect(accepted.status).toBe(200);
      const after = accepted.body as unknown as PartnerCenterReferral;
      expect(after).toMatchObject({ id: r.id, status: 'Active', substatus: 'Accepted' });
      expect(after.eTag).not.toBe(r.eTag);
      expect(accepted.etag).toBe(after.eTag);
      expect(after.updatedDateTime).toBe(new Date(clockMs).toISOString());
      expect(after.acceptedDateTime).toBe(new Date(clockMs).toISOString());
      expect(sim.referral(r.id)).toEqual(after);

      // the eTag the caller read before is stale now
      const stale = await patch(
        r.id,
        [{ op: 'replace', path: '/statusReason', value: 'late' }],
        tok,
        { 'if-match': r.eTag },
      );
      expect(stale.status).toBe(412);
      expect(stale.body).toMatchObject({ error: { code: 'PreconditionFailed' } });
      expect(sim.referral(r.id)).toEqual(after);

      // Won with the value, without Prefer: 204 and the new ETag
      const won = await patch(
        r.id,
        [
          { op: 'replace', path: '/status', value: 'Closed' },
          { op: 'replace', path: '/substatus', value: 'Won' },
          { op: 'replace', path: '/statusReason', value: 'Contract signed' },
          { op: 'replace', path: '/details/dealValue', value: '300000' },
          { op: 'replace', path: '/details/currency', value: 'JPY' },
        ],
        tok,
        { 'if-match': after.eTag },
      );
      expect(won.status).toBe(204);
      expect(won.body).toBeUndefined();
      const closed = sim.referral(r.id)!;
      expect(won.etag).toBe(closed.eTag);
      expect(closed).toMatchObject({
        status: 'Closed',
        substatus: 'Won',
        statusReason: 'Contract signed',
        details: { dealValue: 300000, currency: 'JPY' },
      });

      // every PATCH is recorded with its outcome
      expect(sim.patchesFor(r.id).map((p) => [p.status, p.error ?? null])).toEqual([
        [200, null],
        [412, 'PreconditionFailed'],
        [204, null],
      ]);
      expect(sim.patchesFor(r.id, { appliedOnly: true })).toHaveLength(2);
      expect(sim.patches[2]).toMatchObject({
        ifMatch: after.eTag,
        eTagBefore: after.eTag,
        eTagAfter: closed.eTag,
        ops: expect.arrayContaining([{ op: 'replace', path: '/substatus', value: 'Won' }]),
      });
    });

    it('refuses invalid transitions and unsupported operations with 400, leaving the referral unchanged', async () => {
      const r = sim.createReferral();
      const tok = await accessToken();
      const cases: [string, unknown][] = [
        // status without a matching substatus (Active needs Accepted)
        ['status only', [{ op: 'replace', path: '/status', value: 'Active' }]],
        ['New with Won', [{ op: 'replace', path: '/substatus', value: 'Won' }]],
        ['remove op', [{ op: 'remove', path: '/details/notes' }]],
        ['test op', [{ op: 'test', path: '/status', value: 'New' }]],
        ['copy op', [{ op: 'copy', from: '/name', path: '/statusReason', value: 'x' }]],
        ['read-only path', [{ op: 'replace', path: '/id', value: 'x' }]],
        ['bad value', [{ op: 'replace', path: '/details/dealValue', value: 'lots' }]],
        ['not an array', { status: 'Active' }],
      ];
      for (const [what, ops] of cases) {
        const res = await patch(r.id, ops, tok);
        expect([what, res.status]).toEqual([what, 400]);
      }
      expect(sim.referral(r.id)).toEqual(r);

      // Closed cannot be reopened
      await patch(
        r.id,
        [
          { op: 'replace', path: '/status', value: 'Closed' },
          { op: 'replace', path: '/substatus', value: 'Declined' },
        ],
        tok,
      );
      const closed = sim.referral(r.id)!;
      expect(closed.status).toBe('Closed');
      const reopen = await patch(
        r.id,
        [
          { op: 'replace', path: '/status', value: 'Active' },
          { op: 'replace', path: '/substatus', value: 'Accepted' },
        ],
        tok,
      );
      expect(reopen.status).toBe(400);
      expect(reopen.body).toMatchObject({ error: { code: 'InvalidTransition' } });
      expect(sim.referral(r.id)).toEqual(closed);
      // Active → New is not a documented move either
      const other = sim.createReferral({ status: 'Active', substatus: 'Accepted' });
      const back = await patch(
        other.id,
        [
          { op: 'replace', path: '/status', value: 'New' },
          { op: 'replace', path: '/substatus', value: 'Pending' },
        ],
        tok,
      );
      expect(back.status).toBe(400);
    });

    it('`add` appends a team member', async () => {
      const r = sim.createReferral();
      const tok = await accessToken();
      const member = {
        firstName: 'Ken',
        lastName: 'Ito',
        email: 'ken@partner.example',
        phoneNumber: '2',
      };
      const res = await patch(r.id, [{ op: 'add', path: '/team/-', value: member }], tok, {
        prefer: 'return=representation',
      });
      expect(res.status).toBe(200);
      expect((res.body as unknown as PartnerCenterReferral).team).toEqual([member]);
    });

    const cosellBody = () => ({
      name: 'Contoso data platform',
      externalReferenceId: '53000000001',
      type: 'Shared',
      qualification: 'SalesQualified',
      customerProfile: {
        name: 'Contoso K.K.',
        address: { city: 'Chiyoda-ku', country: 'JP' },
        team: [{ firstName: 'Hanako', lastName: 'Yamada', email: 'hanako@contoso.example' }],
      },
      consent: {
        consentToToShareInfoWithOthers: true,
        consentToContact: true,
        consentToShareReferralWithMicrosoftSellers: true,
      },
      details: {
        notes: 'Migrate the warehouse',
        dealValue: 1200000,
        currency: 'JPY',
        closingDateTime: '2027-03-31T00:00:00Z',
      },
    });

    it('POST creates an outgoing referral: 201, Active/Accepted from its creation, with id and eTag; listed by externalReferenceId', async () => {
      const tok = await accessToken();
      const res = await call('POST', '/v1.0/engagements/referrals', {
        token: tok,
        body: cosellBody(),
      });
      expect(res.status).toBe(201);
      const created = res.body as unknown as PartnerCenterReferral;
      expect(created).toMatchObject({
        name: 'Contoso data platform',
        externalReferenceId: '53000000001',
        type: 'Shared',
        status: 'Active',
        substatus: 'Accepted',
        direction: 'Outgoing',
        createdDateTime: '2026-11-20T09:00:00.000Z',
        acceptedDateTime: '2026-11-20T09:00:00.000Z',
        consent: {
          consentToShareInfoWithOthers: true,
          consentToContact: true,
          consentToShareReferralWithMicrosoftSellers: true,
        },
        details: { dealValue: 1200000, currency: 'JPY', closingDateTime: '2027-03-31T00:00:00Z' },
      });
      expect(res.etag).toBe(created.eTag);
      expect(sim.referral(created.id)).toEqual(created);
      expect(sim.creates.map((c) => c.status)).toEqual([201]);
      // No webhook for the partner's own creation unless webhookOnApiUpdate is set.
      expect(sim.events).toEqual([]);

      sim.createReferral({ externalReferenceId: 'someone-else' });
      const list = await call(
        'GET',
        `/v1.0/engagements/referrals?$filter=${encodeURIComponent("externalReferenceId eq '53000000001'")}`,
        { token: tok },
      );
      expect((list.body!.value as PartnerCenterReferral[]).map((r) => r.id)).toEqual([created.id]);
    });

    it('POST refuses a referral without its required fields (400 naming each), creating nothing', async () => {
      const tok = await accessToken();
      const body = cosellBody() as Record<string, unknown>;
      delete body.type;
      body.customerProfile = {
        name: '',
        address: { city: 'Tokyo' },
        team: [{ firstName: 'Hanako', email: 'not-an-address' }],
      };
      body.consent = { consentToContact: 'yes' };
      body.details = { dealValue: -1, currency: 'Japanese yen' };
      const res = await call('POST', '/v1.0/engagements/referrals', { token: tok, body });
      expect(res.status).toBe(400);
      const error = res.body!.error as { code: string; details: { target: string }[] };
      expect(error.code).toBe('InvalidInput');
      expect(error.details.map((d) => d.target)).toEqual([
        'type',
        'customerProfile.name',
        'customerProfile.address.country',
        'customerProfile.team[0].lastName',
        'customerProfile.team[0].email',
        'consent.consentToShareInfoWithOthers',
        'consent.consentToContact',
        'consent.consentToShareReferralWithMicrosoftSellers',
        'details.dealValue',
        'details.currency',
        'details.closingDateTime',
      ]);
      expect(sim.listReferrals()).toEqual([]);
      expect(sim.creates).toMatchObject([{ status: 400, error: 'InvalidInput' }]);

      const noProfile = await call('POST', '/v1.0/engagements/referrals', {
        token: tok,
        body: { type: 'Shared' },
      });
      expect(
        (noProfile.body!.error as { details: { target: string }[] }).details.map((d) => d.target),
      ).toEqual(['customerProfile', 'consent', 'details']);
      expect(sim.listReferrals()).toEqual([]);
    });
  });

  // ------------------------------------------------------------------------------------------

  describe('webhooks', () => {
    const events = () =>
      hub.received.map((r) => JSON.parse(r.raw.toString()) as PartnerCenterWebhookEvent);

    it('signs referral-created / referral-updated so that the hub’s verifier accepts them with the simulator’s cert URL pinned', async () => {
      sim.setTarget({ hubUrl: hub.url });
      const r = sim.createReferral();
      sim.updateReferral(r.id, { details: { notes: 'customer called' } });
      await waitUntil(() => hub.received.length === 2, 5000, 'two webhooks');

      expect(hub.received.map((x) => x.url)).toEqual([
        '/webhooks/referrals/partner-center',
        '/webhooks/referrals/partner-center',
      ]);
      const [created, updated] = events();
      expect(created).toEqual({
        EventName: 'referral-created',
        ResourceUri: `https://api.partnercenter.microsoft.com/engagements/v1/referrals/${r.id}`,
        ResourceName: 'referral',
        AuditUri: null,
        ResourceChangeUtcDate: expect.stringMatching(
          /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00$/,
        ),
      });
      expect(updated.EventName).toBe('referral-updated');
      // same millisecond, still distinct identities
      expect(updated.ResourceChangeUtcDate > created.ResourceChangeUtcDate).toBe(true);

      const head = hub.received[0].headers;
      expect(head.authorization).toMatch(/^Signature [A-Za-z0-9+/]+=*$/);
      expect(head['x-ms-signature-algorithm']).toBe('rsa-sha256');
      expect(head['x-ms-certificate-url']).toBe(`${api.url}${PARTNER_CENTER_SIM_CERT_PATH}`);

      // the hub's own verifier, fetching the certificate (DER) and, through its AIA URL, its
      // issuer over HTTP from the simulator, trusting only the root in the simulator's CA file
      const caFile = sim.hubEnv().PARTNER_CENTER_CA_FILE;
      const verifier = new PartnerCenterSignatureVerifier({
        allowedCertUrlPrefixes: [sim.certificateUrlPrefix],
        trustedRoots: [readFileSync(caFile, 'utf8')],
      });
      for (const d of hub.received) {
        await expect(verifier.verify(d.raw, d.headers)).resolves.toBeUndefined();
      }
      const tampered = Buffer.from(d0Tamper(hub.received[0].raw));
      await expect(verifier.verify(tampered, hub.received[0].headers)).rejects.toMatchObject({
        reason: 'bad_signature',
      });
      // not pinned → refused before anything is fetched
      const pinnedToMicrosoft = new PartnerCenterSignatureVerifier({
        allowedCertUrlPrefixes: DEFAULT_PARTNER_CENTER_CERT_URL_PREFIXES,
        trustedRoots: [readFileSync(caFile, 'utf8')],
      });
      await expect(
        pinnedToMicrosoft.verify(hub.received[0].raw, hub.received[0].headers),
      ).rejects.toBeInstanceOf(SignatureError);

      expect(sim.hubEnv()).toMatchObject({
        PARTNER_CENTER_API_BASE: api.url,
        PARTNER_CENTER_TOKEN_URL: `${api.url}/${TENANT}/oauth2/v2.0/token`,
        PARTNER_CENTER_CERT_URL_PREFIXES: `${api.url}/_sim/partner-center/cert/`,
      });
      // …and Node's bundled roots alone do not trust the simulator's certificate
      const bundledRootsOnly = new PartnerCenterSignatureVerifier({
        allowedCertUrlPrefixes: [sim.certificateUrlPrefix],
      });
      await expect(
        bundledRootsOnly.verify(hub.received[0].raw, hub.received[0].headers),
      ).rejects.toMatchObject({ reason: 'untrusted_certificate' });
    });

    it('issues its certificate from a CA: root (the CA file) → intermediate (served at the AIA URL) → leaf', async () => {
      const leaf = new X509Certificate(sim.certificate.certDer);
      const root = new X509Certificate(readFileSync(sim.hubEnv().PARTNER_CENTER_CA_FILE));
      expect(leaf.subject).toContain('O=Microsoft Corporation');
      expect(leaf.infoAccess).toContain(
        `CA Issuers - URI:${api.url}${PARTNER_CENTER_SIM_ISSUER_PATH}`,
      );
      const res = await fetch(`${api.url}${PARTNER_CENTER_SIM_ISSUER_PATH}`);
      expect(res.status).toBe(200);
      const intermediate = new X509Certificate(Buffer.from(await res.arrayBuffer()));
      expect(intermediate.ca).toBe(true);
      expect(leaf.checkIssued(intermediate) && leaf.verify(intermediate.publicKey)).toBe(true);
      expect(intermediate.checkIssued(root) && intermediate.verify(root.publicKey)).toBe(true);
      expect(leaf.checkIssued(root)).toBe(false);
    });

    it('a rotated certificate (same URL, new key) is accepted by a verifier that cached the old one', async () => {
      let clock = Date.now();
      const verifier = new PartnerCenterSignatureVerifier({
        allowedCertUrlPrefixes: [sim.certificateUrlPrefix],
        trustedRoots: [readFileSync(sim.hubEnv().PARTNER_CENTER_CA_FILE, 'utf8')],
        now: () => clock,
      });
      sim.setTarget({ hubUrl: hub.url });
      sim.createReferral();
      await waitUntil(() => hub.received.length === 1, 5000, 'first webhook');
      await verifier.verify(hub.received[0].raw, hub.received[0].headers);
      const original = sim.certificate;
      sim.setCertificate(sim.issueCertificate());
      try {
        sim.createReferral();
        await waitUntil(() => hub.received.length === 2, 5000, 'second webhook');
        clock += 61_000; // a cached certificate that fails is downloaded again at most once a minute
        await expect(
          verifier.verify(hub.received[1].raw, hub.received[1].headers),
        ).resolves.toBeUndefined();
      } finally {
        sim.setCertificate(original);
      }
    });

    it('retries non-2xx answers, and holds deliveries while paused', async () => {
      sim.setTarget({ hubUrl: hub.url });
      hub.statuses.push(500, 503);
      const r = sim.createReferral();
      await waitUntil(() => sim.webhooks.delivered.length === 1, 5000, 'delivery');
      expect(hub.received).toHaveLength(3);
      expect(new Set(hub.received.map((x) => x.raw.toString())).size).toBe(1);
      expect(sim.webhooks.attemptsLog.map((a) => a.outcome)).toEqual([500, 503, 200]);

      sim.webhooks.pause();
      sim.updateReferral(r.id, { status: 'Closed', substatus: 'Expired' });
      await new Promise((res) => setTimeout(res, 50));
      expect(hub.received).toHaveLength(3);
      expect(sim.webhooks.pending).toBe(1);
      sim.webhooks.resume();
      await waitUntil(() => hub.received.length === 4, 5000, 'resumed delivery');
      expect(events()[3]).toMatchObject({ EventName: 'referral-updated' });
    });

    it('PATCH through the API emits no webhook unless webhookOnApiUpdate is set', async () => {
      sim.setTarget({ hubUrl: hub.url });
      const r = sim.createReferral();
      const tok = await accessToken();
      await patch(
        r.id,
        [
          { op: 'replace', path: '/status', value: 'Active' },
          { op: 'replace', path: '/substatus', value: 'Accepted' },
        ],
        tok,
      );
      await sim.webhooksIdle();
      expect(sim.events.map((e) => e.EventName)).toEqual(['referral-created']);
    });
  });

  // ------------------------------------------------------------------------------------------

  it('control API: seed, update, read PATCH records, serve the certificate', async () => {
    const post = await fetch(`${api.url}/_sim/partner-center/referrals`, {
      method: 'POST',
      body: JSON.stringify({ name: 'From control', customerProfile: { name: 'Globex' } }),
    });
    expect(post.status).toBe(201);
    const created = (await post.json()) as PartnerCenterReferral;
    expect(created).toMatchObject({ name: 'From control', customerProfile: { name: 'Globex' } });
    expect(created.customerProfile.team.length).toBeGreaterThan(0);

    const upd = await fetch(`${api.url}/_sim/partner-center/referrals/${created.id}`, {
      method: 'PATCH',
      body: JSON.stringify({ expirationDateTime: '2026-12-01T00:00:00.000Z' }),
    });
    const updated = (await upd.json()) as PartnerCenterReferral;
    expect(updated.expirationDateTime).toBe('2026-12-01T00:00:00.000Z');
    expect(updated.eTag).not.toBe(created.eTag);

    const tok = await accessToken();
    await patch(created.id, [{ op: 'replace', path: '/statusReason', value: 'x' }], tok);
    const patches = (await (
      await fetch(`${api.url}/_sim/partner-center/patches?referralId=${created.id}`)
    ).json()) as { data: { status: number }[] };
    expect(patches.data.map((p) => p.status)).toEqual([204]);

    const cert = await fetch(`${api.url}${PARTNER_CENTER_SIM_CERT_PATH}`);
    expect(cert.status).toBe(200);
    expect(Buffer.from(await cert.arrayBuffer()).equals(sim.certificate.certDer)).toBe(true);
  });
});

/** Changes one byte of the body (keeps it JSON). */
function d0Tamper(raw: Buffer): string {
  return raw.toString().replace('referral', 'referraL');
}

// ---------------------------------------------------------------------------------------------

describe('PartnerCenterSim inside ProviderSimulator', () => {
  it('serves tokens, the API and (at the /cert/ alias, PEM) a certificate the hub verifier trusts', async () => {
    const hub = await hubDoor();
    const pc = new PartnerCenterSim({
      certificatePath: PARTNER_CENTER_SIM_CERT_ALIAS_PATH,
      certEncoding: 'pem',
      webhookRetryDelayMs: 5,
    });
    const sim = await ProviderSimulator.start({ modules: [pc], target: { hubUrl: hub.url } });
    try {
      expect(pc.apiBase).toBe(sim.url);
      const env = pc.hubEnv();
      const tokenRes = await fetch(env.PARTNER_CENTER_TOKEN_URL, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          client_id: env.PARTNER_CENTER_CLIENT_ID,
          client_secret: env.PARTNER_CENTER_CLIENT_SECRET,
          refresh_token: env.PARTNER_CENTER_REFRESH_TOKEN,
          scope: 'https://api.partner.microsoft.com/.default',
        }).toString(),
      });
      expect(tokenRes.status).toBe(200);
      const { access_token } = (await tokenRes.json()) as { access_token: string };

      const r = pc.createReferral();
      const got = await fetch(`${env.PARTNER_CENTER_API_BASE}/v1.0/engagements/referrals/${r.id}`, {
        headers: { authorization: `Bearer ${access_token}` },
      });
      expect(got.status).toBe(200);
      expect(got.headers.get('etag')).toBe(r.eTag);
      expect(sim.requests.list({ provider: 'partner-center' }).length).toBe(2);

      await waitUntil(() => hub.received.length === 1, 5000, 'webhook');
      const d = hub.received[0];
      expect(d.headers['x-ms-certificate-url']).toBe(
        `${sim.url}${PARTNER_CENTER_SIM_CERT_ALIAS_PATH}`,
      );
      // PEM: the leaf and its intermediate in one bundle; the root comes from the CA file
      const verifier = new PartnerCenterSignatureVerifier({
        allowedCertUrlPrefixes: env.PARTNER_CENTER_CERT_URL_PREFIXES.split(','),
        trustedRoots: [readFileSync(env.PARTNER_CENTER_CA_FILE, 'utf8')],
        fetchCertificate: async (url) => {
          expect(url).not.toContain(PARTNER_CENTER_SIM_ISSUER_PATH); // no AIA download needed
          return Buffer.from(await (await fetch(url)).arrayBuffer());
        },
      });
      await expect(verifier.verify(d.raw, d.headers)).resolves.toBeUndefined();
    } finally {
      await sim.close();
      await hub.close();
    }
  });

  it('serves its default certificate URL and control routes through the simulator core', async () => {
    const pc = new PartnerCenterSim();
    const sim = await ProviderSimulator.start({ modules: [pc] });
    try {
      const cert = await fetch(pc.certificateUrl);
      expect(cert.status).toBe(200);
      expect(Buffer.from(await cert.arrayBuffer()).length).toBeGreaterThan(100);
      // a certificate given to the simulator (here self-signed) is what its CA file then holds
      const own = createPartnerCenterTestCert({ selfSigned: true });
      pc.setCertificate(own);
      expect(readFileSync(pc.hubEnv().PARTNER_CENTER_CA_FILE, 'utf8')).toBe(own.certPem);
      pc.createReferral();
      const listed = await fetch(`${sim.url}/_sim/partner-center/referrals`);
      expect(listed.status).toBe(200);
    } finally {
      await sim.close();
    }
  });
});
