import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { DEFAULT_PARTNER_CENTER_CERT_URL_PREFIXES } from '../../config/app-config';
import {
  PartnerCenterSignatureVerifier,
  type PartnerCenterSignatureVerifierOptions,
  fetchCertificateOverHttp,
} from './partner-center-signature.verifier';
import {
  CertificateUnavailableError,
  type HeaderBag,
  SignatureError,
} from '../../ports/webhook-door.port';
import {
  type PartnerCenterTestCa,
  type PartnerCenterTestCert,
  createPartnerCenterTestCa,
  createPartnerCenterTestCert,
  partnerCenterSignatureHeaders,
  signPartnerCenterBody,
} from '../../../tools/simulator/partner-center-cert';

const CERT_URL = `${DEFAULT_PARTNER_CENTER_CERT_URL_PREFIXES[0]}pcnotifications-dispatch.microsoft.com.cer`;
const body = Buffer.from(
  '{"EventName":"referral-created","ResourceUri":"https://api.partnercenter.microsoft.com/engagements/v1/referrals/abc","ResourceName":"referral","AuditUri":null,"ResourceChangeUtcDate":"2026-02-17T00:05:39.5485487+00:00"}',
);

// A simulator root CA (what PARTNER_CENTER_CA_FILE would hold) and two leaves it issued directly.
let ca: PartnerCenterTestCa;
let cert: PartnerCenterTestCert;
let otherCert: PartnerCenterTestCert;
beforeAll(() => {
  ca = createPartnerCenterTestCa();
  cert = createPartnerCenterTestCert({ ca });
  otherCert = createPartnerCenterTestCert({ ca });
});

function verifier(options: Partial<PartnerCenterSignatureVerifierOptions> = {}) {
  const fetchCertificate = jest.fn(async (_url: string) => cert.certDer);
  const instance = new PartnerCenterSignatureVerifier({
    allowedCertUrlPrefixes: DEFAULT_PARTNER_CENTER_CERT_URL_PREFIXES,
    trustedRoots: [ca.rootPem],
    fetchCertificate,
    ...options,
  });
  return { instance, fetchCertificate };
}

const signedHeaders = (url = CERT_URL, key = cert.privateKeyPem, data: Buffer = body): HeaderBag =>
  partnerCenterSignatureHeaders(key, data, url);

async function reasonOf(promise: Promise<void>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SignatureError) return error.reason;
    throw error;
  }
  return undefined;
}

describe('PartnerCenterSignatureVerifier', () => {
  it('accepts a body signed with the key of a DER certificate', async () => {
    const { instance, fetchCertificate } = verifier();
    await expect(instance.verify(body, signedHeaders())).resolves.toBeUndefined();
    expect(fetchCertificate).toHaveBeenCalledWith(CERT_URL);
  });

  it('accepts a PEM certificate and mixed-case header values', async () => {
    const { instance } = verifier({ fetchCertificate: async () => Buffer.from(cert.certPem) });
    const headers = {
      authorization: `signature ${signPartnerCenterBody(cert.privateKeyPem, body)}`,
      'x-ms-signature-algorithm': 'RSA-SHA256',
      'x-ms-certificate-url': CERT_URL,
    };
    await expect(instance.verify(body, headers)).resolves.toBeUndefined();
  });

  it('rejects a signature made with another key', async () => {
    const { instance } = verifier();
    expect(
      await reasonOf(instance.verify(body, signedHeaders(CERT_URL, otherCert.privateKeyPem))),
    ).toBe('bad_signature');
  });

  it('rejects a tampered body', async () => {
    const { instance } = verifier();
    const tampered = Buffer.from(body.toString().replace('referral-created', 'referral-updated'));
    expect(await reasonOf(instance.verify(tampered, signedHeaders()))).toBe('bad_signature');
  });

  it('rejects another algorithm and a non-base64 signature', async () => {
    const { instance } = verifier();
    const headers = { ...signedHeaders(), 'x-ms-signature-algorithm': 'rsa-sha1' };
    expect(await reasonOf(instance.verify(body, headers))).toBe('bad_signature');
    const garbage = { ...signedHeaders(), authorization: 'Signature %%%' };
    expect(await reasonOf(instance.verify(body, garbage))).toBe('bad_signature');
  });

  it.each([
    ['another host', 'https://evil.example.com/cert/pcnotifications-dispatch.microsoft.com.cer'],
    ['a host-suffix trick', 'https://3psostorageacct.blob.core.windows.net.evil.com/cert/x.cer'],
    ['a look-alike storage account', 'https://3psostorageacct2.blob.core.windows.net/cert/x.cer'],
    ['a `..` path escape', 'https://3psostorageacct.blob.core.windows.net/cert/../evil/x.cer'],
    [
      'an encoded `..` path escape',
      'https://3psostorageacct.blob.core.windows.net/cert/%2e%2e/evil/x.cer',
    ],
    ['an encoded slash', 'https://3psostorageacct.blob.core.windows.net/cert/..%2Fevil/x.cer'],
    ['a sibling path', 'https://3psostorageacct.blob.core.windows.net/certs/x.cer'],
    ['plain http', 'http://3psostorageacct.blob.core.windows.net/cert/x.cer'],
    ['another port', 'https://3psostorageacct.blob.core.windows.net:8443/cert/x.cer'],
    ['userinfo', 'https://3psostorageacct.blob.core.windows.net@evil.com/cert/x.cer'],
    ['userinfo on the right host', 'https://u:p@3psostorageacct.blob.core.windows.net/cert/x.cer'],
    ['a relative URL', '/cert/x.cer'],
  ])('rejects a certificate URL with %s without fetching it', async (_label, url) => {
    const { instance, fetchCertificate } = verifier();
    expect(await reasonOf(instance.verify(body, signedHeaders(url)))).toBe('untrusted_certificate');
    expect(fetchCertificate).not.toHaveBeenCalled();
  });

  it('normalises an allowed URL (host case, default port, dot segments) before fetching it', async () => {
    const { instance, fetchCertificate } = verifier();
    const url =
      'https://3PSOSTORAGEACCT.blob.core.windows.net:443/cert/./old/../pcnotifications-dispatch.microsoft.com.cer';
    await expect(instance.verify(body, signedHeaders(url))).resolves.toBeUndefined();
    expect(fetchCertificate).toHaveBeenCalledWith(CERT_URL);
  });

  it('allows http only when the configured prefix is http (local simulator)', async () => {
    const { instance } = verifier({ allowedCertUrlPrefixes: ['http://127.0.0.1:4010/cert/'] });
    await expect(
      instance.verify(body, signedHeaders('http://127.0.0.1:4010/cert/pc.cer')),
    ).resolves.toBeUndefined();
    expect(
      await reasonOf(instance.verify(body, signedHeaders('https://127.0.0.1:4010/cert/pc.cer'))),
    ).toBe('untrusted_certificate');
  });

  it('reports missing headers', async () => {
    const { instance } = verifier();
    const { authorization: _a, ...noAuthorization } = signedHeaders() as Record<string, string>;
    const { 'x-ms-certificate-url': _u, ...noUrl } = signedHeaders() as Record<string, string>;
    expect(await reasonOf(instance.verify(body, noAuthorization))).toBe('missing_signature');
    expect(await reasonOf(instance.verify(body, noUrl))).toBe('missing_signature');
    expect(
      await reasonOf(instance.verify(body, { ...signedHeaders(), authorization: 'Bearer x' })),
    ).toBe('missing_signature');
  });

  // selfsigned@2 refuses to emit an already expired certificate, so expiry is tested with the clock.
  it('rejects an expired certificate and one not yet valid', async () => {
    const expired = verifier({ now: () => Date.now() + 400 * 864e5 }).instance; // cert valid 365 days
    expect(await reasonOf(expired.verify(body, signedHeaders()))).toBe('untrusted_certificate');
    const notYetValid = verifier({ now: () => Date.now() - 864e5 }).instance;
    expect(await reasonOf(notYetValid.verify(body, signedHeaders()))).toBe('untrusted_certificate');
  });

  it('rejects a certificate not issued to Microsoft Corporation unless the check is disabled', async () => {
    const foreign = createPartnerCenterTestCert({ ca, organization: 'Evil Corp' });
    const headers = signedHeaders(CERT_URL, foreign.privateKeyPem);
    const { instance } = verifier({ fetchCertificate: async () => foreign.certDer });
    expect(await reasonOf(instance.verify(body, headers))).toBe('untrusted_certificate');
    const lax = verifier({
      fetchCertificate: async () => foreign.certDer,
      requiredOrganization: null,
    });
    await expect(lax.instance.verify(body, headers)).resolves.toBeUndefined();
  });

  it('rejects a URL that does not serve a certificate', async () => {
    const { instance } = verifier({
      fetchCertificate: async () => Buffer.from('<html>not found</html>'),
    });
    expect(await reasonOf(instance.verify(body, signedHeaders()))).toBe('untrusted_certificate');
  });

  it('turns a fetch failure into CertificateUnavailableError, remembered for the failure TTL (one fetch), then retried', async () => {
    let clock = Date.now();
    const fetchCertificate = jest
      .fn<Promise<Buffer>, [string]>()
      .mockRejectedValueOnce(new Error('ECONNRESET'))
      .mockResolvedValue(cert.certDer);
    const { instance } = verifier({ fetchCertificate, now: () => clock });
    for (let i = 0; i < 3; i++) {
      await expect(instance.verify(body, signedHeaders())).rejects.toBeInstanceOf(
        CertificateUnavailableError,
      );
    }
    expect(fetchCertificate).toHaveBeenCalledTimes(1);
    clock += 60_000;
    await expect(instance.verify(body, signedHeaders())).resolves.toBeUndefined();
    expect(fetchCertificate).toHaveBeenCalledTimes(2);
  });

  it('fetches a certificate once for sequential and concurrent deliveries, and again after the TTL', async () => {
    let clock = Date.now();
    const { instance, fetchCertificate } = verifier({ cacheTtlMs: 60_000, now: () => clock });
    await Promise.all([
      instance.verify(body, signedHeaders()),
      instance.verify(body, signedHeaders()),
    ]);
    await instance.verify(body, signedHeaders());
    expect(fetchCertificate).toHaveBeenCalledTimes(1);
    clock += 60_001;
    await instance.verify(body, signedHeaders());
    expect(fetchCertificate).toHaveBeenCalledTimes(2);
  });

  it('refetches a cached certificate that no longer verifies (rotation), at most once a minute', async () => {
    let clock = Date.now();
    const fetchCertificate = jest
      .fn<Promise<Buffer>, [string]>()
      .mockResolvedValueOnce(cert.certDer)
      .mockResolvedValue(otherCert.certDer);
    const { instance } = verifier({ fetchCertificate, now: () => clock });
    await instance.verify(body, signedHeaders());
    const rotated = signedHeaders(CERT_URL, otherCert.privateKeyPem);
    clock += 30_000; // too soon: a forgery must not trigger a download
    expect(await reasonOf(instance.verify(body, rotated))).toBe('bad_signature');
    expect(fetchCertificate).toHaveBeenCalledTimes(1);
    clock += 31_000;
    await expect(instance.verify(body, rotated)).resolves.toBeUndefined();
    expect(fetchCertificate).toHaveBeenCalledTimes(2);
    // The fresh certificate is not fetched again for a bad signature.
    expect(await reasonOf(instance.verify(body, signedHeaders()))).toBe('bad_signature');
    expect(fetchCertificate).toHaveBeenCalledTimes(2);
  });

  it('refuses an empty or malformed prefix list', () => {
    expect(() => new PartnerCenterSignatureVerifier({ allowedCertUrlPrefixes: [] })).toThrow();
    expect(
      () => new PartnerCenterSignatureVerifier({ allowedCertUrlPrefixes: ['ftp://x/cert/'] }),
    ).toThrow();
    expect(
      () => new PartnerCenterSignatureVerifier({ allowedCertUrlPrefixes: ['not a url'] }),
    ).toThrow();
  });
});

describe('PartnerCenterSignatureVerifier downloads and cache', () => {
  const PREFIX = DEFAULT_PARTNER_CENTER_CERT_URL_PREFIXES[0];
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  let selfSigned: PartnerCenterTestCert;
  beforeAll(() => {
    selfSigned = createPartnerCenterTestCert({ selfSigned: true });
  });

  it('pins the URL without its query string: `?n=1`, `?n=2`, … and a fragment are one cache entry and one download', async () => {
    const { instance, fetchCertificate } = verifier();
    for (let n = 1; n <= 5; n++) {
      await instance.verify(body, signedHeaders(`${CERT_URL}?n=${n}`));
    }
    await instance.verify(body, signedHeaders(`${CERT_URL}#x`));
    // forgeries with fresh query strings cannot force a download either
    for (let n = 6; n <= 10; n++) {
      const forged = signedHeaders(`${CERT_URL}?n=${n}`, otherCert.privateKeyPem);
      expect(await reasonOf(instance.verify(body, forged))).toBe('bad_signature');
    }
    expect(fetchCertificate).toHaveBeenCalledTimes(1);
    expect(fetchCertificate).toHaveBeenCalledWith(CERT_URL);
    expect(instance.cacheSizes).toEqual({ proven: 1, unproven: 0 });
  });

  it('refuses a download beyond the cap (2 at once) with CertificateUnavailableError without fetching, and does not remember the refusal', async () => {
    const pending: ((bytes: Buffer) => void)[] = [];
    let hold = true;
    const fetchCertificate = jest.fn((_url: string) =>
      hold
        ? new Promise<Buffer>((resolve) => pending.push(resolve))
        : Promise.resolve(cert.certDer),
    );
    const { instance } = verifier({ fetchCertificate });
    const a = instance.verify(body, signedHeaders(`${PREFIX}a.cer`));
    const b = instance.verify(body, signedHeaders(`${PREFIX}b.cer`));
    await settle();
    expect(fetchCertificate).toHaveBeenCalledTimes(2);
    await expect(instance.verify(body, signedHeaders())).rejects.toBeInstanceOf(
      CertificateUnavailableError,
    );
    // a delivery for a URL being downloaded shares that download
    const a2 = instance.verify(body, signedHeaders(`${PREFIX}a.cer`));
    await settle();
    expect(fetchCertificate).toHaveBeenCalledTimes(2);
    hold = false;
    pending.forEach((resolve) => resolve(cert.certDer));
    await Promise.all([a, b, a2]);
    await expect(instance.verify(body, signedHeaders())).resolves.toBeUndefined();
    expect(fetchCertificate).toHaveBeenCalledTimes(3);
  });

  it.each([
    ['a download error', () => Promise.reject(new Error('HTTP 404')), 'unavailable'],
    ['not a certificate', async () => Buffer.from('<html>no</html>'), 'untrusted_certificate'],
    ['an untrusted chain', async () => selfSigned.certDer, 'untrusted_certificate'],
  ])(
    'a URL that fails with %s is downloaded once within the failure TTL (60 s), then again',
    async (_label, serve, outcome) => {
      let clock = Date.now();
      const fetchCertificate = jest.fn((_url: string) => serve());
      const { instance } = verifier({ fetchCertificate, now: () => clock });
      const attempt = async () => {
        try {
          await instance.verify(body, signedHeaders(`${PREFIX}junk.cer?n=${clock}`));
        } catch (error) {
          if (error instanceof CertificateUnavailableError) return 'unavailable';
          if (error instanceof SignatureError) return error.reason;
        }
        return 'accepted';
      };
      for (let i = 0; i < 3; i++) {
        expect(await attempt()).toBe(outcome);
        clock += 19_000;
      }
      expect(fetchCertificate).toHaveBeenCalledTimes(1);
      clock += 4_000;
      expect(await attempt()).toBe(outcome);
      expect(fetchCertificate).toHaveBeenCalledTimes(2);
    },
  );

  it('a flood of junk URLs under the prefix does not evict the proven certificate: the next real delivery needs no download', async () => {
    const fetchCertificate = jest.fn(async (url: string) => {
      if (url === CERT_URL) return cert.certDer;
      const n = Number(/junk-(\d+)/.exec(url)?.[1]);
      if (n % 3 === 0) throw new Error('HTTP 404');
      // a self-signed look-alike, or a real trusted certificate with a forged signature
      return n % 3 === 1 ? selfSigned.certDer : cert.certDer;
    });
    const { instance } = verifier({ fetchCertificate });
    await instance.verify(body, signedHeaders());
    for (let n = 0; n < 300; n++) {
      const forged = signedHeaders(`${PREFIX}junk-${n}.cer`, otherCert.privateKeyPem);
      await instance.verify(body, forged).catch(() => undefined);
    }
    expect(fetchCertificate).toHaveBeenCalledTimes(301);
    expect(instance.cacheSizes).toEqual({ proven: 1, unproven: 16 });
    fetchCertificate.mockClear();
    await expect(instance.verify(body, signedHeaders())).resolves.toBeUndefined();
    expect(fetchCertificate).not.toHaveBeenCalled();
  });

  it('a proven certificate past its TTL is downloaded again, and still used while that download fails', async () => {
    let clock = Date.now();
    const fetchCertificate = jest
      .fn<Promise<Buffer>, [string]>()
      .mockResolvedValueOnce(cert.certDer)
      .mockRejectedValue(new Error('ECONNRESET'));
    const { instance } = verifier({ fetchCertificate, cacheTtlMs: 60_000, now: () => clock });
    await instance.verify(body, signedHeaders());
    clock += 60_001;
    await expect(instance.verify(body, signedHeaders())).resolves.toBeUndefined();
    await expect(instance.verify(body, signedHeaders())).resolves.toBeUndefined();
    expect(fetchCertificate).toHaveBeenCalledTimes(2); // retried at most once a minute
    clock += 60_000;
    await expect(instance.verify(body, signedHeaders())).resolves.toBeUndefined();
    expect(fetchCertificate).toHaveBeenCalledTimes(3);
  });
});

describe('fetchCertificateOverHttp (default fetcher)', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/cert/pc.cer') return res.end(cert.certDer);
      if (req.url === '/cert/big.cer') return res.end(Buffer.alloc(65 * 1024));
      if (req.url === '/cert/redirect.cer') {
        res.writeHead(302, { location: '/cert/pc.cer' });
        return res.end();
      }
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('downloads a certificate that the verifier then uses', async () => {
    await expect(fetchCertificateOverHttp(`${base}/cert/pc.cer`)).resolves.toEqual(cert.certDer);
    const instance = new PartnerCenterSignatureVerifier({
      allowedCertUrlPrefixes: [`${base}/cert/`],
      trustedRoots: [ca.rootPem],
    });
    await expect(
      instance.verify(body, signedHeaders(`${base}/cert/pc.cer`)),
    ).resolves.toBeUndefined();
  });

  it.each([
    ['a 404', '/cert/missing.cer'],
    ['a response over 64 KiB', '/cert/big.cer'],
    ['a redirect', '/cert/redirect.cer'],
  ])('fails with CertificateUnavailableError on %s', async (_label, path) => {
    await expect(fetchCertificateOverHttp(`${base}${path}`)).rejects.toBeInstanceOf(
      CertificateUnavailableError,
    );
  });

  it('fetches http(s) URLs only', async () => {
    for (const url of ['ftp://127.0.0.1/cert/pc.cer', 'file:///etc/passwd', 'data:,x']) {
      await expect(fetchCertificateOverHttp(url)).rejects.toBeInstanceOf(
        CertificateUnavailableError,
      );
    }
  });
});
