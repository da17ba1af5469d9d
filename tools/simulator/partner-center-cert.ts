import { X509Certificate, constants, generateKeyPairSync, sign } from 'node:crypto';

import { generate } from 'selfsigned';

/**
 * A stand-in for Microsoft's Partner Center notification certificate [PC-WH], for tests, the demo
 * and the provider simulator.
 */
export interface PartnerCenterTestCert {
  /** PKCS#1 PEM private key, for {@link signPartnerCenterBody}. */
  privateKeyPem: string;
  certPem: string;
  /** The same certificate in DER form (what Microsoft's `.cer` URL serves). */
  certDer: Buffer;
}

export interface PartnerCenterTestCertOptions {
  /** Validity in days counted from now (default 365; must be positive: selfsigned verifies what it emits). */
  days?: number;
  /** Start of validity (default now). */
  notBefore?: Date;
  /** Subject organisation (default Microsoft Corporation). */
  organization?: string;
}

/**
 * Generates an RSA-2048 key pair (with node:crypto, much faster than node-forge) and a self-signed
 * SHA-256 certificate with subject `O=Microsoft Corporation, CN=pcnotifications-dispatch.microsoft.com`.
 * Uses selfsigned@2's synchronous `generate(attrs, options)`; `keyPair` is an option it reads
 * (see its README) but omits from its typings.
 */
export function createPartnerCenterTestCert(
  options: PartnerCenterTestCertOptions = {},
): PartnerCenterTestCert {
  if (options.days !== undefined && options.days <= 0) throw new Error('days must be positive');
  const keyPair = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  const selfsignedOptions: Parameters<typeof generate>[1] & {
    keyPair: { publicKey: string; privateKey: string };
  } = {
    days: options.days ?? 365,
    notBeforeDate: options.notBefore ?? new Date(),
    algorithm: 'sha256',
    keyPair,
  };
  const pems = generate(
    [
      { name: 'organizationName', value: options.organization ?? 'Microsoft Corporation' },
      { name: 'commonName', value: 'pcnotifications-dispatch.microsoft.com' },
    ],
    selfsignedOptions,
  );
  return {
    privateKeyPem: keyPair.privateKey,
    certPem: pems.cert,
    certDer: new X509Certificate(pems.cert).raw,
  };
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
