import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { Server, createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';

import { ID, isoTicks } from '../../support/door-arbitraries';
import { DoorKit, record, sameB64, single, usedOf } from '../../support/door-oracle';
import { DoorRig, startDoorRig } from '../../support/door-harness';
import { doorSuite, registerDoorProperties } from '../../support/door-properties';
import {
  PartnerCenterTestCert,
  createPartnerCenterTestCert,
  partnerCenterSignatureHeaders,
  writePartnerCenterCaFile,
} from '../../../tools/simulator/partner-center-cert';

/**
 * POST /webhooks/referrals/partner-center (CONTRACT §3.5, provider-facts §4.3): `Authorization:
 * Signature <base64 RSA-SHA256 of the body>` with the key of the certificate at
 * `X-MS-Certificate-Url` (pinned to PARTNER_CENTER_CERT_URL_PREFIXES), `X-MS-Signature-Algorithm:
 * rsa-sha256`; no timestamp; identity EventName + ResourceUri + ResourceChangeUtcDate. Signed with
 * the simulator's certificate (issued by the simulator's root CA, the hub's PARTNER_CENTER_CA_FILE)
 * and signer.
 *
 * Kept apart from the other providers: the certificate checks are this door's own. The certificate
 * server answers every path under /cert/ with the certificate (as a CDN with one file would), so a
 * mangled URL is either outside the allowed prefix (401) or still serves it (the signature holds):
 * never "no certificate there" (503, a transient the provider retries, tested in
 * webhook-door.int-spec).
 */

const USED = ['referral-created', 'referral-updated'];

let cert: PartnerCenterTestCert;
let certUrl: string;
const otherKey = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
}).privateKey;

export const partnerCenterKit: DoorKit = {
  provider: 'partner-center',
  path: '/webhooks/referrals/partner-center',
  event: fc.record({
    EventName: fc.oneof(
      fc.constantFrom(...USED),
      fc.constantFrom('related-referral-created', 'related-referral-updated', 'test-created'),
    ),
    ResourceUri: fc.constant(
      `https://api.partnercenter.microsoft.com/engagements/v1/referrals/${ID}`,
    ),
    ResourceName: fc.constant('referral'),
    AuditUri: fc.constant(null),
    ResourceChangeUtcDate: isoTicks.map((iso) => iso.replace('Z', '+00:00')),
  }),
  plainHeaders: [['user-agent', 'Microsoft-PartnerCenter-Webhooks']],
  signatureHeaders: ['authorization', 'x-ms-signature-algorithm', 'x-ms-certificate-url'],
  sign: (body, ctx) =>
    Object.entries(
      partnerCenterSignatureHeaders(ctx.wrongKey ? otherKey : cert.privateKeyPem, body, certUrl),
    ),
  stillSigned(got, signed) {
    const signature = (v: string | undefined) => /^Signature\s+(\S+)\s*$/i.exec(v ?? '')?.[1];
    const algorithm = got.get('x-ms-signature-algorithm');
    const holds =
      sameB64(signature(got.get('authorization')), signature(signed.get('authorization'))) &&
      (algorithm === undefined || algorithm.trim().toLowerCase() === 'rsa-sha256') &&
      got.has('x-ms-certificate-url');
    if (!holds) return false;
    // Another certificate URL: allowed and serving the certificate, or not allowed (see above).
    return got.get('x-ms-certificate-url') === signed.get('x-ms-certificate-url') || 'maybe';
  },
  identify(body) {
    const e = record(body);
    if (!e) return { refused: 'not an object' };
    return single(
      body,
      [e.EventName, e.ResourceUri, e.ResourceChangeUtcDate],
      e.EventName,
      usedOf(USED),
    );
  },
  signedAlike: (a, b) => a.equals(b),
};

describe('door properties: referrals/partner-center', () => {
  let rig: DoorRig;
  let certServer: Server;

  beforeAll(async () => {
    cert = createPartnerCenterTestCert(); // issued by the simulator's root CA
    certServer = createServer((req, res) => {
      if (req.url?.startsWith('/cert/')) res.end(cert.certDer);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => certServer.listen(0, '127.0.0.1', r));
    const certBase = `http://127.0.0.1:${(certServer.address() as AddressInfo).port}/cert/`;
    certUrl = `${certBase}pc.cer`;
    rig = await startDoorRig({
      PARTNER_CENTER_CERT_URL_PREFIXES: certBase,
      PARTNER_CENTER_CA_FILE: writePartnerCenterCaFile(
        cert.caPem,
        mkdtempSync(join(tmpdir(), 'closeloop-door-properties-')),
      ),
      PARTNER_CENTER_TENANT_ID: 'tenant-test',
      PARTNER_CENTER_CLIENT_ID: 'client-test',
      PARTNER_CENTER_CLIENT_SECRET: 'client-secret-test',
      PARTNER_CENTER_REFRESH_TOKEN: 'refresh-token-test',
      // Only the door runs: nothing may leave this machine.
      PARTNER_CENTER_API_BASE: 'http://127.0.0.1:9',
      PARTNER_CENTER_TOKEN_URL: 'http://127.0.0.1:9/token',
    });
  });
  afterAll(async () => {
    await rig?.stop();
    await new Promise((r) => certServer?.close(r));
  });

  registerDoorProperties(
    doorSuite(partnerCenterKit, () => rig),
    { identityKeys: ['EventName', 'ResourceUri', 'ResourceChangeUtcDate', 'ResourceName'] },
  );
});
