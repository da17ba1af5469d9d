import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as jwt from 'jsonwebtoken';

import {
  type DocusignOAuthServer,
  generateDocusignKeyPair,
  startDocusignOAuth,
} from './docusign-oauth';
import { type DocusignConnectMessage, DocusignSim } from './docusign.sim';
import { minimalPdf } from './pdf';
import type { SimProviderModule } from './sim.types';
import { ProviderSimulator } from './simulator';

/** The part of docusign-esign 10 (no typings) this test drives. */
interface DsApiClient {
  addDefaultHeader(name: string, value: string): void;
}
interface DsModule {
  ApiClient: new (opts?: { basePath?: string }) => DsApiClient;
  EnvelopesApi: new (client: DsApiClient) => {
    createEnvelope(
      accountId: string,
      opts: { envelopeDefinition: unknown },
    ): Promise<{
      envelopeId: string;
      status: string;
      statusDateTime: string;
      uri: string;
    }>;
    getEnvelope(
      accountId: string,
      envelopeId: string,
      opts?: { include?: string },
    ): Promise<{
      envelopeId: string;
      status: string;
      customFields?: { textCustomFields: unknown[] };
    }>;
    listStatusChanges(
      accountId: string,
      opts: { fromDate: string; customField?: string; include?: string },
    ): Promise<{ envelopes?: { envelopeId: string; status: string }[]; resultSetSize: string }>;
    getDocument(
      accountId: string,
      envelopeId: string,
      documentId: string,
      opts?: { certificate?: string },
    ): Promise<Buffer | string>;
  };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const docusign = require('docusign-esign') as DsModule;

/** The module behind the simulator core (the same server the tests, demo and bench use). */
async function serve(module: SimProviderModule): Promise<{ url: string; close(): Promise<void> }> {
  const core = await ProviderSimulator.start({ modules: [module] });
  return { url: core.url, close: () => core.close() };
}

async function listen(server: Server) {
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

async function receiver() {
  const received: { url: string; headers: IncomingHttpHeaders; raw: Buffer }[] = [];
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

/**
 * The JWT grant part runs through docusign-esign in a child process. The SDK always speaks https
 * to the OAuth host with axios' default agent and offers no option for a CA, so the self-signed
 * certificate has to be trusted process-wide; NODE_EXTRA_CA_CERTS is read only when Node starts,
 * and patching https.globalAgent inside the shared jest worker would leak into other suites. The
 * child is started exactly the way the hub is (NODE_EXTRA_CA_CERTS=caPath), which also proves the
 * written CA file is what the hub needs. REST calls go over plain http, so they run in-process.
 */
const JWT_PROBE = `
const ds = require('docusign-esign');
const p = JSON.parse(process.env.DS_PROBE);
const fail = (e) => ({ status: e.response && e.response.status, data: e.response && e.response.data, code: e.code });
(async () => {
  const client = new ds.ApiClient();
  client.setOAuthBasePath(p.host);
  const out = {};
  const res = await client.requestJWTUserToken(p.integrationKey, p.userId, ['signature', 'impersonation'], p.privateKey, 3600);
  out.token = res.body.access_token;
  out.expiresIn = res.body.expires_in;
  out.tokenType = res.body.token_type;
  const info = await client.getUserInfo(out.token);
  out.account = info.accounts[0];
  try {
    await client.requestJWTUserToken(p.integrationKey, p.userId, ['signature', 'impersonation'], p.wrongKey, 3600);
    out.wrongKey = 'accepted';
  } catch (e) { out.wrongKey = fail(e); }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
`;

function runProbe(env: Record<string, string>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['-e', JWT_PROBE],
      { cwd: join(__dirname, '../../..'), env: { ...process.env, ...env }, timeout: 10_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`${err.message}\n${stderr}`));
        resolve(JSON.parse(stdout) as Record<string, unknown>);
      },
    );
  });
}

/** POST /oauth/token in-process with the CA given explicitly (node:https `ca` option). */
function postToken(
  oauth: DocusignOAuthServer,
  assertion: string,
): Promise<{ status: number; body: unknown }> {
  const body = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
    assertion,
  }).toString();
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: oauth.port,
        path: '/oauth/token',
        method: 'POST',
        ca: oauth.caPem,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString()),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const INTEGRATION_KEY = '7c2b8d7e-0000-4000-8000-00000000abcd';
const USER_ID = '5e6f7a8b-0000-4000-8000-000000000002';
const ACCOUNT_ID = '1a2b3c4d-0000-4000-8000-000000000001';
const TEMPLATE_ID = '4f1f0f6e-0000-4000-8000-0000000000aa';
const HMAC_KEY = 'connect-hmac-key-1';

describe('DocusignSim + DocuSign OAuth (driven by docusign-esign 10)', () => {
  const keys = generateDocusignKeyPair();
  let certDir: string;
  let sim: DocusignSim;
  let api: Awaited<ReturnType<typeof serve>>;
  let hub: Awaited<ReturnType<typeof receiver>>;
  let oauth: DocusignOAuthServer;
  let probe: Record<string, unknown>;

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'ds-sim-'));
    sim = new DocusignSim({ accountId: ACCOUNT_ID, userId: USER_ID, webhookRetryDelayMs: 5 });
    sim.addTemplate(TEMPLATE_ID, ['signer'], { name: 'Order Form' });
    api = await serve(sim);
    hub = await receiver();
    oauth = await startDocusignOAuth({
      integrationKey: INTEGRATION_KEY,
      userId: USER_ID,
      publicKeyPem: keys.publicKeyPem,
      accountId: ACCOUNT_ID,
      baseUri: api.url,
      certDir,
      tokens: sim,
    });
    probe = await runProbe({
      NODE_EXTRA_CA_CERTS: oauth.caPath,
      DS_PROBE: JSON.stringify({
        host: oauth.host,
        integrationKey: INTEGRATION_KEY,
        userId: USER_ID,
        privateKey: keys.privateKeyPem,
        wrongKey: generateDocusignKeyPair().privateKeyPem,
      }),
    });
  });

  afterAll(async () => {
    await sim.close();
    await Promise.all([api.close(), hub.close(), oauth.close()]);
    rmSync(certDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await sim.webhooksIdle();
    sim.reset();
    sim.setTarget(undefined);
    hub.received.length = 0;
  });

  function restClient(token: string) {
    const client = new docusign.ApiClient({ basePath: `${api.url}/restapi` });
    client.addDefaultHeader('Authorization', `Bearer ${token}`);
    return new docusign.EnvelopesApi(client);
  }

  const definition = (dealId: string, templateId = TEMPLATE_ID, roleName = 'signer') => ({
    templateId,
    status: 'sent',
    emailSubject: 'Please sign: ACME Order Form',
    templateRoles: [
      {
        email: 'ana@acme.example',
        name: 'Ana Sato',
        roleName,
        tabs: {
          textTabs: [
            { tabLabel: 'company_name', value: 'ACME K.K.' },
            { tabLabel: 'amount', value: '12,000 JPY' },
          ],
        },
      },
    ],
    customFields: {
      textCustomFields: [
        { name: 'closeloop_deal_id', value: dealId, show: 'false', required: 'false' },
      ],
    },
  });

  it('issues a token for a valid JWT (aud = host:port) and serves userinfo; refuses a JWT signed with another key', () => {
    expect(readFileSync(oauth.caPath, 'utf8')).toContain('BEGIN CERTIFICATE');
    expect(probe.token).toEqual(expect.any(String));
    expect(probe).toMatchObject({ expiresIn: 3600, tokenType: 'Bearer' });
    expect(probe.account).toMatchObject({
      accountId: ACCOUNT_ID,
      isDefault: 'true',
      baseUri: api.url,
    });
    expect(probe.wrongKey).toMatchObject({ status: 400, data: { error: 'invalid_grant' } });
    expect(oauth.tokenRequests).toBe(2);
    expect(oauth.tokensIssued).toBe(1);
  });

  it('checks iss, sub, aud, scope and consent', async () => {
    const sign = (claims: Record<string, unknown>) =>
      jwt.sign(
        {
          iss: INTEGRATION_KEY,
          sub: USER_ID,
          aud: oauth.host,
          scope: 'signature impersonation',
          ...claims,
        },
        keys.privateKeyPem,
        { algorithm: 'RS256', expiresIn: 600 },
      );
    expect((await postToken(oauth, sign({}))).status).toBe(200);
    expect(await postToken(oauth, sign({ aud: 'account-d.docusign.com' }))).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    });
    expect(await postToken(oauth, sign({ aud: `https://${oauth.host}` }))).toMatchObject({
      status: 400,
    });
    expect(await postToken(oauth, sign({ iss: 'other' }))).toMatchObject({
      body: { error: 'invalid_grant' },
    });
    expect(await postToken(oauth, sign({ sub: 'other' }))).toMatchObject({
      body: { error: 'invalid_grant' },
    });
    expect(await postToken(oauth, sign({ scope: 'impersonation' }))).toMatchObject({ status: 400 });
    oauth.setConsent(false);
    try {
      expect(await postToken(oauth, sign({}))).toMatchObject({
        status: 400,
        body: { error: 'consent_required' },
      });
    } finally {
      oauth.setConsent(true);
    }
  });

  it('creates an envelope from a template with text tabs and custom fields; lists it by custom field', async () => {
    const envelopes = restClient(probe.token as string);
    const summary = await envelopes.createEnvelope(ACCOUNT_ID, {
      envelopeDefinition: definition('deal-42'),
    });
    expect(summary).toMatchObject({ status: 'sent', uri: `/envelopes/${summary.envelopeId}` });
    expect(summary.envelopeId).toMatch(/^[0-9a-f-]{36}$/);
    expect(summary.statusDateTime).toMatch(/\.\d{7}Z$/);

    const stored = sim.envelope(summary.envelopeId);
    expect(stored?.textTabs).toEqual({ company_name: 'ACME K.K.', amount: '12,000 JPY' });
    expect(stored?.roles[0]).toMatchObject({ email: 'ana@acme.example', roleName: 'signer' });
    expect(stored?.customFields).toEqual([
      expect.objectContaining({ name: 'closeloop_deal_id', value: 'deal-42', show: 'false' }),
    ]);

    await envelopes.createEnvelope(ACCOUNT_ID, { envelopeDefinition: definition('deal-43') });
    const fromDate = new Date(Date.now() - 60_000).toISOString();
    const found = await envelopes.listStatusChanges(ACCOUNT_ID, {
      fromDate,
      customField: 'closeloop_deal_id=deal-42',
    });
    expect(found.resultSetSize).toBe('1');
    expect(found.envelopes?.map((e) => e.envelopeId)).toEqual([summary.envelopeId]);
    const none = await envelopes.listStatusChanges(ACCOUNT_ID, {
      fromDate,
      customField: 'closeloop_deal_id=nope',
    });
    expect(none.resultSetSize).toBe('0');
    expect(none.envelopes).toBeUndefined();

    const got = await envelopes.getEnvelope(ACCOUNT_ID, summary.envelopeId, {
      include: 'custom_fields',
    });
    expect(got.customFields?.textCustomFields).toEqual([
      expect.objectContaining({ name: 'closeloop_deal_id', value: 'deal-42' }),
    ]);
  });

  it('rejects unknown templates, unknown roles and tokens it did not issue', async () => {
    const envelopes = restClient(probe.token as string);
    const err = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: { response?: { status: number; data: unknown } }) => e.response,
      );
    expect(
      await err(
        envelopes.createEnvelope(ACCOUNT_ID, { envelopeDefinition: definition('d', 'nope') }),
      ),
    ).toMatchObject({ status: 400, data: { errorCode: 'TEMPLATE_ID_INVALID' } });
    expect(
      await err(
        envelopes.createEnvelope(ACCOUNT_ID, {
          envelopeDefinition: definition('d', TEMPLATE_ID, 'approver'),
        }),
      ),
    ).toMatchObject({ status: 400, data: { errorCode: 'INVALID_ROLE' } });
    expect(
      await err(
        restClient('forged').createEnvelope(ACCOUNT_ID, { envelopeDefinition: definition('d') }),
      ),
    ).toMatchObject({ status: 401, data: { errorCode: 'AUTHORIZATION_INVALID_TOKEN' } });
    expect(sim.envelopes()).toHaveLength(0);
  });

  it('serves an envelope’s combined PDF (with the certificate when asked) and its certificate as PDF bytes', async () => {
    const envelopes = restClient(probe.token as string);
    const { envelopeId } = await envelopes.createEnvelope(ACCOUNT_ID, {
      envelopeDefinition: definition('deal-docs'),
    });
    sim.complete(envelopeId);

    const combined = await envelopes.getDocument(ACCOUNT_ID, envelopeId, 'combined', {
      certificate: 'true',
    });
    const certificate = await envelopes.getDocument(ACCOUNT_ID, envelopeId, 'certificate');
    const contractOnly = await envelopes.getDocument(ACCOUNT_ID, envelopeId, 'combined');

    expect(Buffer.isBuffer(combined) && Buffer.isBuffer(certificate)).toBe(true);
    expect((combined as Buffer).equals(sim.documentBytes(envelopeId, 'combined', true)!)).toBe(
      true,
    );
    expect((certificate as Buffer).equals(sim.documentBytes(envelopeId, 'certificate')!)).toBe(
      true,
    );
    expect(pageCount(combined as Buffer)).toBe(2);
    expect(pageCount(contractOnly as Buffer)).toBe(1);
    expect(pageCount(certificate as Buffer)).toBe(1);
    const text = (certificate as Buffer).toString('latin1');
    expect(text).toContain('(Certificate Of Completion)');
    expect(text).toContain(`(Envelope Id: ${envelopeId})`);
    expect(text).toContain('(Status: Completed)');
    // The same envelope serves the same bytes each time.
    expect(
      ((await envelopes.getDocument(ACCOUNT_ID, envelopeId, 'certificate')) as Buffer).equals(
        certificate as Buffer,
      ),
    ).toBe(true);
  });

  it('answers 404 for an unknown envelope or document, 401 for a token it did not issue', async () => {
    const envelopes = restClient(probe.token as string);
    const { envelopeId } = await envelopes.createEnvelope(ACCOUNT_ID, {
      envelopeDefinition: definition('deal-docs'),
    });
    const status = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: { response?: { status: number } }) => e.response?.status,
      );
    expect(
      await status(
        envelopes.getDocument(ACCOUNT_ID, '00000000-0000-4000-8000-000000000000', 'combined'),
      ),
    ).toBe(404);
    expect(await status(envelopes.getDocument(ACCOUNT_ID, envelopeId, '7'))).toBe(404);
    expect(
      await status(restClient('forged').getDocument(ACCOUNT_ID, envelopeId, 'certificate')),
    ).toBe(401);
    // Like DocuSign, an envelope not completed yet still has documents; its certificate says so.
    expect(sim.documentBytes(envelopeId, 'certificate')!.toString('latin1')).toContain(
      '(Status: Sent)',
    );
  });

  it('emits HMAC-signed Connect messages (sent, completed), retrying a failed delivery', async () => {
    sim.setTarget({ hubUrl: hub.url, docusignHmacKeys: [HMAC_KEY] });
    const { envelopeId } = await restClient(probe.token as string).createEnvelope(ACCOUNT_ID, {
      envelopeDefinition: definition('deal-7'),
    });
    await sim.webhooksIdle();
    hub.statuses.push(500);
    sim.complete(envelopeId);
    await sim.webhooksIdle();

    expect(hub.received.map((r) => r.url)).toEqual(Array(3).fill('/webhooks/docusign'));
    const messages = hub.received.map(
      (r) => JSON.parse(r.raw.toString()) as DocusignConnectMessage,
    );
    expect(messages.map((m) => [m.event, m.retryCount])).toEqual([
      ['envelope-sent', 0],
      ['envelope-completed', 0],
      ['envelope-completed', 1],
    ]);
    const completed = messages[2];
    expect(completed).toMatchObject({
      apiVersion: 'v2.1',
      uri: `/restapi/v2.1/accounts/${ACCOUNT_ID}/envelopes/${envelopeId}`,
      configurationId: expect.any(Number),
      data: {
        accountId: ACCOUNT_ID,
        userId: USER_ID,
        envelopeId,
        envelopeSummary: {
          envelopeId,
          status: 'completed',
          emailSubject: 'Please sign: ACME Order Form',
          customFields: {
            textCustomFields: [
              expect.objectContaining({ name: 'closeloop_deal_id', value: 'deal-7' }),
            ],
          },
        },
      },
    });
    expect(completed.generatedDateTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/);
    expect(completed.generatedDateTime).toBe(messages[1].generatedDateTime);
    for (const r of hub.received) {
      const expected = createHmac('sha256', HMAC_KEY).update(r.raw).digest('base64');
      expect(r.headers['x-docusign-signature-1']).toBe(expected);
    }
    expect(sim.envelope(envelopeId)?.status).toBe('completed');
  });
});

/** Pages of a PDF written by minimalPdf, after checking its cross-reference table points at its objects. */
function pageCount(pdf: Buffer): number {
  const text = pdf.toString('latin1');
  expect(text.startsWith('%PDF-1.4\n')).toBe(true);
  expect(text.endsWith('%%EOF\n')).toBe(true);
  const startxref = Number(/startxref\n(\d+)\n%%EOF\n$/.exec(text)?.[1]);
  expect(text.slice(startxref, startxref + 4)).toBe('xref');
  const offsets = [...text.slice(startxref).matchAll(/^(\d{10}) 00000 n $/gm)].map((m) =>
    Number(m[1]),
  );
  offsets.forEach((offset, i) =>
    expect(text.slice(offset).startsWith(`${i + 1} 0 obj`)).toBe(true),
  );
  return Number(/\/Type \/Pages \/Kids \[[^\]]*\] \/Count (\d+)/.exec(text)?.[1]);
}

describe('minimalPdf', () => {
  it('writes a PDF whose cross-reference table points at every object, one page per entry', () => {
    expect(pageCount(minimalPdf([['a'], ['b (c) \\ d'], ['日本']]))).toBe(3);
    expect(minimalPdf([['b (c) \\ d']]).toString('latin1')).toContain('(b \\(c\\) \\\\ d) Tj');
  });
});
