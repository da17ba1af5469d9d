import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Every certificate of a PEM text, in order; throws when a block is not an X.509 certificate. */
export function pemCertificates(text: string): X509Certificate[] {
  return (text.match(PEM_CERTIFICATE) ?? []).map((block) => new X509Certificate(block));
}

/**
 * The certificates of a downloaded file: one DER certificate, or every certificate of a PEM
 * bundle (leaf first, as TLS servers and CA bundles list them). Throws when it holds none.
 */
export function certificatesIn(bytes: Buffer): X509Certificate[] {
  const text = bytes.toString('latin1');
  if (text.includes('-----BEGIN CERTIFICATE-----')) {
    const certificates = pemCertificates(text);
    if (certificates.length === 0) throw new Error('no PEM certificate');
    return certificates;
  }
  return [new X509Certificate(bytes)];
}

/**
 * Reads a PEM file of certificates (a CA file such as PARTNER_CENTER_CA_FILE or
 * NODE_EXTRA_CA_CERTS). Throws an Error whose message says in one line why the file is unusable.
 */
export function readPemCertificateFile(path: string): X509Certificate[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`cannot read ${path}${code ? ` (${code})` : ''}`);
  }
  let certificates: X509Certificate[];
  try {
    certificates = pemCertificates(text);
  } catch {
    throw new Error(`${path} holds a PEM block that is not an X.509 certificate`);
  }
  if (certificates.length === 0) throw new Error(`${path} holds no PEM certificate`);
  return certificates;
}
