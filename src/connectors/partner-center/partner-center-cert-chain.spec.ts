import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';

import { DEFAULT_PARTNER_CENTER_CERT_URL_PREFIXES, loadConfig } from '../../config/app-config';
import { SignatureError } from '../../ports/webhook-door.port';
import { caIssuersUrls } from './partner-center-cert-chain';
import {
  PartnerCenterSignatureVerifier,
  type PartnerCenterSignatureVerifierOptions,
} from './partner-center-signature.verifier';
import {
  type PartnerCenterTestCa,
  type PartnerCenterTestCert,
  createPartnerCenterTestCa,
  createPartnerCenterTestCert,
  partnerCenterSignatureHeaders,
} from '../../../tools/simulator/partner-center-cert';
import { type IssuedCertificate, issueCertificate } from '../../../tools/simulator/test-x509';

/*
 * The certificate chain of Partner Center deliveries (CONTRACT §3.5, provider-facts §4.3 "verify
 * the chain", ADR 0011), through the verifier: only a certificate that chains to a trusted root
 * signs deliveries.
 */

const CERT_URL = `${DEFAULT_PARTNER_CENTER_CERT_URL_PREFIXES[0]}pcnotifications-dispatch.microsoft.com.cer`;
const AIA_URL = 'http://www.microsoft.example/pkiops/certs/issuing-ca.crt';
const body = Buffer.from(
  '{"EventName":"referral-created","ResourceUri":"x","ResourceChangeUtcDate":"y"}',
);
const DAY = 864e5;

let ca: PartnerCenterTestCa; // root → intermediate → leaves
let leaf: PartnerCenterTestCert; // its intermediate named by AIA
beforeAll(() => {
  ca = createPartnerCenterTestCa({ intermediate: true });
  leaf = createPartnerCenterTestCert({ ca, caIssuersUrl: AIA_URL });
});

/** A verifier trusting `ca`'s root, downloading from `files` (URL → bytes; else a 404). */
function verifier(
  files: Record<string, Buffer | string>,
  options: Partial<PartnerCenterSignatureVerifierOptions> = {},
) {
  const fetchCertificate = jest.fn(async (url: string) => {
    const file = files[url];
    if (file === undefined) throw new Error('HTTP 404');
    return Buffer.from(file);
  });
  const instance = new PartnerCenterSignatureVerifier({
    allowedCertUrlPrefixes: DEFAULT_PARTNER_CENTER_CERT_URL_PREFIXES,
    trustedRoots: [ca.rootPem],
    fetchCertificate,
    ...options,
  });
  return { instance, fetchCertificate };
}

const headers = (signer: { privateKeyPem: string }, url = CERT_URL) =>
  partnerCenterSignatureHeaders(signer.privateKeyPem, body, url);

async function refusal(promise: Promise<void>): Promise<SignatureError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SignatureError) return error;
    throw error;
  }
  throw new Error('accepted');
}

describe('Partner Center certificate chain', () => {
  it('refuses a self-signed certificate naming O=Microsoft Corporation (anyone can make one)', async () => {
    const forged = createPartnerCenterTestCert({ selfSigned: true });
    expect(new X509Certificate(forged.certDer).subject).toContain('O=Microsoft Corporation');
    // Node's bundled roots (the default), and a verifier trusting the simulator CA
    for (const trustedRoots of [undefined, [ca.rootPem]]) {
      const { instance } = verifier({ [CERT_URL]: forged.certDer }, { trustedRoots });
      const error = await refusal(instance.verify(body, headers(forged)));
      expect(error.reason).toBe('untrusted_certificate');
      expect(error.message).toMatch(/does not chain to a trusted root/);
    }
    // nor does a bundle whose "root" is the attacker's own
    const rogue = createPartnerCenterTestCa({ intermediate: true, name: 'rogue' });
    const rogueLeaf = createPartnerCenterTestCert({ ca: rogue });
    const bundle = rogueLeaf.chainPem + rogue.rootPem;
    const { instance } = verifier({ [CERT_URL]: bundle });
    expect((await refusal(instance.verify(body, headers(rogueLeaf)))).reason).toBe(
      'untrusted_certificate',
    );
  });

  it('refuses a leaf issued by a CA that is not trusted', async () => {
    const other = createPartnerCenterTestCa({ name: 'other' });
    const stranger = createPartnerCenterTestCert({ ca: other });
    const { instance } = verifier({ [CERT_URL]: stranger.certDer });
    expect((await refusal(instance.verify(body, headers(stranger)))).reason).toBe(
      'untrusted_certificate',
    );
  });

  it('refuses a chain through an expired intermediate', async () => {
    const now = Date.now();
    const expired = createPartnerCenterTestCa({
      intermediate: true,
      intermediateNotBefore: new Date(now - 400 * DAY),
      intermediateNotAfter: new Date(now - DAY),
    });
    const signer = createPartnerCenterTestCert({ ca: expired });
    const { instance } = verifier(
      { [CERT_URL]: signer.chainPem },
      { trustedRoots: [expired.rootPem] },
    );
    const error = await refusal(instance.verify(body, headers(signer)));
    expect(error.reason).toBe('untrusted_certificate');
    expect(error.message).toMatch(/issuing CA is outside its validity window/);
  });

  it('refuses a chain through an intermediate that is not a CA (basicConstraints CA:false)', async () => {
    const notCa = createPartnerCenterTestCa({ intermediate: true, intermediateIsCa: false });
    const signer = createPartnerCenterTestCert({ ca: notCa });
    const { instance } = verifier(
      { [CERT_URL]: signer.chainPem },
      { trustedRoots: [notCa.rootPem] },
    );
    const error = await refusal(instance.verify(body, headers(signer)));
    expect(error.reason).toBe('untrusted_certificate');
    expect(error.message).toMatch(/is not a CA certificate/);
  });

  it('refuses a chain longer than 5 certificates', async () => {
    const root = issueCertificate({ subject: { CN: 'deep root' }, ca: true });
    let issuer: IssuedCertificate = root;
    const intermediates: IssuedCertificate[] = [];
    for (let i = 1; i <= 4; i++) {
      issuer = issueCertificate({ subject: { CN: `deep ${i}` }, ca: true, issuer });
      intermediates.unshift(issuer);
    }
    const signer = issueCertificate({ subject: { O: 'Microsoft Corporation', CN: 'x' }, issuer });
    const bundle = [signer, ...intermediates].map((c) => c.certPem).join('');
    const { instance } = verifier({ [CERT_URL]: bundle }, { trustedRoots: [root.certPem] });
    const error = await refusal(instance.verify(body, headers(signer)));
    expect(error.message).toMatch(/within 5 certificates/);
    // four links are fine
    const shorter = [signer, ...intermediates.slice(0, 3)].map((c) => c.certPem).join('');
    const trusted = verifier({ [CERT_URL]: shorter }, { trustedRoots: [intermediates[3].certPem] });
    await expect(trusted.instance.verify(body, headers(signer))).resolves.toBeUndefined();
  });

  it('accepts a valid chain served as one PEM bundle (leaf, then intermediate)', async () => {
    const { instance, fetchCertificate } = verifier({ [CERT_URL]: leaf.chainPem });
    await expect(instance.verify(body, headers(leaf))).resolves.toBeUndefined();
    expect(fetchCertificate).toHaveBeenCalledTimes(1); // no AIA download needed
  });

  it('accepts a valid chain through PARTNER_CENTER_CA_FILE (read at start-up by loadConfig), and nothing else', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-ca-'));
    const file = join(dir, 'ca.pem');
    writeFileSync(file, ca.rootPem + ca.intermediate!.certPem);
    const config = loadConfig({ PARTNER_CENTER_CA_FILE: file });
    expect(config.partnerCenterTrustedRoots).toHaveLength(2); // exactly the file: no bundled roots
    const served = { [CERT_URL]: leaf.certDer }; // DER: the leaf alone, its issuer from the file
    const { instance, fetchCertificate } = verifier(served, {
      trustedRoots: config.partnerCenterTrustedRoots,
    });
    await expect(instance.verify(body, headers(leaf))).resolves.toBeUndefined();
    expect(fetchCertificate).toHaveBeenCalledTimes(1);
    const stranger = createPartnerCenterTestCert({ ca: createPartnerCenterTestCa() });
    const other = verifier(
      { [CERT_URL]: stranger.certDer },
      { trustedRoots: config.partnerCenterTrustedRoots },
    );
    expect((await refusal(other.instance.verify(body, headers(stranger)))).reason).toBe(
      'untrusted_certificate',
    );
  });

  it('trusts Node’s bundled roots plus NODE_EXTRA_CA_CERTS when PARTNER_CENTER_CA_FILE is unset', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-extra-'));
    const file = join(dir, 'extra.pem');
    writeFileSync(file, ca.rootPem);
    const roots = loadConfig({ NODE_EXTRA_CA_CERTS: file }).partnerCenterTrustedRoots;
    expect(roots).toEqual([...rootCertificates, new X509Certificate(ca.rootPem).toString()]);
    expect(loadConfig({}).partnerCenterTrustedRoots).toEqual(rootCertificates);
    const { instance } = verifier({ [CERT_URL]: leaf.chainPem }, { trustedRoots: roots });
    await expect(instance.verify(body, headers(leaf))).resolves.toBeUndefined();
  });

  it('accepts a leaf that is itself a trusted certificate (same fingerprint)', async () => {
    const pinned = createPartnerCenterTestCert({ selfSigned: true });
    const { instance } = verifier(
      { [CERT_URL]: pinned.certDer },
      { trustedRoots: [pinned.certPem] },
    );
    await expect(instance.verify(body, headers(pinned))).resolves.toBeUndefined();
  });

  it('fetches a missing intermediate once from the leaf’s AIA "CA Issuers" URL, and caches it', async () => {
    const second = createPartnerCenterTestCert({ ca, caIssuersUrl: AIA_URL });
    const files = {
      [CERT_URL]: leaf.certDer,
      [`${CERT_URL}.2`]: second.certDer,
      [AIA_URL]: ca.intermediate!.certDer,
    };
    const { instance, fetchCertificate } = verifier(files);
    expect(caIssuersUrls(new X509Certificate(leaf.certDer))).toEqual([AIA_URL]);
    await expect(instance.verify(body, headers(leaf))).resolves.toBeUndefined();
    await expect(instance.verify(body, headers(second, `${CERT_URL}.2`))).resolves.toBeUndefined();
    expect(fetchCertificate.mock.calls.map(([url]) => url)).toEqual([
      CERT_URL,
      AIA_URL,
      `${CERT_URL}.2`,
    ]);
  });

  it('refuses a leaf whose AIA URL does not serve its issuer, and remembers the failure', async () => {
    const { instance, fetchCertificate } = verifier({
      [CERT_URL]: leaf.certDer,
      [AIA_URL]: 'junk',
    });
    for (let i = 0; i < 2; i++) {
      const error = await refusal(instance.verify(body, headers(leaf)));
      expect(error.message).toMatch(/CA Issuers URL did not serve an X.509 certificate/);
    }
    expect(fetchCertificate).toHaveBeenCalledTimes(2); // the leaf and its AIA URL, once each
  });

  it('checks every certificate of a cached chain on each delivery (an intermediate expiring later)', async () => {
    const start = Date.now();
    let clock = start;
    const shortLived = createPartnerCenterTestCa({
      intermediate: true,
      intermediateNotAfter: new Date(start + DAY),
    });
    const signer = createPartnerCenterTestCert({ ca: shortLived });
    const { instance } = verifier(
      { [CERT_URL]: signer.chainPem },
      { trustedRoots: [shortLived.rootPem], now: () => clock },
    );
    await expect(instance.verify(body, headers(signer))).resolves.toBeUndefined();
    clock = start + 2 * DAY;
    const error = await refusal(instance.verify(body, headers(signer)));
    expect(error.reason).toBe('untrusted_certificate');
    expect(error.message).toMatch(/outside its validity window/);
  });
});
