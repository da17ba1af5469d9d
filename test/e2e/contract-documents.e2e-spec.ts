import { Pool } from 'pg';

import {
  CONTRACT_PLAN,
  E2E,
  admin,
  dealIdForCrm,
  getDeal,
  startE2EHub,
  startProviders,
} from '../support/e2e';
import { RunningHub, flushTestRedis, testDb, truncateAll, waitFor } from '../support/hub';

/**
 * A deal's signed contract and its certificate of completion (締結証明書), read from DocuSign (the
 * simulator) through the admin API and the dashboard: the bytes DocuSign served, only once the
 * contract is COMPLETED, to every role from viewer up.
 */
describe('contract documents: the signed PDF and its certificate, from DocuSign', () => {
  let e2e: E2E;
  let hub: RunningHub;
  let db: Pool;
  let dealId: string;
  let envelopeId: string;
  let noContractDealId: string;
  const tokens: Record<'viewer' | 'finance', string> = { viewer: '', finance: '' };

  const api = (path: string, token = tokens.viewer) =>
    fetch(`${hub.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const bytesOf = async (res: Response) => Buffer.from(await res.arrayBuffer());

  async function createToken(name: string, role: string): Promise<{ id: string; token: string }> {
    const res = await fetch(`${hub.url}/api/tokens`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ name, role }),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as { id: string; token: string };
  }

  function hubspotDeal(name: string, dealstage: string) {
    return e2e.hubspot.createDeal({
      properties: {
        dealname: name,
        amount: '400000',
        deal_currency_code: 'JPY',
        pipeline: 'default',
        dealstage,
        closeloop_billing_plan: JSON.stringify(CONTRACT_PLAN),
      },
      contact: { email: 'tanaka@example.co.jp', firstname: 'Taro', lastname: 'Tanaka' },
      company: { name: 'Example K.K.' },
    }).dealId;
  }

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await flushTestRedis();
    e2e = await startProviders();
    hub = await startE2EHub(e2e);
    tokens.viewer = (await createToken('docs-viewer', 'viewer')).token;
    tokens.finance = (await createToken('docs-finance', 'finance')).token;

    const crmDealId = hubspotDeal('Website renewal', 'appointmentscheduled');
    dealId = await dealIdForCrm(db, crmDealId);
    await waitFor(async () => (await getDeal(hub.url, dealId)).stage === 'APPOINTMENT', {
      what: 'APPOINTMENT',
    });
    e2e.hubspot.setStage(crmDealId, 'contractsent');
    envelopeId = (await waitFor(() => e2e.docusign.envelopes()[0], { what: 'envelope' }))!
      .envelopeId;
    await waitFor(
      async () => {
        const contract = (await getDeal(hub.url, dealId)) as unknown as {
          contract?: { status: string; envelopeId: string | null };
        };
        return contract.contract?.status === 'SENT' && contract.contract.envelopeId === envelopeId;
      },
      { what: 'contract SENT with its envelope' },
    );

    noContractDealId = await dealIdForCrm(db, hubspotDeal('No contract yet', 'qualifiedtobuy'));
  });

  afterAll(async () => {
    await hub?.stop();
    await e2e?.close();
    await db?.end();
  });

  afterEach(() => e2e.sim.faults.clear());

  it('answers 409 while the contract is not completed, 404 without a deal or a contract', async () => {
    const sent = await api(`/api/deals/${dealId}/contract/document`);
    expect(sent.status).toBe(409);
    expect(sent.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await sent.json()).toEqual({
      error: {
        code: 'CONTRACT_NOT_COMPLETED',
        message: `the contract of deal ${dealId} is SENT: its documents are served once it is COMPLETED`,
      },
    });
    expect((await api(`/api/deals/${dealId}/contract/certificate`)).status).toBe(409);

    const unknown = await api('/api/deals/cl_deal_nope/contract/certificate');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({
      error: { code: 'NOT_FOUND', message: 'deal cl_deal_nope not found' },
    });
    const bare = await api(`/api/deals/${noContractDealId}/contract/document`);
    expect(bare.status).toBe(404);
    expect(await bare.json()).toEqual({
      error: { code: 'NOT_FOUND', message: `deal ${noContractDealId} has no contract` },
    });
    // Nothing was asked of DocuSign for any of these.
    expect(docusignDocumentRequests()).toEqual([]);
  });

  it('serves the combined PDF with the certificate and the certificate alone, byte for byte, once COMPLETED', async () => {
    e2e.docusign.complete(envelopeId);
    await waitFor(
      async () =>
        ((await getDeal(hub.url, dealId)) as unknown as { contract?: { status: string } }).contract
          ?.status === 'COMPLETED',
      { what: 'contract COMPLETED', timeoutMs: 20_000 },
    );

    const combined = await api(`/api/deals/${dealId}/contract/document`);
    expect(combined.status).toBe(200);
    expect(combined.headers.get('content-type')).toBe('application/pdf');
    expect(combined.headers.get('content-disposition')).toBe(
      `attachment; filename="contract-${dealId}.pdf"`,
    );
    expect(combined.headers.get('cache-control')).toBe('no-store');
    const served = e2e.docusign.documentBytes(envelopeId, 'combined', true)!;
    const combinedBytes = await bytesOf(combined);
    expect(combinedBytes.equals(served)).toBe(true);
    expect(combinedBytes.toString('latin1')).toContain('(Certificate Of Completion)');

    const certificate = await api(`/api/deals/${dealId}/contract/certificate`, tokens.finance);
    expect(certificate.status).toBe(200);
    expect(certificate.headers.get('content-disposition')).toBe(
      `attachment; filename="certificate-${dealId}.pdf"`,
    );
    const certificateBytes = await bytesOf(certificate);
    expect(certificateBytes.equals(e2e.docusign.documentBytes(envelopeId, 'certificate')!)).toBe(
      true,
    );
    expect(certificateBytes.equals(combinedBytes)).toBe(false);

    // What the hub asked DocuSign for (the combined bytes above are those of ?certificate=true).
    expect(docusignDocumentRequests()).toEqual([
      `GET ${envelopeId}/documents/combined`,
      `GET ${envelopeId}/documents/certificate`,
    ]);
  });

  it('refuses without a valid token (401) and names DocuSign’s failure (502)', async () => {
    expect((await fetch(`${hub.url}/api/deals/${dealId}/contract/document`)).status).toBe(401);
    expect((await api(`/api/deals/${dealId}/contract/document`, 'cl_bogus')).status).toBe(401);

    e2e.sim.faults.add({
      provider: 'docusign',
      path: { regex: '/documents/certificate$' },
      responses: [
        {
          status: 503,
          body: { errorCode: 'SERVICE_UNAVAILABLE', message: 'DocuSign is down for maintenance' },
        },
      ],
    });
    const failed = await api(`/api/deals/${dealId}/contract/certificate`);
    expect(failed.status).toBe(502);
    expect(await failed.json()).toEqual({
      error: {
        code: 'ESIGNATURE_UNAVAILABLE',
        message: `could not read the certificate document of envelope ${envelopeId} from DocuSign: docusign 503 SERVICE_UNAVAILABLE: DocuSign is down for maintenance`,
      },
    });
  });

  it('links both documents on the dashboard deal page and serves the same bytes under the session', async () => {
    const cookie = await dashboardSession(tokens.viewer);
    const page = await fetch(`${hub.url}/dashboard/deals/${dealId}`, { headers: { cookie } });
    const html = await page.text();
    expect(html).toContain(`href="/dashboard/deals/${dealId}/contract/document"`);
    expect(html).toContain(`href="/dashboard/deals/${dealId}/contract/certificate"`);
    expect(html).toContain('締結証明書（PDF）');

    const certificate = await fetch(`${hub.url}/dashboard/deals/${dealId}/contract/certificate`, {
      headers: { cookie },
    });
    expect(certificate.status).toBe(200);
    expect(certificate.headers.get('content-type')).toBe('application/pdf');
    expect(certificate.headers.get('content-disposition')).toBe(
      `attachment; filename="certificate-${dealId}.pdf"`,
    );
    expect(
      (await bytesOf(certificate)).equals(e2e.docusign.documentBytes(envelopeId, 'certificate')!),
    ).toBe(true);
    const combined = await fetch(`${hub.url}/dashboard/deals/${dealId}/contract/document`, {
      headers: { cookie },
    });
    expect(
      (await bytesOf(combined)).equals(e2e.docusign.documentBytes(envelopeId, 'combined', true)!),
    ).toBe(true);

    // Without a completed contract: no links, and the download is an error page, not a PDF.
    const bare = await fetch(`${hub.url}/dashboard/deals/${noContractDealId}`, {
      headers: { cookie },
    });
    expect(await bare.text()).not.toContain('/contract/document');
    const refused = await fetch(
      `${hub.url}/dashboard/deals/${noContractDealId}/contract/document`,
      { headers: { cookie } },
    );
    expect(refused.status).toBe(404);
    expect(refused.headers.get('content-type')).toMatch(/^text\/html/);
    // No session: the login form, not the document.
    const anonymous = await fetch(`${hub.url}/dashboard/deals/${dealId}/contract/document`, {
      redirect: 'manual',
    });
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.get('location')).toMatch(/^\/dashboard\/login\?next=/);
  });

  function docusignDocumentRequests(): string[] {
    return e2e.sim.requests
      .list({ provider: 'docusign', method: 'GET' })
      .filter((r) => r.path.includes('/documents/'))
      .map((r) => `${r.method} ${r.path.replace(/^.*\/envelopes\//, '')}`);
  }

  /** Logs in through the dashboard's form; returns the Cookie header of the session. */
  async function dashboardSession(token: string): Promise<string> {
    const form = await fetch(`${hub.url}/dashboard/login`);
    const loginCsrf = /cl_login=([^;]+)/.exec(form.headers.getSetCookie().join('\n'))![1];
    const res = await fetch(`${hub.url}/dashboard/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        cookie: `cl_login=${loginCsrf}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ _csrf: loginCsrf, token }).toString(),
    });
    expect(res.status).toBe(302);
    const session = /cl_session=([^;]+)/.exec(res.headers.getSetCookie().join('\n'))![1];
    return `cl_session=${session}; cl_lang=ja`;
  }
});
