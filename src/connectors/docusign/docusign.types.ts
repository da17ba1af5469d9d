export interface CreateEnvelopeInput {
  dealId: string;
  emailSubject: string;
  signer: { email: string; name: string };
  /** Prefilled text tabs matched by tabLabel in the template (merge fields). */
  textTabs: Record<string, string>;
}

export interface EnvelopeView {
  envelopeId: string;
  status: string;
  /** Value of the envelope custom field closeloop_deal_id, when present. */
  dealId?: string;
}
