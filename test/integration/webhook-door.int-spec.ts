import { seedTestDeals } from '../support/failures';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { Server, createServer, request as httpRequest } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Pool } from 'pg';
import Stripe from 'stripe';

import {
  PartnerCenterTestCert,
  createPartnerCenterTestCa,
  createPartnerCenterTestCert,
  partnerCenterSignatureHeaders,
  writePartnerCenterCaFile,
} from '../../tools/simulator/partner-center-cert';
import {
  Delivery,
  hubspotDelivery,
  send,
  standardDelivery,
  stripeDelivery,
} from '../../tools/simulator/signed-delivery';
import { hubspotSignatureV3 } from '../../src/connectors/hubspot/hubspot-signature.verifier';
import { signStandardWebhook } from '../../src/common/standard-webhooks';
import { RunningHub, flushTestRedis, startHub, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';

/**
 * The webhook door (CONTRACT §3) against the built hub on real Postgres and Redis. The door tests
 * run against an api-only hub, so the outbox rows an accepted delivery writes stay visible (no relay
 * drains them): "no row" below means no webhook_event row AND no outbox row. The processing tests
 * at the end add a worker.
 */
const PUBLIC_BASE_URL = 'https://hub.example.test'; // hubEnv's PUBLIC_BASE_URL
const MIB = 1024 * 1024;
const json = { 'content-type': 'application/json' };
const DOCUSIGN_KEYS = TEST_SECRETS.DOCUSIGN_CONNECT_HMAC_KEYS.split(',');
const WRONG_WHSEC = 'whsec_d3JvbmctYnV0LXdlbGwtZm9ybWVkLWtleQ==';

let seq = 0;
const uniq = () => `${Date.now().toString(36)}${(++seq).toString(36)}`;

interface SignOptions {
  /** Sign with a key the hub does not know. */
  wrongKey?: boolean;
  /** Seconds (ms for HubSpot) to move the timestamp into the past. */
  ageSeconds?: number;
  /** Standard Webhooks message id (the identity). */
  id?: string;
}

/** Everything the table tests need to know about one provider path. */
interface ProviderKit {
  provider: string;
  path: string;
  /** A fresh event body for `id`, and the identity the hub must store for it. */
  body(id: string): unknown;
  identity(id: string): string;
  type: string;
  /** Signs an arbitrary raw body the way the provider does. */
  sign(raw: string, o?: SignOptions): Delivery;
  /** Removes the signature headers. */
  unsign(d: Delivery): Delivery;
  /** A body, correctly signed, that has no identity. */
  withoutIdentity(id: string): unknown;
  /** Providers whose scheme carries a signed timestamp. */
  stale: boolean;
}

const withoutKeys = (headers: Record<string, string>, ...names: string[]) =>
  Object.fromEntries(Object.entries(headers).filter(([k]) => !names.includes(k.toLowerCase())));

function standardKit(
  provider: string,
  path: string,
  secret: string,
  type: string,
  data: (id: string) => unknown,
): ProviderKit {
  return {
    provider,
    path,
    type,
    body: (id) => ({ type, data: data(id) }),
    identity: (id) => `msg_${id}`,
    sign(raw, o = {}) {
      const id = o.id ?? `msg_${uniq()}`;
      const ts = Math.floor(Date.now() / 1000) - (o.ageSeconds ?? 0);
      return {
        path,
        headers: {
          ...json,
          'webhook-id': id,
          'webhook-timestamp': String(ts),
          'webhook-signature': signStandardWebhook(o.wrongKey ? WRONG_WHSEC : secret, id, ts, raw),
        },
        body: raw,
      };
    },
    unsign: (d) => ({ ...d, headers: withoutKeys(d.headers, 'webhook-signature') }),
    withoutIdentity: (id) => ({ data: data(id) }), // no type: nothing to dispatch on
    stale: true,
  };
}

let cert: PartnerCenterTestCert;
let certBase: string;
/** PARTNER_CENTER_CA_FILE of the hubs: the root of `cert`'s CA, the only root they trust. */
let caFile: string;
/** Self-signed, O=Microsoft Corporation: what anyone can make. */
let forged: PartnerCenterTestCert;
const otherKey = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
}).privateKey;

const kits: ProviderKit[] = [
  {
    provider: 'docusign',
    path: '/webhooks/docusign',
    type: 'envelope-completed',
    body: (id) => ({
      event: 'envelope-completed',
      apiVersion: 'v2.1',
      retryCount: 0,
      generatedDateTime: '2026-11-23T10:00:00.1234567Z',
      data: { accountId: 'acc-1', envelopeId: `env-${id}` },
    }),
    identity: (id) => `env-${id}|envelope-completed|2026-11-23T10:00:00.1234567Z`,
    sign(raw, o = {}) {
      const key = o.wrongKey ? 'not-a-configured-key' : DOCUSIGN_KEYS[1]; // any configured key
      return {
        path: '/webhooks/docusign',
        headers: {
          ...json,
          'x-authorization-digest': 'HMACSHA256',
          'x-docusign-signature-1': createHmac('sha256', key).update(raw).digest('base64'),
        },
        body: raw,
      };
    },
    unsign: (d) => ({ ...d, headers: withoutKeys(d.headers, 'x-docusign-signature-1') }),
    withoutIdentity: (id) => ({ event: 'envelope-completed', data: { envelopeId: `env-${id}` } }),
    stale: false,
  },
  {
    provider: 'hubspot',
    path: '/webhooks/hubspot',
    type: 'deal.propertyChange',
    body: (id) => [
      {
        eventId: 3816279340,
        subscriptionId: 25,
        portalId: 33,
        appId: 1160452,
        occurredAt: 1795400000000,
        subscriptionType: 'deal.propertyChange',
        attemptNumber: 0,
        objectId: id,
        propertyName: 'dealstage',
        propertyValue: 'closedwon',
        changeSource: 'CRM_UI',
      },
    ],
    identity: (id) => `33|25|3816279340|1795400000000|${id}`,
    sign(raw, o = {}) {
      const timestamp = String(Date.now() - (o.ageSeconds ?? 0) * 1000);
      const signature = hubspotSignatureV3({
        method: 'POST',
        publicBaseUrl: PUBLIC_BASE_URL,
        requestUrl: '/webhooks/hubspot',
        rawBody: raw,
        timestamp,
        clientSecret: o.wrongKey ? 'wrong-client-secret' : TEST_SECRETS.HUBSPOT_CLIENT_SECRET,
      });
      return {
        path: '/webhooks/hubspot',
        headers: {
          ...json,
          'x-hubspot-signature-v3': signature,
          'x-hubspot-request-timestamp': timestamp,
        },
        body: raw,
      };
    },
    unsign: (d) => ({ ...d, headers: withoutKeys(d.headers, 'x-hubspot-signature-v3') }),
    withoutIdentity: (id) => [
      { subscriptionId: 25, portalId: 33, occurredAt: 1795400000000, objectId: id }, // no eventId
    ],
    stale: true,
  },
  {
    provider: 'stripe',
    path: '/webhooks/stripe',
    type: 'invoice.paid',
    body: (id) => ({
      id: `evt_${id}`,
      object: 'event',
      type: 'invoice.paid',
      created: 1795400000,
      data: { object: { id: `in_${id}`, object: 'invoice', metadata: {} } },
    }),
    identity: (id) => `evt_${id}`,
    sign(raw, o = {}) {
      const header = Stripe.webhooks.generateTestHeaderString({
        payload: raw,
        secret: o.wrongKey ? 'whsec_wrong' : TEST_SECRETS.STRIPE_WEBHOOK_SECRET,
        timestamp: Math.floor(Date.now() / 1000) - (o.ageSeconds ?? 0),
      });
      return {
        path: '/webhooks/stripe',
        headers: { ...json, 'stripe-signature': header },
        body: raw,
      };
    },
    unsign: (d) => ({ ...d, headers: withoutKeys(d.headers, 'stripe-signature') }),
    withoutIdentity: () => ({ object: 'event', type: 'invoice.paid', data: { object: {} } }),
    stale: true,
  },
  standardKit(
    'milestones',
    '/webhooks/milestones',
    TEST_SECRETS.MILESTONE_WEBHOOK_SECRET,
    'milestone.accepted',
    (id) => ({ dealId: `cl_deal_${id}`, itemKey: 'design', acceptedAt: '2026-11-23T10:00:00Z' }),
  ),
  standardKit(
    'generic',
    '/webhooks/referrals/generic',
    TEST_SECRETS.REFERRAL_WEBHOOK_SECRET,
    'referral.created',
    (id) => ({
      referralId: `ref-${id}`,
      platform: 'imitsu',
      customer: { name: 'ACME K.K.' },
      title: 'Website renewal',
    }),
  ),
  {
    provider: 'partner-center',
    path: '/webhooks/referrals/partner-center',
    type: 'referral-created',
    body: (id) => ({
      EventName: 'referral-created',
      ResourceUri: `https://api.partnercenter.microsoft.com/engagements/v1/referrals/${id}`,
      ResourceName: 'referral',
      AuditUri: null,
      ResourceChangeUtcDate: '2026-11-23T10:00:00.5485487+00:00',
    }),
    identity: (id) =>
      `referral-created|https://api.partnercenter.microsoft.com/engagements/v1/referrals/${id}|2026-11-23T10:00:00.5485487+00:00`,
    sign(raw, o = {}) {
      const key = o.wrongKey ? otherKey : cert.privateKeyPem;
      return {
        path: '/webhooks/referrals/partner-center',
        headers: { ...json, ...partnerCenterSignatureHeaders(key, raw, `${certBase}pc.cer`) },
        body: raw,
      };
    },
    unsign: (d) => ({ ...d, headers: withoutKeys(d.headers, 'authorization') }),
    withoutIdentity: (id) => ({
      EventName: 'referral-created',
      ResourceUri: `https://api.partnercenter.microsoft.com/engagements/v1/referrals/${id}`,
    }),
    stale: false,
  },
];

const validDelivery = (kit: ProviderKit, id = uniq()) =>
  kit.sign(JSON.stringify(kit.body(id)), { id: kit.identity(id) });

interface Counts {
  events: number;
  outbox: number;
}

/** POST with node:http, for headers fetch will not let us set (Host). */
function rawPost(
  port: number,
  path: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Sends only the head of `d` (its Content-Length announces the body) and reads the answer. The hub
 * refuses an announced body over the limit without reading it and closes the connection (Fastify),
 * so a client still writing the body may see EPIPE instead of the 413: this is the 413 itself.
 */
function sendHead(baseUrl: string, d: Delivery): Promise<{ status: number; body: unknown }> {
  const url = new URL(d.path, baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: 'POST',
        headers: { ...d.headers, 'content-length': String(Buffer.byteLength(d.body)) },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        });
      },
    );
    req.on('error', reject);
    req.flushHeaders();
  });
}

/** Value of one Prometheus sample with exactly these labels (0 when absent). */
function metric(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...m[2].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    const same =
      Object.keys(got).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => got[k] === v);
    if (same) return Number(m[3]);
  }
  return 0;
}

const RECEIVED = 'closeloop_webhooks_received_total';

describe('webhook door', () => {
  let hub: RunningHub; // ROLE=api: stores, never processes
  let db: Pool;
  let certServer: Server;
  const certRequests: string[] = [];

  const counts = async (): Promise<Counts> => {
    const { rows } = await db.query<Counts>(
      `SELECT (SELECT count(*) FROM webhook_event)::int AS events,
              (SELECT count(*) FROM outbox)::int AS outbox`,
    );
    return rows[0];
  };
  const eventRow = async (provider: string, providerEventId: string) => {
    const { rows } = await db.query(
      `SELECT * FROM webhook_event WHERE provider = $1 AND provider_event_id = $2`,
      [provider, providerEventId],
    );
    return rows;
  };

  /** Sends `d`, expects `status` with the error JSON shape (and `code`), and no new row anywhere. */
  async function expectRefused(d: Delivery, status: number, code?: string, base = hub.url) {
    const before = await counts();
    const res = await send(base, d);
    expect({ status: res.status, body: res.body }).toEqual({
      status,
      body: {
        error: {
          code: code ?? expect.any(String),
          message: expect.any(String),
        },
      },
    });
    expect(await counts()).toEqual(before);
    return res;
  }

  /** An announced body over 1 MiB → 413 with the error JSON (see sendHead), and no new row. */
  async function expectTooLarge(d: Delivery) {
    const before = await counts();
    expect(await sendHead(hub.url, d)).toEqual({
      status: 413,
      body: { error: { code: 'PAYLOAD_TOO_LARGE', message: expect.any(String) } },
    });
    expect(await counts()).toEqual(before);
  }

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await seedTestDeals(db, ['cl_deal_9']);
    await flushTestRedis();

    // A simulator CA: root (PARTNER_CENTER_CA_FILE) → intermediate (at the leaf's AIA URL) → leaf.
    // DER at /cert/pc.cer (what Microsoft serves), PEM bundle (leaf + intermediate) at
    // /cert/pc.pem, a copy outside the prefix, and a self-signed look-alike.
    const ca = createPartnerCenterTestCa({ intermediate: true });
    forged = createPartnerCenterTestCert({ selfSigned: true });
    certServer = createServer((req, res) => {
      certRequests.push(req.url ?? '');
      if (req.url === '/cert/pc.cer' || req.url === '/elsewhere/pc.cer') res.end(cert.certDer);
      else if (req.url === '/cert/pc.pem') res.end(cert.chainPem);
      else if (req.url === '/ca/issuer.cer') res.end(ca.intermediate!.certDer);
      else if (req.url === '/cert/self-signed.cer') res.end(forged.certDer);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => certServer.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(certServer.address() as AddressInfo).port}`;
    certBase = `${origin}/cert/`;
    cert = createPartnerCenterTestCert({ ca, caIssuersUrl: `${origin}/ca/issuer.cer` });
    caFile = writePartnerCenterCaFile(ca.rootPem, mkdtempSync(join(tmpdir(), 'closeloop-door-')));

    hub = await startHub({
      ROLE: 'api',
      PARTNER_CENTER_CERT_URL_PREFIXES: certBase,
      PARTNER_CENTER_CA_FILE: caFile,
      PARTNER_CENTER_TENANT_ID: 'tenant-test',
      PARTNER_CENTER_CLIENT_ID: 'client-test',
      PARTNER_CENTER_CLIENT_SECRET: 'client-secret-test',
      PARTNER_CENTER_REFRESH_TOKEN: 'refresh-token-test',
      // The door is under test: the worker's referral reads must not leave this machine.
      PARTNER_CENTER_API_BASE: 'http://127.0.0.1:9',
      PARTNER_CENTER_TOKEN_URL: 'http://127.0.0.1:9/token',
    });
  });
  afterAll(async () => {
    await hub?.stop();
    await new Promise((r) => certServer?.close(r));
    await db?.end();
  });

  describe.each(kits.map((k) => [k.provider, k] as const))('%s', (_name, kit) => {
    it('a valid delivery answers 200 after storing one event row and one outbox row', async () => {
      const id = uniq();
      const d = validDelivery(kit, id);
      const before = await counts();
      const res = await send(hub.url, d);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ received: 1, duplicates: 0, eventIds: [expect.any(String)] });
      expect(await counts()).toEqual({ events: before.events + 1, outbox: before.outbox + 1 });
      const rows = await eventRow(kit.provider, kit.identity(id));
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        id: (res.body as { eventIds: string[] }).eventIds[0],
        type: kit.type,
        status: 'RECEIVED',
        payload: [kit.body(id)].flat()[0], // a HubSpot row holds its element
      });
      const { rows: outbox } = await db.query(`SELECT * FROM outbox WHERE job_id = $1`, [
        rows[0].id,
      ]);
      expect(outbox).toHaveLength(1);
      expect(outbox[0].data).toMatchObject({ eventId: rows[0].id });
      // Signatures are stored redacted.
      const signatureHeaders = Object.keys(d.headers).filter((h) =>
        /^(authorization|stripe-signature|webhook-signature|x-hubspot-signature-v3|x-docusign-signature-\d+)$/.test(
          h,
        ),
      );
      expect(signatureHeaders.length).toBeGreaterThan(0);
      for (const h of signatureHeaders) {
        expect(rows[0].headers[h]).toBe('[redacted]');
        expect(JSON.stringify(rows[0].headers)).not.toContain(d.headers[h]);
      }
    });

    it('a duplicate delivery answers 2xx and changes nothing', async () => {
      const id = uniq();
      const d = validDelivery(kit, id);
      expect((await send(hub.url, d)).status).toBe(200);
      const [stored] = await eventRow(kit.provider, kit.identity(id));
      const before = await counts();
      await new Promise((r) => setTimeout(r, 10)); // a rewritten received_at would differ
      const again = await send(hub.url, d);
      expect(again.status).toBe(200);
      expect(again.body).toEqual({ received: 0, duplicates: 1, eventIds: [] });
      expect(await counts()).toEqual(before);
      expect(await eventRow(kit.provider, kit.identity(id))).toEqual([stored]);
    });

    it('missing signature → 401, no row', async () => {
      await expectRefused(kit.unsign(validDelivery(kit)), 401, 'INVALID_SIGNATURE');
    });

    it('signature made with another key → 401, no row', async () => {
      await expectRefused(
        kit.sign(JSON.stringify(kit.body(uniq())), { wrongKey: true }),
        401,
        'INVALID_SIGNATURE',
      );
    });

    it('tampered body (signed, then changed) → 401, no row', async () => {
      const d = validDelivery(kit);
      const tampered = d.body.replace(/"(\w+)":/, '"$1" :'); // same JSON, different bytes
      expect(tampered).not.toBe(d.body);
      await expectRefused({ ...d, body: tampered }, 401, 'INVALID_SIGNATURE');
      const changed = d.body.replace(/\d/, (c) => String((Number(c) + 1) % 10));
      await expectRefused({ ...d, body: changed }, 401, 'INVALID_SIGNATURE');
    });

    it('unparseable body, correctly signed → 400, no row', async () => {
      await expectRefused(kit.sign('{"not": json'), 400, 'MALFORMED_BODY');
    });

    it('an event without its identity, correctly signed → no row (400; a HubSpot element is skipped, 200)', async () => {
      const d = kit.sign(JSON.stringify(kit.withoutIdentity(uniq())));
      if (kit.provider === 'hubspot') {
        // CONTRACT §3.2: HubSpot retries any 4xx for a day; the element is skipped on its own.
        const before = await counts();
        const res = await send(hub.url, d);
        expect({ status: res.status, body: res.body }).toEqual({
          status: 200,
          body: { received: 0, duplicates: 0, eventIds: [], skipped: 1 },
        });
        expect(await counts()).toEqual(before);
        return;
      }
      await expectRefused(d, 400, 'MALFORMED_EVENT');
    });

    if (kit.stale) {
      it('a timestamp older than 5 minutes → 401, no row; 4 minutes is accepted', async () => {
        await expectRefused(
          kit.sign(JSON.stringify(kit.body(uniq())), { ageSeconds: 6 * 60 }),
          401,
          'INVALID_SIGNATURE',
        );
        const id = uniq();
        const fresh = kit.sign(JSON.stringify(kit.body(id)), {
          ageSeconds: 4 * 60,
          id: kit.identity(id),
        });
        expect((await send(hub.url, fresh)).status).toBe(200);
      });

      it('a timestamp more than 5 minutes in the future → 401, no row; 4 minutes ahead is accepted', async () => {
        await expectRefused(
          kit.sign(JSON.stringify(kit.body(uniq())), { ageSeconds: -6 * 60 }),
          401,
          'INVALID_SIGNATURE',
        );
        const id = uniq();
        const ahead = kit.sign(JSON.stringify(kit.body(id)), {
          ageSeconds: -4 * 60,
          id: kit.identity(id),
        });
        expect((await send(hub.url, ahead)).status).toBe(200);
      });
    }

    it('a body over 1 MiB → 413 with the error JSON, no row', async () => {
      const big = JSON.stringify({ pad: 'x'.repeat(MIB) });
      await expectTooLarge(kit.sign(big));
    });
  });

  it('a signed body of exactly 1 MiB is accepted; one byte more is 413', async () => {
    const kit = kits.find((k) => k.provider === 'stripe')!;
    const id = uniq();
    const base = JSON.stringify({ ...(kit.body(id) as object), pad: '' });
    const exact = base.replace('"pad":""', `"pad":"${'x'.repeat(MIB - base.length)}"`);
    expect(Buffer.byteLength(exact)).toBe(MIB);
    expect((await send(hub.url, kit.sign(exact))).status).toBe(200);
    expect(await eventRow('stripe', `evt_${id}`)).toHaveLength(1);
    const over = exact.replace('"pad":"', '"pad":"x');
    await expectTooLarge(kit.sign(over));
  });

  it('verifies the raw bytes whatever the Content-Type says', async () => {
    const kit = kits.find((k) => k.provider === 'stripe')!;
    for (const type of ['text/plain; charset=utf-8', 'application/json; charset=UTF-8']) {
      const id = uniq();
      const d = validDelivery(kit, id);
      const res = await send(hub.url, { ...d, headers: { ...d.headers, 'content-type': type } });
      expect(res.status).toBe(200);
      expect(await eventRow('stripe', `evt_${id}`)).toHaveLength(1);
    }
  });

  it('a payload Postgres cannot store (\\u0000 in a string) → 400, no row; its neighbours are stored', async () => {
    const kit = kits.find((k) => k.provider === 'stripe')!;
    const bad = stripeDelivery(
      {
        id: `evt_${uniq()}`,
        type: 'invoice.paid',
        data: { object: { description: 'nul \u0000 here' } },
      },
      TEST_SECRETS.STRIPE_WEBHOOK_SECRET,
    );
    const goodIds = [uniq(), uniq(), uniq()];
    const [badRes, ...goodRes] = await Promise.all([
      send(hub.url, bad),
      ...goodIds.map((id) => send(hub.url, validDelivery(kit, id))),
    ]);
    expect(badRes).toEqual({
      status: 400,
      body: { error: { code: 'UNSTORABLE_PAYLOAD', message: expect.any(String) } },
    });
    expect(goodRes.map((r) => r.status)).toEqual([200, 200, 200]);
    for (const id of goodIds) expect(await eventRow('stripe', `evt_${id}`)).toHaveLength(1);
    expect(await eventRow('stripe', JSON.parse(bad.body).id)).toHaveLength(0);
  });

  it('stores the payload and headers exactly as sent: quotes, backslashes, escapes, non-ASCII, large numbers', async () => {
    const id = `evt_${uniq()}`;
    const object = {
      description: 'say "hi" \\ back\\slash / tab\t newline\n 請求書 🧾 \u2028',
      nested: [{ a: [1, 2.5, -0.001, 1e21, 9007199254740991] }, null, true, '"}],'],
      '"key"': 'value',
    };
    const d = stripeDelivery(
      { id, type: 'invoice.paid', data: { object } },
      TEST_SECRETS.STRIPE_WEBHOOK_SECRET,
    );
    const headers = {
      ...d.headers,
      'user-agent': 'quote " and \\ backslash',
      // Not on the allow-list (common/redact.ts): stored by name, value redacted.
      'x-forwarded-for': '203.0.113.9',
      'proxy-authorization': 'Basic dXNlcjpwYXNz',
      'cf-access-jwt-assertion': 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln',
    };
    expect((await send(hub.url, { ...d, headers })).status).toBe(200);
    const [row] = await eventRow('stripe', id);
    expect(row.payload.data.object).toEqual(JSON.parse(JSON.stringify(object)));
    expect(row.headers['user-agent']).toBe('quote " and \\ backslash');
    expect(row.headers).toMatchObject({
      'x-forwarded-for': '[redacted]',
      'proxy-authorization': '[redacted]',
      'cf-access-jwt-assertion': '[redacted]',
    });
    expect(JSON.stringify(row.headers)).not.toMatch(/203\.0\.113\.9|dXNlcjpw|eyJhbGci/);
  });

  it('an unknown referral platform → 404 with the error JSON, no row', async () => {
    const d = standardDelivery(
      '/webhooks/referrals/imitsu',
      { type: 'referral.created', data: {} },
      { secret: TEST_SECRETS.REFERRAL_WEBHOOK_SECRET, id: `msg_${uniq()}` },
    );
    const res = await expectRefused(d, 404, 'NOT_FOUND');
    expect(JSON.stringify(res.body)).toContain('imitsu');
  });

  it('a generic referral naming the built-in platform partner-center → 400, no row (CONTRACT §3.5)', async () => {
    for (const platform of ['partner-center', 'Partner_Center', ' PARTNER-CENTER ']) {
      const d = standardDelivery(
        '/webhooks/referrals/generic',
        {
          type: 'referral.created',
          data: {
            referralId: `ref-${uniq()}`,
            platform,
            customer: { name: 'Contoso' },
            title: 'Takeover attempt',
          },
        },
        { secret: TEST_SECRETS.REFERRAL_WEBHOOK_SECRET, id: `msg_${uniq()}` },
      );
      const res = await expectRefused(d, 400, 'MALFORMED_EVENT');
      expect(JSON.stringify(res.body)).toContain('built-in platform');
    }
  });

  describe('HubSpot batches', () => {
    const kit = kits.find((k) => k.provider === 'hubspot')!;
    const element = (eventId: number, objectId: string, extra: Record<string, unknown> = {}) => ({
      eventId,
      subscriptionId: 25,
      portalId: 33,
      occurredAt: 1795400000000,
      subscriptionType: 'deal.creation',
      objectId,
      ...extra,
    });

    it('3 elements, two distinct and one repeated identity → 2 rows, 2 outbox rows', async () => {
      const a = element(501, `obj-${uniq()}`);
      const b = element(501, `obj-${uniq()}`); // same eventId, other object: another identity
      const before = await counts();
      const res = await send(hub.url, kit.sign(JSON.stringify([a, b, { ...a }])));
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ received: 2, duplicates: 1 });
      expect(await counts()).toEqual({ events: before.events + 2, outbox: before.outbox + 2 });
      expect(await eventRow('hubspot', `33|25|501|1795400000000|${a.objectId}`)).toHaveLength(1);
      expect(await eventRow('hubspot', `33|25|501|1795400000000|${b.objectId}`)).toHaveLength(1);
      // The whole batch again: nothing new.
      const again = await send(hub.url, kit.sign(JSON.stringify([b, a])));
      expect(again.body).toMatchObject({ received: 0, duplicates: 2 });
      expect(await counts()).toEqual({ events: before.events + 2, outbox: before.outbox + 2 });
    });

    it('an association change (no objectId) beside a stage change: the stage change is stored, the other skipped, 200', async () => {
      const stage = element(502, `obj-${uniq()}`, {
        subscriptionType: 'deal.propertyChange',
        propertyName: 'dealstage',
        propertyValue: 'closedwon',
      });
      const { objectId: _none, ...association } = element(503, 'unused', {
        subscriptionType: 'deal.associationChange',
        fromObjectId: 1246965,
        toObjectId: 77,
        associationType: 'DEAL_TO_CONTACT',
      });
      const before = await counts();
      const res = await send(hub.url, kit.sign(JSON.stringify([association, stage])));
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ received: 1, duplicates: 0, skipped: 1 });
      expect(await counts()).toEqual({ events: before.events + 1, outbox: before.outbox + 1 });
      const [row] = await eventRow('hubspot', `33|25|502|1795400000000|${stage.objectId}`);
      expect(row).toMatchObject({ type: 'deal.propertyChange', status: 'RECEIVED' });
      // HubSpot retries the same batch: the stored element is a duplicate, the other still skipped.
      const again = await send(hub.url, kit.sign(JSON.stringify([association, stage])));
      expect(again.body).toMatchObject({ received: 0, duplicates: 1, skipped: 1 });
      expect(await counts()).toEqual({ events: before.events + 1, outbox: before.outbox + 1 });
    });

    it('an element of a type the hub does not use, with its identity, is stored IGNORED beside the rest', async () => {
      const other = element(507, `obj-${uniq()}`, { subscriptionType: 'contact.creation' });
      const used = element(508, `obj-${uniq()}`);
      const res = await send(hub.url, kit.sign(JSON.stringify([other, used])));
      expect(res.body).toMatchObject({ received: 2, duplicates: 0 });
      const [ignored] = await eventRow('hubspot', `33|25|507|1795400000000|${other.objectId}`);
      expect(ignored.status).toBe('IGNORED');
    });

    it('an element Postgres cannot hold (\\u0000, a number out of range) is skipped on its own; the rest is stored, 200', async () => {
      const good = element(510, `obj-${uniq()}`);
      const nul = element(511, `obj-${uniq()}`, { propertyValue: 'nul \u0000 byte' });
      const before = await counts();
      const raw = JSON.stringify([nul, good]);
      const res = await send(hub.url, kit.sign(raw));
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ received: 1, duplicates: 0, skipped: 1 });
      expect(await counts()).toEqual({ events: before.events + 1, outbox: before.outbox + 1 });
      expect(await eventRow('hubspot', `33|25|510|1795400000000|${good.objectId}`)).toHaveLength(1);
      const huge = `[${JSON.stringify(element(512, `obj-${uniq()}`)).replace('"subscriptionId":25', '"subscriptionId":25,"x":1e1000000')},${JSON.stringify(element(513, `obj-${uniq()}`))}]`;
      const second = await send(hub.url, kit.sign(huge));
      expect(second.body).toMatchObject({ received: 1, skipped: 1 });
      // Nothing in the batch can be held: refused whole, as a single event would be.
      await expectRefused(kit.sign(JSON.stringify([nul])), 400, 'UNSTORABLE_PAYLOAD');
    });

    it('an empty batch answers 200 and stores nothing (HubSpot would retry a 4xx for a day)', async () => {
      const before = await counts();
      const res = await send(hub.url, kit.sign('[]'));
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ received: 0 });
      expect(await counts()).toEqual(before);
    });

    it('a body that is not a batch at all is still refused (400, no row)', async () => {
      await expectRefused(kit.sign(JSON.stringify(element(509, 'x'))), 400, 'MALFORMED_EVENT');
    });

    it('an element typed with eventType instead of subscriptionType is accepted', async () => {
      const { subscriptionType: _omit, ...rest } = element(504, `obj-${uniq()}`);
      const res = await send(
        hub.url,
        kit.sign(JSON.stringify([{ ...rest, eventType: 'deal.deletion' }])),
      );
      expect(res.status).toBe(200);
      const [row] = await eventRow('hubspot', `33|25|504|1795400000000|${rest.objectId}`);
      expect(row.type).toBe('deal.deletion');
    });

    it('behind a proxy: signed over PUBLIC_BASE_URL with a decoded query, any Host → 200', async () => {
      const path = '/webhooks/hubspot?portal=%3A1%40x';
      const objectId = `obj-${uniq()}`;
      const body = JSON.stringify([element(505, objectId)]);
      const signed = hubspotDelivery(JSON.parse(body) as unknown[], {
        clientSecret: TEST_SECRETS.HUBSPOT_CLIENT_SECRET,
        publicBaseUrl: PUBLIC_BASE_URL,
        path,
      });
      // HubSpot signs the decoded URI: https://hub.example.test/webhooks/hubspot?portal=:1@x
      const decodedUri = `POST${PUBLIC_BASE_URL}/webhooks/hubspot?portal=:1@x`;
      expect(signed.headers['x-hubspot-signature-v3']).toBe(
        createHmac('sha256', TEST_SECRETS.HUBSPOT_CLIENT_SECRET)
          .update(`${decodedUri}${body}${signed.headers['x-hubspot-request-timestamp']}`)
          .digest('base64'),
      );
      const proxied = {
        ...signed.headers,
        host: 'closeloop-internal:8080',
        'x-forwarded-host': 'hub.example.test',
        'x-forwarded-proto': 'https',
        'x-forwarded-for': '203.0.113.9',
      };
      const res = await rawPost(hub.port, path, proxied, body);
      expect(res.status).toBe(200);
      expect(await eventRow('hubspot', `33|25|505|1795400000000|${objectId}`)).toHaveLength(1);

      // The same request signed over the URL the hub is locally reached at is refused.
      const local = hubspotDelivery([element(506, `obj-${uniq()}`)], {
        clientSecret: TEST_SECRETS.HUBSPOT_CLIENT_SECRET,
        publicBaseUrl: hub.url,
        path,
      });
      const before = await counts();
      const refused = await rawPost(hub.port, path, local.headers, local.body);
      expect(refused.status).toBe(401);
      expect(await counts()).toEqual(before);
    });
  });

  describe('Partner Center certificate', () => {
    const kit = kits.find((k) => k.provider === 'partner-center')!;
    const signedWith = (certUrl: string, id = uniq()) => {
      const raw = JSON.stringify(kit.body(id));
      const headers = partnerCenterSignatureHeaders(cert.privateKeyPem, raw, certUrl);
      return { path: kit.path, headers: { ...json, ...headers }, body: raw };
    };

    it('accepts the certificate in PEM form as well as DER', async () => {
      const id = uniq();
      expect((await send(hub.url, signedWith(`${certBase}pc.pem`, id))).status).toBe(200);
      expect(await eventRow('partner-center', kit.identity(id))).toHaveLength(1);
    });

    it.each([
      ['another path on the allowed host', (base: string) => base.replace('/cert/', '/elsewhere/')],
      ['another host', () => 'https://evil.example/cert/'],
      ['a look-alike host', (base: string) => base.replace('127.0.0.1', '127.0.0.1.evil.example')],
      ['https instead of http', (base: string) => base.replace('http://', 'https://')],
      ['a dot-segment escaping the prefix', (base: string) => `${base}../elsewhere/`],
      ['an encoded slash', (base: string) => `${base}..%2Felsewhere/`],
      ['userinfo in the URL', (base: string) => base.replace('http://', 'http://me@')],
    ])('a certificate URL outside the allowlist (%s) → 401, no row', async (_what, urlOf) => {
      await expectRefused(signedWith(`${urlOf(certBase)}pc.cer`), 401, 'INVALID_SIGNATURE');
    });

    it('an allowed URL that serves no certificate → 503 (the provider retries), no row', async () => {
      await expectRefused(signedWith(`${certBase}missing.cer`), 503, 'CERTIFICATE_UNAVAILABLE');
    });

    it('a self-signed certificate naming O=Microsoft Corporation → 401, no row (it chains to no trusted root)', async () => {
      const raw = JSON.stringify(kit.body(uniq()));
      const headers = partnerCenterSignatureHeaders(
        forged.privateKeyPem,
        raw,
        `${certBase}self-signed.cer`,
      );
      await expectRefused({ path: kit.path, headers: { ...json, ...headers }, body: raw }, 401);
    });

    it('the DER leaf chains through the intermediate at its AIA URL; a query string costs no download', async () => {
      expect((await send(hub.url, signedWith(`${certBase}pc.cer`))).status).toBe(200);
      expect(certRequests).toContain('/ca/issuer.cer');
      const before = certRequests.length;
      for (let n = 0; n < 3; n++) {
        expect((await send(hub.url, signedWith(`${certBase}pc.cer?n=${n}`))).status).toBe(200);
      }
      expect(certRequests.length).toBe(before);
    });
  });

  describe('correlation id', () => {
    const kit = kits.find((k) => k.provider === 'stripe')!;

    it("the delivery's X-Request-Id becomes the event's correlation_id and the job's", async () => {
      const id = uniq();
      const res = await send(hub.url, validDelivery(kit, id), {
        'x-request-id': `req-door-${id}`,
      });
      expect(res.status).toBe(200);
      const [row] = await eventRow('stripe', `evt_${id}`);
      expect(row.correlation_id).toBe(`req-door-${id}`);
      const { rows } = await db.query(`SELECT data FROM outbox WHERE job_id = $1`, [row.id]);
      expect(rows[0].data).toEqual({ eventId: row.id, correlationId: `req-door-${id}` });
    });

    it('without a usable X-Request-Id the hub makes one up', async () => {
      const id = uniq();
      await send(hub.url, validDelivery(kit, id), { 'x-request-id': 'has spaces; and more' });
      const [row] = await eventRow('stripe', `evt_${id}`);
      expect(row.correlation_id).toMatch(/^[0-9a-f-]{36}$/);
    });
  });

  describe('a provider that is not configured', () => {
    let bare: RunningHub;
    beforeAll(async () => {
      bare = await startHub({
        ROLE: 'api',
        DOCUSIGN_CONNECT_HMAC_KEYS: undefined,
        HUBSPOT_CLIENT_SECRET: undefined,
        STRIPE_WEBHOOK_SECRET: undefined,
        MILESTONE_WEBHOOK_SECRET: undefined,
        REFERRAL_WEBHOOK_SECRET: undefined,
        PARTNER_CENTER_CERT_URL_PREFIXES: certBase,
        PARTNER_CENTER_CA_FILE: caFile,
      });
    });
    afterAll(async () => {
      await bare?.stop();
    });

    it.each(kits.map((k) => [k.provider, k] as const))(
      '%s answers 503 to a correctly signed delivery, and stores nothing',
      async (_name, kit) => {
        const res = await expectRefused(
          validDelivery(kit),
          503,
          'PROVIDER_NOT_CONFIGURED',
          bare.url,
        );
        expect(JSON.stringify(res.body)).toContain('not configured');
      },
    );

    it('counts the refusals as not_configured', async () => {
      const text = await (await fetch(`${bare.url}/metrics`)).text();
      for (const kit of kits) {
        expect(metric(text, RECEIVED, { provider: kit.provider, outcome: 'not_configured' })).toBe(
          1,
        );
      }
    });
  });

  describe('metrics', () => {
    const scrape = async () => (await fetch(`${hub.url}/metrics`)).text();

    it('after the deliveries above, every outcome is counted per provider', async () => {
      const text = await scrape();
      for (const kit of kits) {
        const of = (outcome: string) => metric(text, RECEIVED, { provider: kit.provider, outcome });
        expect(of('accepted')).toBeGreaterThan(0);
        expect(of('duplicate')).toBeGreaterThan(0);
        expect(of('missing_signature')).toBeGreaterThan(0);
        expect(of('bad_signature')).toBeGreaterThan(0);
        expect(of('bad_request')).toBeGreaterThan(0);
        expect(of('too_large')).toBeGreaterThan(0);
        if (kit.stale) expect(of('stale_timestamp')).toBeGreaterThan(0);
      }
      expect(
        metric(text, RECEIVED, { provider: 'partner-center', outcome: 'untrusted_certificate' }),
      ).toBeGreaterThan(0);
      expect(metric(text, RECEIVED, { provider: 'hubspot', outcome: 'skipped' })).toBeGreaterThan(
        0,
      );
    });

    it('each delivery moves exactly its own counter', async () => {
      const kit = kits.find((k) => k.provider === 'milestones')!;
      const of = (text: string, outcome: string) =>
        metric(text, RECEIVED, { provider: 'milestones', outcome });
      const outcomes = ['accepted', 'duplicate', 'bad_signature', 'missing_signature'];
      const snapshot = async () => {
        const text = await scrape();
        return Object.fromEntries(outcomes.map((o) => [o, of(text, o)]));
      };

      const t0 = await snapshot();
      const d = validDelivery(kit);
      await send(hub.url, d);
      const t1 = await snapshot();
      expect(t1).toEqual({ ...t0, accepted: t0.accepted + 1 });
      await send(hub.url, d);
      const t2 = await snapshot();
      expect(t2).toEqual({ ...t1, duplicate: t1.duplicate + 1 });
      await send(hub.url, kit.sign(d.body, { wrongKey: true }));
      const t3 = await snapshot();
      expect(t3).toEqual({ ...t2, bad_signature: t2.bad_signature + 1 });
      await send(hub.url, kit.unsign(d));
      expect(await snapshot()).toEqual({ ...t3, missing_signature: t3.missing_signature + 1 });
    });
  });

  describe('processing (a worker joins)', () => {
    let worker: RunningHub;
    const stripeKit = kits.find((k) => k.provider === 'stripe')!;
    const hubspotKit = kits.find((k) => k.provider === 'hubspot')!;

    const attemptsOf = async (eventId: string) =>
      (
        await db.query<{ outcome: string }>(
          `SELECT outcome FROM job_attempt WHERE event_id = $1 ORDER BY id`,
          [eventId],
        )
      ).rows.map((r) => r.outcome);
    const settledRow = (provider: string, providerEventId: string) =>
      waitFor(
        async () => {
          // Finished: a final status (and the attempt row of a run, written in the same commit).
          const [row] = await eventRow(provider, providerEventId);
          return row && row.status !== 'RECEIVED' ? row : undefined;
        },
        { what: `${providerEventId} to be processed` },
      );

    beforeAll(async () => {
      worker = await startHub({
        ROLE: 'worker',
        PARTNER_CENTER_CERT_URL_PREFIXES: certBase,
        PARTNER_CENTER_CA_FILE: caFile,
      });
    });
    afterAll(async () => {
      await worker?.stop();
    });

    it('the relay drains the outbox and every stored event is finished exactly once (unused types at the door)', async () => {
      await waitFor(
        async () => {
          // Types the hub does not use are IGNORED by the door itself (no job, attempts = 0).
          const { rows } = await db.query(
            `SELECT (SELECT count(*) FROM outbox)::int AS outbox,
                    (SELECT count(*) FROM webhook_event WHERE status = 'RECEIVED')::int AS open`,
          );
          return rows[0].outbox === 0 && rows[0].open === 0;
        },
        { timeoutMs: 20_000, what: 'the door events to be processed' },
      );
      await new Promise((r) => setTimeout(r, 300)); // room for second runs, were there any
      const { rows } = await db.query(
        `SELECT e.id, e.provider, e.status, e.attempts, e.last_error, count(a.id)::int AS runs
           FROM webhook_event e LEFT JOIN job_attempt a ON a.event_id = e.id
          GROUP BY e.id ORDER BY e.id`,
      );
      expect(rows.length).toBeGreaterThan(20);
      for (const row of rows) {
        const atTheDoor = row.attempts === 0;
        // Each event finished once: at the door, decided at once in its batch (no handler ran,
        // no attempt row), or run once through its lane (one attempt row).
        expect({ id: row.id, status: row.status, attempts: row.attempts }).toEqual({
          id: row.id,
          // Milestones for deals the hub does not have are refused (DEAD after one run).
          status: atTheDoor ? 'IGNORED' : expect.stringMatching(/^(PROCESSED|IGNORED|DEAD)$/),
          attempts: atTheDoor ? 0 : 1,
        });
        expect(row.runs).toBeLessThanOrEqual(row.attempts);
        if (atTheDoor) expect(row.last_error).toMatch(/ is not used by the hub$/);
      }
      expect(rows.filter((r) => r.runs === 1).length).toBeGreaterThan(10);
      expect(new Set(rows.map((r) => r.provider))).toEqual(new Set(kits.map((k) => k.provider)));
    });

    it('a signed Stripe event is stored, answered 2xx, and processed with its deal', async () => {
      const event = {
        id: `evt_door_${uniq()}`,
        type: 'invoice.paid',
        created: 1795400000,
        data: {
          object: { id: 'in_1', object: 'invoice', metadata: { closeloop_deal_id: 'cl_deal_9' } },
        },
      };
      const res = await send(hub.url, stripeDelivery(event, TEST_SECRETS.STRIPE_WEBHOOK_SECRET));
      expect(res.status).toBe(200);
      const row = await settledRow('stripe', event.id);
      expect(row).toMatchObject({ status: 'PROCESSED', deal_id: 'cl_deal_9', attempts: 1 });
      expect(row.normalized).toMatchObject({
        kind: 'invoice.paid',
        subject: { dealId: 'cl_deal_9' },
      });
      expect(await attemptsOf(row.id)).toEqual(['SUCCEEDED']);
    });

    it('50 concurrent identical deliveries → all 2xx, one row, decided once', async () => {
      const id = uniq();
      const d = validDelivery(stripeKit, id);
      const results = await Promise.all(Array.from({ length: 50 }, () => send(hub.url, d)));
      expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
      const bodies = results.map((r) => r.body as { received: number; duplicates: number });
      expect(bodies.filter((b) => b.received === 1 && b.duplicates === 0)).toHaveLength(1);
      expect(bodies.filter((b) => b.received === 0 && b.duplicates === 1)).toHaveLength(49);
      expect(await eventRow('stripe', `evt_${id}`)).toHaveLength(1);

      const row = await settledRow('stripe', `evt_${id}`);
      // An invoice the hub did not make, for no hub deal: decided in its batch, no handler run.
      expect(row).toMatchObject({ status: 'IGNORED', attempts: 1 });
      expect(row.last_error).toMatch(/was not made by the hub/);
      await new Promise((r) => setTimeout(r, 500)); // room for a second run, were there one
      expect(await eventRow('stripe', `evt_${id}`)).toEqual([row]);
      expect(await attemptsOf(row.id)).toEqual([]);
    });

    it('a duplicate of a processed event answers 2xx and changes nothing', async () => {
      const id = uniq();
      const d = validDelivery(stripeKit, id);
      expect((await send(hub.url, d)).status).toBe(200);
      const processed = await settledRow('stripe', `evt_${id}`);
      expect(processed.status).toBe('IGNORED');

      const again = await send(hub.url, d);
      expect(again).toEqual({ status: 200, body: { received: 0, duplicates: 1, eventIds: [] } });
      await new Promise((r) => setTimeout(r, 300));
      expect(await eventRow('stripe', `evt_${id}`)).toEqual([processed]);
      expect(processed.attempts).toBe(1);
      expect((await counts()).outbox).toBe(0);
    });

    it.each([
      ['stripe', 'customer.created'],
      ['hubspot', 'contact.creation'],
      ['hubspot', 'deal.propertyChange of another property'],
    ])(
      'an unused %s type (%s) answers 200, IGNORED by the door itself: no job',
      async (provider, type) => {
        const id = uniq();
        const body =
          provider === 'stripe'
            ? { id: `evt_${id}`, type, created: 1795400000, data: { object: { id: 'cus_1' } } }
            : [
                {
                  ...(hubspotKit.body(id) as object[])[0],
                  subscriptionType: type.split(' ')[0],
                  propertyName: 'amount',
                },
              ];
        const kit = provider === 'stripe' ? stripeKit : hubspotKit;
        const res = await send(hub.url, kit.sign(JSON.stringify(body)));
        expect(res.status).toBe(200);
        // Already final when the 2xx is sent: nothing for a worker to do.
        const [row] = await eventRow(provider, kit.identity(id));
        expect(row).toMatchObject({ status: 'IGNORED', normalized: null, attempts: 0 });
        expect(row.last_error).toBe(`${type.split(' ')[0]} is not used by the hub`);
        expect(row.processed_at).not.toBeNull();
        const { rows: jobs } = await db.query('SELECT 1 FROM outbox WHERE job_id = $1', [row.id]);
        expect(jobs).toEqual([]);
        await new Promise((r) => setTimeout(r, 300)); // room for a run, were there one
        expect(await attemptsOf(row.id)).toEqual([]);
      },
    );
  });
});
