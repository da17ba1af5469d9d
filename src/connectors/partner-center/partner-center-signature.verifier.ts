import { X509Certificate, constants, verify as verifySignature } from 'node:crypto';
import { rootCertificates } from 'node:tls';

import { certificatesIn } from '../../common/certificate.util';
import { decodeBase64, headerValue } from '../../common/header.util';
import {
  CertificateUnavailableError,
  type HeaderBag,
  SignatureError,
} from '../../ports/webhook-door.port';
import { CertificateCache } from './partner-center-cert-cache';
import { TrustAnchors, assertChainValidAt, verifyChain } from './partner-center-cert-chain';

/** Subject organisation Microsoft's certificate carries; checked as defence in depth [PC-WH]. */
export const PARTNER_CENTER_CERT_ORGANIZATION = 'Microsoft Corporation';

const DEFAULT_CACHE_TTL_MS = 12 * 60 * 60 * 1000;
/** A URL whose certificate could not be had is not downloaded again for this long. */
const DEFAULT_FAILURE_TTL_MS = 60 * 1000;
/** Downloads running at once (certificates and their issuers), per verifier: one per process. */
const DEFAULT_MAX_CONCURRENT_DOWNLOADS = 2;
/** URLs kept that never verified a signature (in flight, failed, or unused). */
const DEFAULT_MAX_UNPROVEN_CERTIFICATES = 16;
/** URLs kept whose certificate verified a signature (Microsoft uses one). */
const MAX_PROVEN_CERTIFICATES = 4;
/** A cached certificate that fails is re-downloaded at most this often (key rotation at the same URL). */
const MIN_REFETCH_INTERVAL_MS = 60 * 1000;
const FETCH_TIMEOUT_MS = 5000;
const MAX_CERTIFICATE_BYTES = 64 * 1024;

export interface PartnerCenterSignatureVerifierOptions {
  /** `PARTNER_CENTER_CERT_URL_PREFIXES`: origin + path prefix a certificate URL must match. */
  allowedCertUrlPrefixes: string[];
  /**
   * The roots a certificate must chain to (PEM or parsed); default Node's bundled roots. The hub
   * passes AppConfig.partnerCenterTrustedRoots (PARTNER_CENTER_CA_FILE, else bundled roots plus
   * NODE_EXTRA_CA_CERTS).
   */
  trustedRoots?: readonly (string | X509Certificate)[];
  /**
   * Downloads a certificate URL or an issuer's authorityInfoAccess URL. Defaults to
   * {@link fetchCertificateOverHttp}. Any error it throws counts as transient.
   */
  fetchCertificate?: (url: string) => Promise<Buffer>;
  /** How long a downloaded certificate is reused (default 12 h). */
  cacheTtlMs?: number;
  /** How long a failed download or an untrusted certificate is remembered per URL (default 60 s). */
  failureTtlMs?: number;
  /** Downloads at once (default 2); one more is refused with CertificateUnavailableError. */
  maxConcurrentDownloads?: number;
  /** URLs cached that never verified a signature (default 16). */
  maxUnprovenCertificates?: number;
  /** Clock in epoch ms, for the cache and the certificates' validity windows. */
  now?: () => number;
  /** Required `O=` of the certificate subject; `null` disables the check. Default Microsoft Corporation. */
  requiredOrganization?: string | null;
}

/**
 * Default certificate fetcher: global fetch of an http(s) URL with a 5 s timeout, no redirects (a
 * redirect could leave the pinned origin), at most 64 KiB. Every failure is a
 * {@link CertificateUnavailableError}.
 */
export async function fetchCertificateOverHttp(url: string): Promise<Buffer> {
  try {
    if (!/^https?:$/.test(new URL(url).protocol)) throw new Error('not an http(s) URL');
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
 * port dropped, `.`/`..` and `%2e` segments resolved, query string and fragment dropped) and returns
 * its href only if it has the same origin as an allowed prefix (so `https://good.host.evil.com/`
 * never matches `https://good.host/`, and https is required unless the prefix itself is http) and
 * its path starts with the prefix's path (CONTRACT §3.5, [PC-WH][3P-PC-PIN]). Userinfo and encoded
 * `/`, `\` or `.` are refused. The href is what is downloaded and the cache key, so `…/x.cer?n=1`
 * and `…/x.cer?n=2` are one certificate and one download.
 */
export function allowedCertificateUrl(raw: string, prefixes: readonly URL[]): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.username || url.password || /%(2f|5c|2e)/i.test(url.pathname)) return undefined;
  url.search = '';
  url.hash = '';
  const allowed = prefixes.some(
    (prefix) => url.origin === prefix.origin && url.pathname.startsWith(prefix.pathname),
  );
  return allowed ? url.href : undefined;
}

/** The values cached per certificate URL: the leaf and its verified chain (leaf first, root last). */
interface TrustedCertificate {
  leaf: X509Certificate;
  chain: X509Certificate[];
}

/** Refusal because {@link DEFAULT_MAX_CONCURRENT_DOWNLOADS} downloads are running: says nothing about the URL. */
class DownloadsBusyError extends CertificateUnavailableError {}

const remember = (error: unknown) => !(error instanceof DownloadsBusyError);

/**
 * Partner Center webhook signatures (CONTRACT §3.5, provider-facts §4.3, ADR 0011):
 * `Authorization: Signature <base64>` is an RSA-SHA256 (PKCS#1 v1.5) signature of the raw body,
 * made with the key of the certificate at `X-MS-Certificate-Url` [PC-WH].
 *
 * - The URL is pinned to the allowed prefixes, without its query string, before anything is
 *   fetched; the certificate (DER, or a PEM bundle of leaf and intermediates) is trusted only
 *   through a chain to a trusted root ({@link verifyChain}; a missing intermediate is fetched once
 *   from the leaf's authorityInfoAccess URL), and must be an RSA key of `O=Microsoft Corporation`.
 * - At most `maxConcurrentDownloads` downloads run at once; beyond that a delivery answers
 *   CertificateUnavailableError (503, Partner Center retries) at once.
 * - Certificates are cached per URL ({@link CertificateCache}): failures for a minute, and a
 *   certificate that verified a signature apart from the rest, so junk URLs cannot evict it. A
 *   cached certificate that fails is downloaded again at most once a minute (rotation).
 *
 * Payloads carry no timestamp, so replays are handled by the inbox's unique event identity.
 */
export class PartnerCenterSignatureVerifier {
  private readonly prefixes: URL[];
  private readonly fetchCertificate: (url: string) => Promise<Buffer>;
  private readonly now: () => number;
  private readonly requiredOrganization: string | null;
  private readonly anchors: TrustAnchors;
  private readonly maxConcurrentDownloads: number;
  private downloads = 0;
  private readonly certificates: CertificateCache<TrustedCertificate>;
  private readonly issuers: CertificateCache<X509Certificate[]>;

  constructor(options: PartnerCenterSignatureVerifierOptions) {
    if (options.allowedCertUrlPrefixes.length === 0) {
      throw new Error('No Partner Center certificate URL prefix is configured');
    }
    this.prefixes = options.allowedCertUrlPrefixes.map(parsePrefix);
    this.fetchCertificate = options.fetchCertificate ?? fetchCertificateOverHttp;
    this.now = options.now ?? Date.now;
    this.requiredOrganization =
      options.requiredOrganization === undefined
        ? PARTNER_CENTER_CERT_ORGANIZATION
        : options.requiredOrganization;
    this.anchors = new TrustAnchors(options.trustedRoots ?? rootCertificates);
    this.maxConcurrentDownloads =
      options.maxConcurrentDownloads ?? DEFAULT_MAX_CONCURRENT_DOWNLOADS;
    const cache = {
      ttlMs: options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS,
      failureTtlMs: options.failureTtlMs ?? DEFAULT_FAILURE_TTL_MS,
      refetchIntervalMs: MIN_REFETCH_INTERVAL_MS,
      maxProven: MAX_PROVEN_CERTIFICATES,
      maxUnproven: options.maxUnprovenCertificates ?? DEFAULT_MAX_UNPROVEN_CERTIFICATES,
      now: this.now,
      remember,
    };
    this.certificates = new CertificateCache((url) => this.loadCertificate(url), cache);
    this.issuers = new CertificateCache((url) => this.loadIssuers(url), cache);
  }

  /** Cache sizes (for tests). */
  get cacheSizes(): { proven: number; unproven: number } {
    return this.certificates.sizes;
  }

  /**
   * @throws SignatureError `missing_signature`, `bad_signature` or `untrusted_certificate`
   * @throws CertificateUnavailableError when the certificate cannot be fetched now (answer 503)
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
    const cached = await this.certificates.get(url);
    try {
      this.verifyWith(cached, rawBody, signature);
      this.certificates.prove(url, cached);
    } catch (error) {
      // Microsoft may replace the certificate behind the same URL (rotation, expiry): when a cached
      // one fails, download it again, at most once a minute so that forgeries cannot force fetches.
      if (!(error instanceof SignatureError)) throw error;
      const fresh = await this.certificates.refetch(url);
      if (!fresh) throw error;
      this.verifyWith(fresh, rawBody, signature);
      this.certificates.prove(url, fresh);
    }
  }

  private verifyWith(trusted: TrustedCertificate, rawBody: Buffer, signature: Buffer): void {
    // Checked on every delivery, cached or not: a chain valid when downloaded may have expired.
    assertChainValidAt(trusted.chain, this.now());
    let valid = false;
    try {
      valid = verifySignature(
        'sha256',
        rawBody,
        { key: trusted.leaf.publicKey, padding: constants.RSA_PKCS1_PADDING },
        signature,
      );
    } catch {
      valid = false; // e.g. a signature longer than the modulus
    }
    if (!valid) throw new SignatureError('bad_signature', 'RSA-SHA256 signature does not match');
  }

  /** Downloads, parses and verifies the certificate at a pinned URL (one cache load). */
  private async loadCertificate(url: string): Promise<TrustedCertificate> {
    const served = parseCertificates(await this.download(url), 'X-MS-Certificate-Url');
    const [leaf, ...candidates] = served;
    this.assertLeaf(leaf); // before any issuer download: a foreign leaf costs nothing more
    const chain = await verifyChain({
      leaf,
      candidates,
      anchors: this.anchors,
      now: this.now(),
      fetchIssuers: (issuerUrl) => this.issuers.get(issuerUrl),
    });
    return { leaf, chain };
  }

  /** The certificates at an authorityInfoAccess "CA Issuers" URL (DER or PEM). */
  private async loadIssuers(url: string): Promise<X509Certificate[]> {
    return parseCertificates(await this.download(url), 'The CA Issuers URL');
  }

  /**
   * The bounded downloader: at most `maxConcurrentDownloads` at once (beyond that a refusal at
   * once, not a queue); every failure is a CertificateUnavailableError.
   */
  private async download(url: string): Promise<Buffer> {
    if (this.downloads >= this.maxConcurrentDownloads) {
      throw new DownloadsBusyError(
        `Partner Center certificate fetch refused: ${this.downloads} downloads already running`,
      );
    }
    this.downloads++;
    try {
      return await this.fetchCertificate(url);
    } catch (error) {
      if (error instanceof CertificateUnavailableError) throw error;
      throw new CertificateUnavailableError(
        `Partner Center certificate fetch failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      this.downloads--;
    }
  }

  /** Key type and subject organisation of the signing certificate. */
  private assertLeaf(certificate: X509Certificate): void {
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

function parseCertificates(bytes: Buffer, source: string): X509Certificate[] {
  try {
    return certificatesIn(bytes);
  } catch {
    throw new SignatureError(
      'untrusted_certificate',
      `${source} did not serve an X.509 certificate`,
    );
  }
}
