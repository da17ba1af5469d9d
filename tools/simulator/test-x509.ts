import {
  type KeyObject,
  X509Certificate,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
} from 'node:crypto';

/*
 * A minimal X.509 v3 issuer (RFC 5280) written with node:crypto and a few lines of DER, for the
 * provider simulator and tests: certificate authorities, intermediates and leaves with exactly the
 * fields a test needs (validity in the past, CA:false intermediates, an AIA "CA Issuers" URL),
 * which selfsigned@2 cannot produce. RSA-2048 keys, sha256WithRSAEncryption signatures.
 * A test, demo and benchmark aid; never a code path of the hub.
 */

/** A certificate with its private key. */
export interface IssuedCertificate {
  /** PKCS#1 PEM private key. */
  privateKeyPem: string;
  certPem: string;
  certDer: Buffer;
  x509: X509Certificate;
}

export interface CertificateRequest {
  /** Subject attributes in order, e.g. `{ O: 'Microsoft Corporation', CN: '…' }` (C, O, OU, CN). */
  subject: Partial<Record<'C' | 'O' | 'OU' | 'CN', string>>;
  /** Signing certificate; omitted: self-signed. */
  issuer?: IssuedCertificate;
  /** basicConstraints cA (default false). */
  ca?: boolean;
  /** keyUsage keyCertSign and cRLSign (default: same as `ca`; true with ca false makes a non-CA signer). */
  keyCertSign?: boolean;
  /** Default now − 1 minute. */
  notBefore?: Date;
  /** Default notBefore + 365 days. */
  notAfter?: Date;
  /** authorityInfoAccess "CA Issuers" URI. */
  caIssuersUrl?: string;
  /** Existing key pair (PKCS#1 PEM private key); default a new RSA-2048 key. */
  privateKeyPem?: string;
}

const OID = {
  C: '2.5.4.6',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  CN: '2.5.4.3',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  caIssuers: '1.3.6.1.5.5.7.48.2',
};

// ------------------------------------------------------------------------------------ DER

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let length: Buffer;
  if (n < 0x80) length = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    length = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), length, content]);
}

const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const octets = (b: Buffer) => tlv(0x04, b);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const explicit = (n: number, content: Buffer) => tlv(0xa0 + n, content);

function integer(bytes: Buffer): Buffer {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && b[1] < 0x80) b = b.subarray(1);
  return tlv(0x02, b[0] >= 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a + b];
  for (const n of rest) {
    const groups = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128))
      groups.unshift(0x80 | (v & 0x7f));
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/** BIT STRING of whole bytes (signatures, key ids) or of named bits (keyUsage). */
function bitString(bytes: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  const year = d.getUTCFullYear();
  return year >= 1950 && year < 2050
    ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii')) // UTCTime
    : tlv(0x18, Buffer.from(iso, 'ascii')); // GeneralizedTime
}

function name(attrs: CertificateRequest['subject']): Buffer {
  const order = ['C', 'O', 'OU', 'CN'] as const;
  return seq(
    ...order
      .filter((k) => attrs[k] !== undefined)
      .map((k) => set(seq(oid(OID[k]), tlv(0x0c, Buffer.from(attrs[k]!, 'utf8'))))),
  );
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

const algorithm = seq(oid(OID.sha256WithRSA), tlv(0x05, Buffer.alloc(0)));

// ------------------------------------------------------------------------------------ issuing

function keyId(spki: Buffer): Buffer {
  return createHash('sha1').update(spki).digest();
}

function spkiOf(key: KeyObject | X509Certificate): Buffer {
  const publicKey = key instanceof X509Certificate ? key.publicKey : createPublicKey(key);
  return publicKey.export({ type: 'spki', format: 'der' });
}

/** Issues (or self-signs) one certificate. */
export function issueCertificate(req: CertificateRequest): IssuedCertificate {
  const privateKeyPem =
    req.privateKeyPem ??
    generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    }).privateKey;
  const privateKey = createPrivateKey(privateKeyPem);
  const spki = spkiOf(privateKey);
  const notBefore = req.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = req.notAfter ?? new Date(notBefore.getTime() + 365 * 864e5);
  const issuerName = req.issuer ? req.issuer.x509.subject : undefined;
  const issuerSpki = req.issuer ? spkiOf(req.issuer.x509) : spki;

  const ca = req.ca ?? false;
  // digitalSignature (bit 0) for every certificate; keyCertSign (5) and cRLSign (6) for a CA.
  const keyUsage =
    (req.keyCertSign ?? ca) ? bitString(Buffer.from([0x86]), 1) : bitString(Buffer.from([0x80]), 7);
  const extensions = [
    extension(OID.basicConstraints, true, seq(...(ca ? [bool(true)] : []))),
    extension(OID.keyUsage, true, keyUsage),
    extension(OID.subjectKeyId, false, octets(keyId(spki))),
    extension(OID.authorityKeyId, false, seq(tlv(0x80, keyId(issuerSpki)))),
  ];
  if (req.caIssuersUrl) {
    const location = tlv(0x86, Buffer.from(req.caIssuersUrl, 'ascii')); // uniformResourceIdentifier
    extensions.push(
      extension(OID.authorityInfoAccess, false, seq(seq(oid(OID.caIssuers), location))),
    );
  }

  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(Buffer.concat([Buffer.from([0x01]), randomBytes(15)])),
    algorithm,
    req.issuer ? issuerDer(req.issuer) : name(req.subject),
    seq(time(notBefore), time(notAfter)),
    name(req.subject),
    spki,
    explicit(3, seq(...extensions)),
  );
  const signingKey = req.issuer ? createPrivateKey(req.issuer.privateKeyPem) : privateKey;
  const signature = sign('sha256', tbs, signingKey);
  const certDer = seq(tbs, algorithm, bitString(signature));
  const x509 = new X509Certificate(certDer);
  if (issuerName !== undefined && x509.issuer !== issuerName) {
    throw new Error('issuer name was not copied faithfully');
  }
  return { privateKeyPem, certPem: x509.toString(), certDer, x509 };
}

/** The issuer's subject Name, byte for byte, from its DER (so name matching is exact). */
function issuerDer(issuer: IssuedCertificate): Buffer {
  // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version, serial, sigAlg, issuer, validity, subject, … } }
  const tbs = children(children(issuer.certDer)[0]);
  return tbs[5];
}

/** The DER elements inside a constructed element (its content split into TLVs). */
function children(der: Buffer): Buffer[] {
  const { headerLength, length } = header(der);
  const content = der.subarray(headerLength, headerLength + length);
  const out: Buffer[] = [];
  for (let i = 0; i < content.length;) {
    const h = header(content.subarray(i));
    out.push(content.subarray(i, i + h.headerLength + h.length));
    i += h.headerLength + h.length;
  }
  return out;
}

function header(der: Buffer): { headerLength: number; length: number } {
  const first = der[1];
  if (first < 0x80) return { headerLength: 2, length: first };
  const count = first & 0x7f;
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + der[2 + i];
  return { headerLength: 2 + count, length };
}
