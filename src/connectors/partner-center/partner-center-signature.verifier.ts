import { X509Certificate, constants, verify as verifySignature } from 'node:crypto';

import { decodeBase64, headerValue } from '../../common/header.util';
import {
  CertificateUnavailableError,
  type HeaderBag,
  SignatureError,
} from '../../ports/webhook-door.port';

/** Subject organisation Microsoft's certificate carries; checked as defence in depth [PC-WH]. */
export const PARTNER_CENTER_CERT_ORGANIZATION = 'Microsoft Corporation';

const DEFAULT_CACHE_TTL_MS = 12 * 60 * 60 * 1000;
const MAX_CACHED_CERTIFICATES = 32;
/** A cached certificate that fails is re-downloaded at most this often (key rotation at the same URL). */
const MIN_REFETCH_INTERVAL_MS = 60 * 1000;
const FETCH_TIMEOUT_MS = 5000;
const MAX_CERTIFICATE_BYTES = 64 * 1024;

export interface PartnerCenterSignatureVerifierOptions {
  /** `PARTNER_CENTER_CERT_URL_PREFIXES`: origin + path prefix a certificate URL must match. */
  allowedCertUrlPrefixes: string[];
  /** Defaults to {@link fetchCertificateOverHttp}. Any error it throws counts as transient. */
  fetchCertificate?: (url: string) => Promise<Buffer>;
  /** How long a downloaded certificate is reused (default 12 h). */
  cacheTtlMs?: number;
  /** Clock in epoch ms, for the cache and the certificate validity window. */
  now?: () => number;
  /** Required `O=` of the certificate subject; `null` disables the check. Default Microsoft Corporation. */
  requiredOrganization?: string | null;
}

/**
 * Default certificate fetcher: global fetch with a 5 s timeout, no redirects (a redirect could
 * leave the pinned origin), at most 64 KiB. Every failure is a {@link CertificateUnavailableError}.
 */
export async function fetchCertificateOverHttp(url: string): Promise<Buffer> {
  try {
    const response = await fetch(url, {
      redirect: 'error',
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    if (Number(response.headers.get('content-length') ?? 0) > MAX_CERTIFICATE_BYTES) {
      throw new Error('response too large');
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body ?? []) {
      size += chunk.byteLength;
      if (size > MAX_CERTIFICATE_BYTES) throw new Error('response too large');
      chunks.push(Buffer.from(chunk));
    }
    return Buffer.concat(chunks);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new CertificateUnavailableError(`Partner Center certificate fetch failed: ${reason}`);
  }
}

/** Parses a configured prefix; a malformed one is a configuration error. */
function parsePrefix(prefix: string): URL {
  const url = new URL(prefix);
  if (
    !['https:', 'http:'].includes(url.protocol) ||
    url.username ||
    url.password ||
    url.search ||
    url.hash
  ) {
    throw new Error(`Invalid Partner Center certificate URL prefix: ${prefix}`);
  }
  return url;
}

/**
 * Normalises an attacker-controlled `X-MS-Certificate-Url` (WHATWG URL: lower-cased host, default
 * port dropped, `.`/`..` and `%2e` segments resolved) and returns its href only if it has the same
 * origin as an allowed prefix (so `https://good.host.evil.com/` never matches `https://good.host/`,
 * and https is required unless the prefix itself is http) and its path starts with the prefix's path
 * (CONTRACT §3.5, [PC-WH][3P-PC-PIN]). Userinfo, fragments and encoded `/`, `\` or `.` are refused.
 */
export function allowedCertificateUrl(raw: string, prefixes: readonly URL[]): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.username || url.password || url.hash || /%(2f|5c|2e)/i.test(url.pathname))
    return undefined;
  const allowed = prefixes.some(
    (prefix) => url.origin === prefix.origin && url.pathname.startsWith(prefix.pathname),
  );
  return allowed ? url.href : undefined;
}

/**
 * Partner Center webhook signatures (CONTRACT §3.5, provider-facts §4.3): `Authorization: Signature
 * <base64>` is an RSA-SHA256 (PKCS#1 v1.5) signature of the raw body, made with the key of the
 * certificate at `X-MS-Certificate-Url` [PC-WH]. The URL is pinned to the allowed prefixes before
 * anything is fetched. Certificates (DER or PEM) are cached per URL; concurrent requests for the
 * same URL share one download, and a failed download is not cached. Payloads carry no timestamp, so
 * replays are handled by the inbox's unique event identity.
 */
export class PartnerCenterSignatureVerifier {
  private readonly prefixes: URL[];
  private readonly fetchCertificate: (url: string) => Promise<Buffer>;
  private readonly cacheTtlMs: number;
  private readonly now: () => number;
  private readonly requiredOrganization: string | null;
  private readonly cache = new Map<
    string,
    { fetchedAt: number; certificate: Promise<X509Certificate> }
  >();

  constructor(options: PartnerCenterSignatureVerifierOptions) {
    if (options.allowedCertUrlPrefixes.length === 0) {
      throw new Error('No Partner Center certificate URL prefix is configured');
    }
    this.prefixes = options.allowedCertUrlPrefixes.map(parsePrefix);
    this.fetchCertificate = options.fetchCertificate ?? fetchCertificateOverHttp;
    this.cacheTtlMs = options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
    this.now = options.now ?? Date.now;
    this.requiredOrganization =
      options.requiredOrganization === undefined
        ? PARTNER_CENTER_CERT_ORGANIZATION
        : options.requiredOrganization;
  }

  /**
   * @throws SignatureError `missing_signature`, `bad_signature` or `untrusted_certificate`
   * @throws CertificateUnavailableError when the certificate cannot be fetched (answer 503)
   */
  async verify(rawBody: Buffer, headers: HeaderBag): Promise<void> {
    const authorization = headerValue(headers, 'authorization');
    const certUrl = headerValue(headers, 'x-ms-certificate-url');
    const algorithm = headerValue(headers, 'x-ms-signature-algorithm');
    const match = authorization ? /^Signature\s+(\S+)\s*$/i.exec(authorization) : null;
    if (!match || !certUrl) {
      throw new SignatureError(
        'missing_signature',
        'Authorization: Signature or X-MS-Certificate-Url header missing',
      );
    }
    if (algorithm !== undefined && algorithm.trim().toLowerCase() !== 'rsa-sha256') {
      throw new SignatureError('bad_signature', 'X-MS-Signature-Algorithm is not rsa-sha256');
    }
    const signature = decodeBase64(match[1]);
    if (!signature) throw new SignatureError('bad_signature', 'Signature is not base64');

    const url = allowedCertificateUrl(certUrl, this.prefixes);
    if (!url) {
      throw new SignatureError(
        'untrusted_certificate',
        'X-MS-Certificate-Url is outside the allowed prefixes',
      );
    }
    try {
      this.verifyWith(await this.certificate(url), rawBody, signature);
    } catch (error) {
      // Microsoft may replace the certificate behind the same URL (rotation, expiry): when a cached
      // one fails, download it again once, but at most once a minute so forgeries cannot force fetches.
      if (!(error instanceof SignatureError) || !this.evictStale(url)) throw error;
      this.verifyWith(await this.certificate(url), rawBody, signature);
    }
  }

  private verifyWith(certificate: X509Certificate, rawBody: Buffer, signature: Buffer): void {
    this.assertTrusted(certificate);
    let valid = false;
    try {
      valid = verifySignature(
        'sha256',
        rawBody,
        { key: certificate.publicKey, padding: constants.RSA_PKCS1_PADDING },
        signature,
      );
    } catch {
      valid = false; // e.g. a signature longer than the modulus
    }
    if (!valid) throw new SignatureError('bad_signature', 'RSA-SHA256 signature does not match');
  }

  /** Cached (or in-flight) certificate for a trusted URL; failures are evicted so the next delivery retries. */
  private certificate(url: string): Promise<X509Certificate> {
    const now = this.now();
    const cached = this.cache.get(url);
    if (cached && now - cached.fetchedAt < this.cacheTtlMs) return cached.certificate;

    const entry = { fetchedAt: now, certificate: this.download(url) };
    this.cache.delete(url);
    this.cache.set(url, entry);
    if (this.cache.size > MAX_CACHED_CERTIFICATES) {
      this.cache.delete(this.cache.keys().next().value as string); // oldest insertion
    }
    entry.certificate.catch(() => {
      if (this.cache.get(url) === entry) this.cache.delete(url);
    });
    return entry.certificate;
  }

  /** Drops the cached certificate of `url` if it was fetched long enough ago to be worth refetching. */
  private evictStale(url: string): boolean {
    const cached = this.cache.get(url);
    if (!cached || this.now() - cached.fetchedAt < MIN_REFETCH_INTERVAL_MS) return false;
    this.cache.delete(url);
    return true;
  }

  private async download(url: string): Promise<X509Certificate> {
    let bytes: Buffer;
    try {
      bytes = await this.fetchCertificate(url);
    } catch (error) {
      if (error instanceof CertificateUnavailableError) throw error;
      throw new CertificateUnavailableError(
        `Partner Center certificate fetch failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    try {
      return new X509Certificate(bytes); // accepts DER and PEM
    } catch {
      throw new SignatureError(
        'untrusted_certificate',
        'X-MS-Certificate-Url did not serve an X.509 certificate',
      );
    }
  }

  /** Validity window (checked on every delivery, cache or not), key type and subject organisation. */
  private assertTrusted(certificate: X509Certificate): void {
    const now = this.now();
    // Written as a positive test so that an unparsable date (NaN) also fails.
    if (!(now >= Date.parse(certificate.validFrom) && now <= Date.parse(certificate.validTo))) {
      throw new SignatureError(
        'untrusted_certificate',
        'Certificate is outside its validity window',
      );
    }
    if (certificate.publicKey.asymmetricKeyType !== 'rsa') {
      throw new SignatureError('untrusted_certificate', 'Certificate key is not RSA');
    }
    const organization = this.requiredOrganization;
    if (organization !== null && !certificate.subject.split('\n').includes(`O=${organization}`)) {
      throw new SignatureError(
        'untrusted_certificate',
        `Certificate subject is not O=${organization}`,
      );
    }
  }
}
