import { createHmac } from 'node:crypto';

import { verifyDocusignSignature } from './docusign-signature.verifier';
import { SignatureError } from '../../ports/webhook-door.port';

const body = Buffer.from(
  '{"event":"envelope-completed","data":{"envelopeId":"93be49ab-0000-0000-0000-000000000000"}}\r\n',
);
// Computed independently: openssl dgst -sha256 -hmac ds-key-2 -binary body.json | base64
const VECTOR = '1v2dFEEcHrIBC6AdpLUe5qz6MxgFeyEPO0UlaqOuWnE=';
const sign = (key: string, data: Buffer = body) =>
  createHmac('sha256', key).update(data).digest('base64');

function reasonOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof SignatureError) return error.reason;
    throw error;
  }
  return undefined;
}

describe('verifyDocusignSignature', () => {
  it('accepts the independently computed vector', () => {
    expect(sign('ds-key-2')).toBe(VECTOR);
    expect(() =>
      verifyDocusignSignature(body, { 'x-docusign-signature-1': VECTOR }, ['ds-key-2']),
    ).not.toThrow();
  });

  it('accepts when any header matches any key (key rotation, N > 9)', () => {
    const headers = {
      'x-docusign-signature-1': sign('old-key'),
      'x-docusign-signature-12': sign('new-key'),
      'x-authorization-digest': 'HMACSHA256',
    };
    expect(() => verifyDocusignSignature(body, headers, ['other', 'new-key'])).not.toThrow();
  });

  it('rejects a signature made with an unknown key', () => {
    const headers = { 'x-docusign-signature-1': sign('old-key') };
    expect(reasonOf(() => verifyDocusignSignature(body, headers, ['new-key']))).toBe(
      'bad_signature',
    );
  });

  it('rejects a tampered body (one byte of the line ending removed)', () => {
    const headers = { 'x-docusign-signature-1': VECTOR };
    const tampered = body.subarray(0, body.length - 1);
    expect(reasonOf(() => verifyDocusignSignature(tampered, headers, ['ds-key-2']))).toBe(
      'bad_signature',
    );
  });

  it('rejects garbage and truncated signatures without throwing anything else', () => {
    for (const value of ['%%%', VECTOR.slice(0, 20), `${VECTOR}AAAA`]) {
      const headers = { 'x-docusign-signature-1': value };
      expect(reasonOf(() => verifyDocusignSignature(body, headers, ['ds-key-2']))).toBe(
        'bad_signature',
      );
    }
  });

  it('reports a missing signature when no X-DocuSign-Signature-N header is present', () => {
    const headers = { 'x-docusign-signature': VECTOR, 'x-docusign-signature-1': '' };
    expect(reasonOf(() => verifyDocusignSignature(body, headers, ['ds-key-2']))).toBe(
      'missing_signature',
    );
  });

  it('refuses to run without a configured key', () => {
    expect(() => verifyDocusignSignature(body, { 'x-docusign-signature-1': VECTOR }, [''])).toThrow(
      /No DocuSign Connect HMAC key/,
    );
  });
});
