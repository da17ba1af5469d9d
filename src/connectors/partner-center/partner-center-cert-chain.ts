import { X509Certificate } from 'node:crypto';

import { SignatureError } from '../../ports/webhook-door.port';

/** Certificates from the leaf up to and including the trusted root, at most this many links. */
export const MAX_CHAIN_LENGTH = 5;

const untrusted = (message: string) => new SignatureError('untrusted_certificate', message);

/** `CN=…` of a certificate's subject, or the whole subject, for messages. */
export function certificateName(certificate: X509Certificate): string {
  const lines = certificate.subject.split('\n');
  return lines.find((line) => line.startsWith('CN=')) ?? lines.join(', ');
}

/** Whether `now` (epoch ms) lies in the certificate's validity window; an unparsable date fails. */
export function validAt(certificate: X509Certificate, now: number): boolean {
  return now >= Date.parse(certificate.validFrom) && now <= Date.parse(certificate.validTo);
}

/** Throws `untrusted_certificate` naming the first certificate of `chain` that is not valid at `now`. */
export function assertChainValidAt(chain: readonly X509Certificate[], now: number): void {
  const stale = chain.find((certificate) => !validAt(certificate, now));
  if (stale) {
    throw untrusted(
      `Certificate ${certificateName(stale)} is outside its validity window (${stale.validFrom} – ${stale.validTo})`,
    );
  }
}

/**
 * The http(s) "CA Issuers" URLs of a certificate's authorityInfoAccess extension, where its
 * issuer can be downloaded (RFC 5280 §4.2.2.1). Node lists one access description per line and
 * JSON-quotes a value holding special characters.
 */
export function caIssuersUrls(certificate: X509Certificate): string[] {
  const urls: string[] = [];
  for (const line of (certificate.infoAccess ?? '').split('\n')) {
    const match = /^CA Issuers - URI:(.+)$/.exec(line.trim());
    if (!match) continue;
    let value = match[1];
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    if (/^https?:\/\//i.test(value)) urls.push(value);
  }
  return urls;
}

/** The roots a chain must end in, indexed by fingerprint. */
export class TrustAnchors {
  private readonly byFingerprint = new Map<string, X509Certificate>();

  constructor(certificates: Iterable<string | X509Certificate>) {
    for (const c of certificates) {
      const certificate = typeof c === 'string' ? new X509Certificate(c) : c;
      this.byFingerprint.set(certificate.fingerprint256, certificate);
    }
  }

  get size(): number {
    return this.byFingerprint.size;
  }

  /** The anchor that is this very certificate (same SHA-256 fingerprint). */
  same(certificate: X509Certificate): X509Certificate | undefined {
    return this.byFingerprint.get(certificate.fingerprint256);
  }

  all(): Iterable<X509Certificate> {
    return this.byFingerprint.values();
  }
}

/** Whether `parent` issued `child`: names and key ids match and its key verifies the signature. */
function issued(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

export interface ChainInput {
  /** The certificate that signs deliveries. */
  leaf: X509Certificate;
  /** Other certificates that may be intermediates (the rest of a PEM bundle). */
  candidates: readonly X509Certificate[];
  anchors: TrustAnchors;
  /** Epoch ms every certificate of the chain must be valid at. */
  now: number;
  /**
   * Downloads the certificates at a "CA Issuers" URL; called at most once per chain, for the
   * first certificate whose issuer is not at hand. Its errors propagate.
   */
  fetchIssuers: (url: string) => Promise<X509Certificate[]>;
}

/**
 * Builds and verifies the chain from `leaf` to a trust anchor (CONTRACT §3.5, provider-facts
 * §4.3 "verify the chain"): each link is issued by the next (checkIssued and its signature
 * verified with the parent's key), every parent is a CA (basicConstraints cA), every certificate
 * is inside its validity window, and the chain ends in a certificate that is an anchor (same
 * fingerprint) or was issued by one, within {@link MAX_CHAIN_LENGTH} certificates. Issuers come
 * from `candidates`, then from the anchors, then from one authorityInfoAccess download.
 *
 * @returns the chain, leaf first, anchor last
 * @throws SignatureError `untrusted_certificate` saying which link failed
 */
export async function verifyChain(input: ChainInput): Promise<X509Certificate[]> {
  const { anchors, now } = input;
  const chain = [input.leaf];
  let pool = [...input.candidates];
  let downloaded = false;
  for (;;) {
    const current = chain[chain.length - 1];
    assertChainValidAt([current], now);
    if (anchors.same(current)) return chain;
    if (chain.length >= MAX_CHAIN_LENGTH) {
      throw untrusted(`No trusted root within ${MAX_CHAIN_LENGTH} certificates of the leaf`);
    }
    const seen = new Set(chain.map((c) => c.fingerprint256));
    const issuers = [...anchors.all(), ...pool].filter(
      (c) => !seen.has(c.fingerprint256) && issued(current, c),
    );
    // Prefer a usable issuer (a CA valid now); else report why the one found is not usable.
    const parent = issuers.find((c) => c.ca && validAt(c, now));
    if (parent) {
      chain.push(parent);
      continue;
    }
    if (issuers.length > 0) {
      const [bad] = issuers;
      if (!bad.ca) {
        throw untrusted(
          `Issuer ${certificateName(bad)} of ${certificateName(current)} is not a CA certificate`,
        );
      }
      assertChainValidAt([bad], now);
    }
    const urls = downloaded ? [] : caIssuersUrls(current);
    if (urls.length === 0) {
      throw untrusted(
        `Certificate ${certificateName(current)} (issuer ${current.issuer.split('\n').join(', ')}) does not chain to a trusted root`,
      );
    }
    downloaded = true;
    pool = [...pool, ...(await input.fetchIssuers(urls[0]))];
  }
}
