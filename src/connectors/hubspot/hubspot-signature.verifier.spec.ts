import {
  HUBSPOT_MAX_AGE_MS,
  hubspotRequestUri,
  hubspotSignatureV3,
  verifyHubspotSignatureV3,
} from './hubspot-signature.verifier';
import { SignatureError } from '../../ports/webhook-door.port';

const clientSecret = 'hs-client-secret';
const publicBaseUrl = 'https://hub.example.com/closeloop/';
const timestamp = '1700000000000';
const now = 1700000000000 + 1000;
const body = Buffer.from('[{"eventId":1,"subscriptionType":"deal.creation"}]');

// Computed independently with:
// printf '%s' 'POSThttps://hub.example.com/closeloop/webhooks/hubspot?portal=123&at=a@b:c[{"eventId":1,
//   "subscriptionType":"deal.creation"}]1700000000000' | openssl dgst -sha256 -hmac hs-client-secret -binary | base64
const VECTOR = 'OmHOtTmYJMKJlNsxZcQiv2R3GN75mN7v1qr1uO/b78Q=';
const VECTOR_URL = '/webhooks/hubspot?portal=123&at=a%40b%3ac';
// ... and over 'POSThttps://hub.example.com/closeloop/webhooks/hubspot/a%20b?q=x/y%20z;(1)[]1700000000000'
const VECTOR_2 = '3D38E/9klKMUS6oGmLSuwUvw0duuy8OQezc9v1O3ueA=';
const VECTOR_2_URL = '/webhooks/hubspot/a%20b?q=x%2Fy%20z%3B%281%29';

function verify(overrides: Partial<Parameters<typeof verifyHubspotSignatureV3>[0]> = {}) {
  return verifyHubspotSignatureV3({
    rawBody: body,
    headers: { 'x-hubspot-signature-v3': VECTOR, 'x-hubspot-request-timestamp': timestamp },
    method: 'POST',
    publicBaseUrl,
    requestUrl: VECTOR_URL,
    clientSecret,
    now,
    ...overrides,
  });
}

function reasonOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof SignatureError) return error.reason;
    throw error;
  }
  return undefined;
}

describe('hubspotRequestUri', () => {
  it('joins the public base URL (with path prefix) and the request URL', () => {
    expect(hubspotRequestUri('https://h.example/pre//', '/webhooks/hubspot')).toBe(
      'https://h.example/pre/webhooks/hubspot',
    );
  });

  it('decodes exactly the listed escapes, in either case, and nothing else', () => {
    const all = '%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B%3a%2f';
    expect(hubspotRequestUri('https://h', `/p?x=${all}`)).toBe("https://h/p?x=:/?@!$'()*,;:/");
    expect(hubspotRequestUri('https://h', '/p?x=%20%25%2B%3D%26%5B%253A')).toBe(
      'https://h/p?x=%20%25%2B%3D%26%5B%253A',
    );
  });
});

describe('verifyHubspotSignatureV3', () => {
  it('matches the independently computed vector (decodes %40 and lower-case %3a)', () => {
    expect(
      hubspotSignatureV3({
        method: 'POST',
        publicBaseUrl,
        requestUrl: VECTOR_URL,
        rawBody: body,
        timestamp,
        clientSecret,
      }),
    ).toBe(VECTOR);
    expect(() => verify()).not.toThrow();
  });

  it('decodes %2F %3B %28 %29 but keeps %20 as received', () => {
    const headers = {
      'x-hubspot-signature-v3': VECTOR_2,
      'x-hubspot-request-timestamp': timestamp,
    };
    expect(() =>
      verify({ headers, requestUrl: VECTOR_2_URL, rawBody: Buffer.from('[]') }),
    ).not.toThrow();
    // Decoding %20 too would sign a different URI.
    const decodedSpaces = VECTOR_2_URL.replace(/%20/g, ' ');
    expect(
      reasonOf(() => verify({ headers, requestUrl: decodedSpaces, rawBody: Buffer.from('[]') })),
    ).toBe('bad_signature');
  });

  it('rejects a different public URL, method, body or secret', () => {
    expect(reasonOf(() => verify({ publicBaseUrl: 'https://hub.example.com/' }))).toBe(
      'bad_signature',
    );
    expect(reasonOf(() => verify({ method: 'PUT' }))).toBe('bad_signature');
    expect(reasonOf(() => verify({ rawBody: Buffer.from(`${body.toString()} `) }))).toBe(
      'bad_signature',
    );
    expect(reasonOf(() => verify({ clientSecret: 'other' }))).toBe('bad_signature');
  });

  it('rejects a timestamp older than 5 minutes and accepts one just inside', () => {
    expect(() => verify({ now: 1700000000000 + HUBSPOT_MAX_AGE_MS })).not.toThrow();
    expect(reasonOf(() => verify({ now: 1700000000000 + HUBSPOT_MAX_AGE_MS + 1 }))).toBe(
      'stale_timestamp',
    );
  });

  it('rejects a signed timestamp more than 5 minutes in the future (bounded both ways)', () => {
    expect(() => verify({ now: 1700000000000 - HUBSPOT_MAX_AGE_MS })).not.toThrow();
    expect(reasonOf(() => verify({ now: 1700000000000 - HUBSPOT_MAX_AGE_MS - 1 }))).toBe(
      'stale_timestamp',
    );
    expect(reasonOf(() => verify({ now: 0 }))).toBe('stale_timestamp');
  });

  it('rejects a signed but altered timestamp as a bad signature', () => {
    const headers = {
      'x-hubspot-signature-v3': VECTOR,
      'x-hubspot-request-timestamp': '1700000000001',
    };
    expect(reasonOf(() => verify({ headers }))).toBe('bad_signature');
  });

  it('reports missing headers and malformed timestamps', () => {
    expect(reasonOf(() => verify({ headers: { 'x-hubspot-signature-v3': VECTOR } }))).toBe(
      'missing_signature',
    );
    expect(reasonOf(() => verify({ headers: { 'x-hubspot-request-timestamp': timestamp } }))).toBe(
      'missing_signature',
    );
    const headers = {
      'x-hubspot-signature-v3': VECTOR,
      'x-hubspot-request-timestamp': '1700000000000.5',
    };
    expect(reasonOf(() => verify({ headers }))).toBe('bad_signature');
  });
});
