import { constants, sign } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { type IssuedCertificate, issueCertificate } from './test-x509';

/**
 * A stand-in for Microsoft's Partner Center notification certificate [PC-WH] and the certificate
 * authority it chains to, for tests, the demo and the provider simulator. The hub trusts a
 * Partner Center certificate only through a chain to a trusted root (CONTRACT §3.5,
 * provider-facts §4.3), so a hub talking to the simulator trusts {@link PartnerCenterTestCa.rootPem}
 * through PARTNER_CENTER_CA_FILE.
 */
export interface PartnerCenterTestCert {
  /** PKCS#1 PEM private key, for {@link signPartnerCenterBody}. */
  privateKeyPem: string;
  /** The leaf certificate alone, PEM. */
  certPem: string;
  /** The same certificate in DER form (what Microsoft's `.cer` URL serves). */
  certDer: Buffer;
  /** The leaf followed by its intermediates (no root), one PEM bundle. */
  chainPem: string;
  /** The root the certificate chains to (the certificate itself when self-signed), PEM. */
  caPem: string;
}

/** A simulator certificate authority: a root and, optionally, an intermediate that signs leaves. */
export interface PartnerCenterTestCa {
  root: IssuedCertificate;
  intermediate?: IssuedCertificate;
  /** What signs leaves: the intermediate when there is one, else the root. */
  issuer: IssuedCertificate;
  /** The root, PEM: the content of PARTNER_CENTER_CA_FILE for a hub that trusts this CA. */
  rootPem: string;
}

export interface PartnerCenterTestCaOptions {
  /** Subject CN prefix (default `closeloop simulator`). */
  name?: string;
  /** Put an intermediate between the root and the leaves (default false). */
  intermediate?: boolean;
  /** Validity of the intermediate (default: from a minute ago, for 5 years). */
  intermediateNotBefore?: Date;
  intermediateNotAfter?: Date;
  /** false: the intermediate signs leaves but is not a CA (basicConstraints CA:false). */
  intermediateIsCa?: boolean;
}

export interface PartnerCenterTestCertOptions {
  /** Validity in days counted from `notBefore` (default 365). */
  days?: number;
  /** Start of validity (default a minute ago). */
  notBefore?: Date;
  /** Subject organisation (default Microsoft Corporation). */
  organization?: string;
  /** The issuing CA (default {@link defaultPartnerCenterTestCa}). */
  ca?: PartnerCenterTestCa;
  /** Self-signed: chains to nothing but itself (what anyone can make). */
  selfSigned?: boolean;
  /** authorityInfoAccess "CA Issuers" URL, where the issuing intermediate is served. */
  caIssuersUrl?: string;
}

const YEAR_MS = 365 * 864e5;

/** A new root (valid 10 years), and an intermediate when asked. */
export function createPartnerCenterTestCa(
  options: PartnerCenterTestCaOptions = {},
): PartnerCenterTestCa {
  const name = options.name ?? 'closeloop simulator';
  const root = issueCertificate({
    subject: { O: 'closeloop provider simulator', CN: `${name} root CA` },
    ca: true,
    notAfter: new Date(Date.now() + 10 * YEAR_MS),
  });
  const intermediate = options.intermediate
    ? issueCertificate({
        subject: { O: 'closeloop provider simulator', CN: `${name} issuing CA` },
        issuer: root,
        ca: options.intermediateIsCa ?? true,
        keyCertSign: true,
        notBefore: options.intermediateNotBefore,
        notAfter: options.intermediateNotAfter ?? new Date(Date.now() + 5 * YEAR_MS),
      })
    : undefined;
  return { root, intermediate, issuer: intermediate ?? root, rootPem: root.certPem };
}

let defaultCa: PartnerCenterTestCa | undefined;

/** The process-wide simulator CA (a root, no intermediate) that leaves come from by default. */
export function defaultPartnerCenterTestCa(): PartnerCenterTestCa {
  defaultCa ??= createPartnerCenterTestCa();
  return defaultCa;
}

/**
 * Generates an RSA-2048 key and a SHA-256 certificate with subject `O=Microsoft Corporation,
 * CN=pcnotifications-dispatch.microsoft.com`, issued by a simulator CA (or self-signed).
 */
export function createPartnerCenterTestCert(
  options: PartnerCenterTestCertOptions = {},
): PartnerCenterTestCert {
  const ca = options.selfSigned ? undefined : (options.ca ?? defaultPartnerCenterTestCa());
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
  const leaf = issueCertificate({
    subject: {
      O: options.organization ?? 'Microsoft Corporation',
      CN: 'pcnotifications-dispatch.microsoft.com',
    },
    issuer: ca?.issuer,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (options.days ?? 365) * 864e5),
    caIssuersUrl: options.caIssuersUrl,
  });
  return {
    privateKeyPem: leaf.privateKeyPem,
    certPem: leaf.certPem,
    certDer: leaf.certDer,
    chainPem: leaf.certPem + (ca?.intermediate?.certPem ?? ''),
    caPem: ca?.rootPem ?? leaf.certPem,
  };
}

/**
 * Writes a root certificate (PEM) as `partner-center-sim-ca.pem` into `dir` (created if missing)
 * and returns its path: the value of PARTNER_CENTER_CA_FILE.
 */
export function writePartnerCenterCaFile(caPem: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'partner-center-sim-ca.pem');
  writeFileSync(path, caPem);
  return path;
}

/** Base64 RSA-SHA256 (PKCS#1 v1.5) signature of the raw body, as sent in `Authorization: Signature <…>`. */
export function signPartnerCenterBody(privateKeyPem: string, body: Buffer | string): string {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return sign('sha256', bytes, {
    key: privateKeyPem,
    padding: constants.RSA_PKCS1_PADDING,
  }).toString('base64');
}

/** The three headers Partner Center sends with a delivery [PC-WH]. */
export function partnerCenterSignatureHeaders(
  privateKeyPem: string,
  body: Buffer | string,
  certificateUrl: string,
): Record<string, string> {
  return {
    authorization: `Signature ${signPartnerCenterBody(privateKeyPem, body)}`,
    'x-ms-signature-algorithm': 'rsa-sha256',
    'x-ms-certificate-url': certificateUrl,
  };
}
