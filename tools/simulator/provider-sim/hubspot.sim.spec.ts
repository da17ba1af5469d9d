import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { Client, Signature } from '@hubspot/api-client';
import { AssociationSpecAssociationCategoryEnum } from '@hubspot/api-client/lib/codegen/crm/objects/notes';

import { verifyHubspotSignatureV3 } from '../../../src/connectors/hubspot/hubspot-signature.verifier';
import { HubspotSim, hubspotRateLimitResponse, type HubspotWebhookEvent } from './hubspot.sim';
import type { SimProviderModule } from './sim.types';
import { ProviderSimulator } from './simulator';

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

interface Received {
  url: string;
  headers: IncomingHttpHeaders;
  raw: string;
}

/** The hub's webhook door: records requests; answers the queued statuses, then 200. */
async function receiver() {
  const received: Received[] = [];
  const statuses: number[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        url: req.url ?? '',
        headers: req.headers,
        raw: Buffer.concat(chunks).toString(),
      });
      res.writeHead(statuses.shift() ?? 200).end();
    });
  });
  return { ...(await listen(server)), received, statuses };
}

const TOKEN = 'pat-na1-sim-token';
const SECRET = 'hubspot-client-secret';

describe('HubspotSim (driven by @hubspot/api-client 13)', () => {
  let sim: HubspotSim;
  let api: { url: string; close(): Promise<void> };
  let hub: Awaited<ReturnType<typeof receiver>>;
  let client: Client;

  beforeAll(async () => {
    sim = new HubspotSim({ accessToken: TOKEN, webhookRetryDelayMs: 5 });
    api = await serve(sim);
    hub = await receiver();
    client = new Client({ accessToken: TOKEN, basePath: api.url, numberOfApiCallRetries: 0 });
  });

  afterAll(async () => {
    await sim.close?.();
    await api.close();
    await hub.close();
  });

  beforeEach(async () => {
    await sim.webhooksIdle();
    sim.reset();
    sim.setTarget(undefined);
    hub.received.length = 0;
    hub.statuses.length = 0;
  });

  const events = () => hub.received.flatMap((r) => JSON.parse(r.raw) as HubspotWebhookEvent[]);

  function seed() {
    return sim.createDeal({
      properties: { dealname: 'ACME renewal', amount: '12000', deal_currency_code: 'JPY' },
      contact: { email: 'ana@acme.example', firstname: 'Ana', lastname: 'Sato' },
      company: { name: 'ACME K.K.' },
    });
  }

  it('reads a deal with requested properties (unset ones null) and its associations', async () => {
    const { dealId, contactId, companyId } = seed();
    const deal = await client.crm.deals.basicApi.getById(
      dealId,
      ['dealname', 'amount', 'dealstage', 'pipeline', 'closeloop_billing_plan'],
      undefined,
      ['contacts', 'companies'],
    );
    expect(deal.id).toBe(dealId);
    expect(deal.properties).toMatchObject({
      dealname: 'ACME renewal',
      amount: '12000',
      dealstage: 'appointmentscheduled',
      pipeline: 'default',
      closeloop_billing_plan: null,
      hs_object_id: dealId,
    });
    expect(deal.properties.createdate).toEqual(expect.any(String));
    expect(deal.properties.hs_lastmodifieddate).toEqual(expect.any(String));
    expect(deal.properties).not.toHaveProperty('deal_currency_code');
    expect(deal.createdAt).toBeInstanceOf(Date);
    expect(deal.archived).toBe(false);
    expect(deal.associations?.contacts.results).toEqual([
      expect.objectContaining({ id: contactId, type: 'deal_to_contact' }),
    ]);
    expect(deal.associations?.companies.results).toEqual([
      expect.objectContaining({ id: companyId, type: 'deal_to_company' }),
    ]);

    const contact = await client.crm.contacts.basicApi.getById(contactId!, [
      'email',
      'firstname',
      'lastname',
    ]);
    expect(contact.properties).toMatchObject({
      email: 'ana@acme.example',
      firstname: 'Ana',
      lastname: 'Sato',
    });
    const company = await client.crm.companies.basicApi.getById(companyId!, ['name']);
    expect(company.properties.name).toBe('ACME K.K.');
  });

  it('answers 404 as ApiException code 404 with HubSpot’s error body, and 401 without a token', async () => {
    const err = (await client.crm.deals.basicApi.getById('999').catch((e: unknown) => e)) as {
      code: number;
      body: { category: string; message: string; correlationId: string };
    };
    expect(err.code).toBe(404);
    expect(err.body).toMatchObject({ category: 'OBJECT_NOT_FOUND', message: 'resource not found' });
    expect(err.body.correlationId).toEqual(expect.any(String));

    const res = await fetch(`${api.url}/crm/v3/objects/deals/1`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ status: 'error', category: 'INVALID_AUTHENTICATION' });
  });

  it('update changes the stage and emits a signed deal.propertyChange (retried after a 503)', async () => {
    const { dealId } = seed();
    sim.setTarget({ hubUrl: hub.url, hubspotClientSecret: SECRET });
    hub.statuses.push(503);
    const updated = await client.crm.deals.basicApi.update(dealId, {
      properties: { dealstage: 'closedwon', closeloop_billing_plan: 'monthly' },
    });
    expect(updated.properties).toMatchObject({
      dealstage: 'closedwon',
      closeloop_billing_plan: 'monthly',
    });
    await sim.webhooksIdle();

    expect(hub.received).toHaveLength(2);
    const [first, second] = hub.received.map((r) => JSON.parse(r.raw) as HubspotWebhookEvent[]);
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({
      subscriptionType: 'deal.propertyChange',
      propertyName: 'dealstage',
      propertyValue: 'closedwon',
      objectId: Number(dealId),
      portalId: sim.portalId,
      appId: sim.appId,
      attemptNumber: 0,
      changeSource: 'INTEGRATION',
    });
    expect(second[0]).toMatchObject({ eventId: first[0].eventId, attemptNumber: 1 });

    const last = hub.received[1];
    expect(last.url).toBe('/webhooks/hubspot');
    const timestamp = Number(last.headers['x-hubspot-request-timestamp']);
    expect(
      Signature.isValid({
        signatureVersion: 'v3',
        signature: String(last.headers['x-hubspot-signature-v3']),
        clientSecret: SECRET,
        requestBody: last.raw,
        url: `${hub.url}/webhooks/hubspot`,
        method: 'POST',
        timestamp,
      }),
    ).toBe(true);
    expect(() =>
      verifyHubspotSignatureV3({
        rawBody: Buffer.from(last.raw),
        headers: last.headers,
        method: 'POST',
        publicBaseUrl: hub.url,
        requestUrl: last.url,
        clientSecret: SECRET,
      }),
    ).not.toThrow();

    // Same stage again: no event.
    await client.crm.deals.basicApi.update(dealId, { properties: { dealstage: 'closedwon' } });
    await sim.webhooksIdle();
    expect(hub.received).toHaveLength(2);
  });

  it('creates notes associated with the deal (type 214)', async () => {
    const { dealId } = seed();
    const note = await client.crm.objects.notes.basicApi.create({
      properties: { hs_note_body: 'Invoice INV-1 sent', hs_timestamp: '2026-01-02T03:04:05.000Z' },
      associations: [
        {
          to: { id: dealId },
          types: [
            {
              associationCategory: AssociationSpecAssociationCategoryEnum.HubspotDefined,
              associationTypeId: 214,
            },
          ],
        },
      ],
    });
    expect(note.id).toEqual(expect.any(String));
    expect(note.properties.hs_note_body).toBe('Invoice INV-1 sent');
    expect(sim.notesFor(dealId)).toEqual([
      expect.objectContaining({
        id: note.id,
        body: 'Invoice INV-1 sent',
        timestamp: '2026-01-02T03:04:05.000Z',
      }),
    ]);

    const bad = (await client.crm.objects.notes.basicApi
      .create({
        properties: { hs_note_body: 'x', hs_timestamp: '2026-01-02T03:04:05.000Z' },
        associations: [
          {
            to: { id: '404404' },
            types: [
              {
                associationCategory: AssociationSpecAssociationCategoryEnum.HubspotDefined,
                associationTypeId: 214,
              },
            ],
          },
        ],
      })
      .catch((e: unknown) => e)) as { code: number };
    expect(bad.code).toBe(400);
  });

  it('seeding emits creation, stage change and deletion; paused events go out as one batch', async () => {
    sim.setTarget({
      hubUrl: hub.url,
      hubspotClientSecret: SECRET,
      publicBaseUrl: 'https://hub.example',
    });
    const { dealId } = seed();
    await sim.webhooksIdle();
    sim.pauseWebhooks();
    sim.setStage(dealId, 'contractsent');
    sim.deleteDeal(dealId);
    await new Promise((r) => setTimeout(r, 20));
    expect(hub.received).toHaveLength(1);
    sim.resumeWebhooks();
    await sim.webhooksIdle();

    expect(hub.received).toHaveLength(2);
    expect(events().map((e) => [e.subscriptionType, e.propertyValue, e.objectId])).toEqual([
      ['deal.creation', undefined, Number(dealId)],
      ['deal.propertyChange', 'contractsent', Number(dealId)],
      ['deal.deletion', undefined, Number(dealId)],
    ]);
    // Signed over the public base URL, not the address it was delivered to.
    const r = hub.received[1];
    expect(() =>
      verifyHubspotSignatureV3({
        rawBody: Buffer.from(r.raw),
        headers: r.headers,
        method: 'POST',
        publicBaseUrl: 'https://hub.example',
        requestUrl: r.url,
        clientSecret: SECRET,
      }),
    ).not.toThrow();

    const gone = (await client.crm.deals.basicApi.getById(dealId).catch((e: unknown) => e)) as {
      code: number;
    };
    expect(gone.code).toBe(404);
  });

  it('provides HubSpot’s 429 shape for fault injection', () => {
    const r = hubspotRateLimitResponse();
    expect(r.status).toBe(429);
    expect(r.body).toMatchObject({
      status: 'error',
      errorType: 'RATE_LIMIT',
      policyName: 'TEN_SECONDLY_ROLLING',
      message: 'You have reached your ten_secondly_rolling limit.',
    });
    expect(r.headers).toHaveProperty('X-HubSpot-RateLimit-Remaining', '0');
  });

  it('serves the control API under /_sim/hubspot', async () => {
    const res = await fetch(`${api.url}/_sim/hubspot/deals`, {
      method: 'POST',
      body: JSON.stringify({
        properties: { dealname: 'Via HTTP' },
        contact: { email: 'a@b.example' },
      }),
    });
    expect(res.status).toBe(201);
    const { dealId } = (await res.json()) as { dealId: string };
    await fetch(`${api.url}/_sim/hubspot/deals/${dealId}/stage`, {
      method: 'POST',
      body: JSON.stringify({ stage: 'closedwon' }),
    });
    expect(sim.deal(dealId)?.properties.dealstage).toBe('closedwon');
  });
});
