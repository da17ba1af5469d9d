/** What the hub asks of an e-signature tool: one envelope per deal from the configured template. */
export interface CreateEnvelopeInput {
  dealId: string;
  /**
   * The contract row the envelope is made for (unguessable): carried by the envelope so the hub
   * knows its own envelope from a foreign one that merely names the deal (issue 12).
   */
  contractId: string;
  emailSubject: string;
  signer: { email: string; name: string };
  /** Prefilled text fields of the template, by label (merge fields). */
  textTabs: Record<string, string>;
}

export interface EnvelopeView {
  envelopeId: string;
  status: string;
  /** The deal the envelope carries (its custom field), when present. */
  dealId?: string;
  /** The contract it was made for (its custom field), when present. */
  contractId?: string;
}

/**
 * The documents of a signed envelope the hub hands on (the 確定報告 attachment when there is no
 * invoice, dispute evidence): `combined` is every document as one PDF with the certificate of
 * completion appended; `certificate` is the certificate of completion (締結証明書) alone.
 */
export const ENVELOPE_DOCUMENT_KINDS = ['combined', 'certificate'] as const;
export type EnvelopeDocumentKind = (typeof ENVELOPE_DOCUMENT_KINDS)[number];

/**
 * The e-signature port (DocuSign: src/connectors/docusign). The tool has no idempotency keys, so
 * an envelope made by an attempt whose outcome is unknown is found again by its deal before
 * creating another. Calls throw TransientError / PermanentError as the spine expects.
 */
export abstract class ESignaturePort {
  abstract readonly provider: string;
  abstract createEnvelope(input: CreateEnvelopeInput): Promise<EnvelopeView>;
  /** The newest envelope the hub made for this deal's contract since `since` (never a foreign one). */
  abstract findEnvelopeByDealId(
    dealId: string,
    contractId: string,
    since: Date,
  ): Promise<EnvelopeView | null>;
  /** The envelope's document as PDF bytes, exactly as the tool served them. */
  abstract downloadDocument(envelopeId: string, kind: EnvelopeDocumentKind): Promise<Buffer>;
}
