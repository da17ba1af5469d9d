const SECRET_HEADERS = [
  /^authorization$/,
  /^cookie$/,
  /^x-docusign-signature-\d+$/,
  /^x-hubspot-signature/,
  /^stripe-signature$/,
  /^webhook-signature$/,
  /^x-api-key$/,
];

/** Request headers as stored with an event: signatures and credentials replaced by "[redacted]". */
export function redactHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    out[name] = SECRET_HEADERS.some((re) => re.test(name.toLowerCase())) ? '[redacted]' : value;
  }
  return out;
}
