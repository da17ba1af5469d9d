import { REDACTED, redactHeaders, redactText } from './redact';

/**
 * Header sets as the providers and the proxies in front of the hub send them (provider-facts §1.2,
 * §2.1, §3.1, §4.3, §5), as Node hands them over: lower-case names.
 */
const PROXY = {
  host: 'closeloop-internal:3000',
  'x-forwarded-for': '203.0.113.9, 10.0.0.2',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'hub.example.com',
  'x-real-ip': '203.0.113.9',
  forwarded: 'for=203.0.113.9;proto=https',
  'cf-connecting-ip': '203.0.113.9',
  'cf-access-jwt-assertion': 'eyJhbGciOiJSUzI1NiJ9.eyJlbWFpbCI6ImFAYi5jIn0.c2ln',
  'proxy-authorization': 'Basic dXNlcjpwYXNz',
  'x-request-id': 'req-7',
};

const PROVIDERS: Record<string, { headers: Record<string, string>; kept: string[] }> = {
  docusign: {
    headers: {
      'content-type': 'application/json',
      'user-agent': 'DocuSign Connect',
      'x-authorization-digest': 'HMACSHA256',
      'x-docusign-signature-1': 'pe5ngOqu5TzGRxuzjNsbWkGQH0dpsvyWwlDT3uTtkGs=',
      'x-docusign-signature-2': 'Fj2Ugq4pOiAgwoYu4JH3Xm3zYBRdcs0ve0BkoXOiA0o=',
    },
    kept: ['content-type', 'user-agent', 'x-authorization-digest'],
  },
  hubspot: {
    headers: {
      'content-type': 'application/json',
      'user-agent': 'HubSpot Connect 2.0 (http://dev.hubspot.com/)',
      'x-hubspot-signature': 'b2ba15c6e3b9d5f8f1cf6ec0c0d0e6d7b8a1f0e2c3d4e5f6a7b8c9d0e1f2a3b4',
      'x-hubspot-signature-version': 'v1',
      'x-hubspot-signature-v3': 'hYp3rJ0e4zBlrWg3X2s9yQZrS7mX0hVgB9WzL1sPp6E=',
      'x-hubspot-request-timestamp': '1795400000000',
    },
    kept: [
      'content-type',
      'user-agent',
      'x-hubspot-signature-version',
      'x-hubspot-request-timestamp',
    ],
  },
  stripe: {
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
      'stripe-signature':
        't=1795400000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd',
    },
    kept: ['content-type', 'user-agent'],
  },
  'standard webhooks': {
    headers: {
      'content-type': 'application/json',
      'webhook-id': 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W',
      'webhook-timestamp': '1795400000',
      'webhook-signature': 'v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=',
    },
    kept: ['content-type', 'webhook-id', 'webhook-timestamp'],
  },
  'partner-center': {
    headers: {
      'content-type': 'application/json; charset=utf-8',
      authorization: 'Signature MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwCq',
      'x-ms-certificate-url':
        'https://3psostorageacct.blob.core.windows.net/cert/pcnotifications-dispatch.microsoft.com.cer',
      'x-ms-signature-algorithm': 'rsa-sha256',
    },
    kept: ['content-type', 'x-ms-certificate-url', 'x-ms-signature-algorithm'],
  },
};

describe('redactHeaders: an allow-list, checked against real provider header sets', () => {
  it.each(Object.entries(PROVIDERS))(
    '%s behind a proxy: what debugs a delivery is kept, everything else is redacted',
    (_provider, { headers, kept }) => {
      const stored = redactHeaders({ ...headers, ...PROXY });
      const keptNow = Object.keys(stored).filter((name) => stored[name] !== REDACTED);
      expect(keptNow.sort()).toEqual([...kept, 'x-request-id'].sort());
      for (const name of kept) expect(stored[name]).toBe(headers[name]);
      // Names stay (an operator sees which headers came); no signature, credential or address does.
      expect(Object.keys(stored).sort()).toEqual(Object.keys({ ...headers, ...PROXY }).sort());
      const text = JSON.stringify(stored);
      for (const secret of [
        ...Object.entries(headers)
          .filter(([name]) => !kept.includes(name))
          .map(([, value]) => value),
        '203.0.113.9',
        'eyJhbGciOiJSUzI1NiJ9',
        'dXNlcjpwYXNz',
      ]) {
        expect(text).not.toContain(secret);
      }
    },
  );

  it('a header nobody listed is redacted (allow-list, not deny-list); upper-case names are matched', () => {
    expect(
      redactHeaders({ 'X-Brand-New-Token': 'abc', 'Content-Type': 'application/json' }),
    ).toEqual({ 'x-brand-new-token': REDACTED, 'content-type': 'application/json' });
  });

  it('a kept header with a huge value is cut to 512 characters', () => {
    const stored = redactHeaders({ 'user-agent': 'a'.repeat(10_000) });
    expect((stored['user-agent'] as string).length).toBe(513);
  });
});

describe('redactText: secrets and e-mail addresses in error messages and log lines', () => {
  it.each([
    ['Stripe: No such customer: cus_1 (request by sk_test_51Habcdefghijklmnop)', 'sk_test_51H'],
    ['whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ= is wrong', 'c2VjcmV0'],
    [
      '401 Authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.sig',
      'eyJ0eXAi',
    ],
    [
      'token endpoint said invalid_grant for refresh_token=0.AAAA-secret-refresh&x=1',
      'AAAA-secret',
    ],
    ['{"error":"invalid_client","client_secret":"s3cr3t-value"}', 's3cr3t'],
    ['signer yamada.taro+jp@example.co.jp declined', 'yamada.taro'],
    [
      'header t=1795400000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd',
      '5257a869',
    ],
    ['Partner Center: Signature MIIBIjANBgkqhkiG9w0BAQEF rejected', 'MIIBIjAN'],
  ])('%s', (text, secret) => {
    const out = redactText(text);
    expect(out).not.toContain(secret);
    expect(out).toMatch(/\[redacted\]|\[email\]/);
  });

  it('leaves ordinary operational text alone (ids, amounts, URLs without secrets)', () => {
    const text =
      'HubSpot 429 on GET https://api.hubapi.com/crm/v3/objects/deals/123?properties=amount; invoice in_1Q2w3E4r for ¥1,200,000';
    expect(redactText(text)).toBe(text);
  });
});
