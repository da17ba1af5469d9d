/**
 * Shared types for the inbound webhook signature verifiers (CONTRACT §3).
 * The verifiers are framework-free: controllers map `SignatureError` to 401 and
 * `CertificateUnavailableError` to 503; any other error is a bug or a misconfiguration (500).
 */

/** Request headers as Fastify exposes them (names lower-cased). */
export type HeaderBag = Record<string, string | string[] | undefined>;

/** Why a delivery was rejected; also the `reason` label of the rejection metric. */
export type SignatureFailure =
  'missing_signature' | 'bad_signature' | 'stale_timestamp' | 'untrusted_certificate';

/** The delivery is not authentic (or too old). The message is a short explanation, never a secret. */
export class SignatureError extends Error {
  override readonly name = 'SignatureError';

  constructor(
    readonly reason: SignatureFailure,
    message: string,
  ) {
    super(message);
  }
}

/** Transient: the signing certificate could not be fetched, so the caller answers 503 and the provider retries. */
export class CertificateUnavailableError extends Error {
  override readonly name = 'CertificateUnavailableError';
}
