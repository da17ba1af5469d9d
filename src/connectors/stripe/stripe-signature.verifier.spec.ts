import Stripe from 'stripe';

import { SignatureError } from '../../ports/webhook-door.port';
import { STRIPE_TOLERANCE_SECONDS, verifyStripeSignature } from './stripe-signature.verifier';

const secret = 'whsec_test_secret';
const payload = '{"id":"evt_1","object":"event","type":"invoice.paid"}';
const body = Buffer.from(payload);
const t = 1700000000;
const now = t * 1000;
const header = (opts: { secret?: string; timestamp?: number; payload?: string } = {}) =>
  Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: t, ...opts });

function reasonOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof SignatureError) return error.reason;
    throw error;
  }
  return undefined;
}

describe('verifyStripeSignature', () => {
  it('accepts a header from generateTestHeaderString', () => {
    expect(() =>
      verifyStripeSignature(body, { 'stripe-signature': header() }, secret, now),
    ).not.toThrow();
  });

  it('accepts during rotation when the second v1 entry is the valid one (v0 ignored)', () => {
    const valid = header().split(',')[1];
    const stale = header({ secret: 'whsec_old' }).split(',')[1];
    const rotated = `t=${t},${stale},${valid},v0=deadbeef`;
    expect(() =>
      verifyStripeSignature(body, { 'stripe-signature': rotated }, secret, now),
    ).not.toThrow();
  });

  it('rejects a wrong secret, a tampered body and a v0-only header', () => {
    const headers = { 'stripe-signature': header({ secret: 'whsec_other' }) };
    expect(reasonOf(() => verifyStripeSignature(body, headers, secret, now))).toBe('bad_signature');
    const tampered = Buffer.from(payload.replace('evt_1', 'evt_2'));
    expect(
      reasonOf(() =>
        verifyStripeSignature(tampered, { 'stripe-signature': header() }, secret, now),
      ),
    ).toBe('bad_signature');
    const v0 = header().replace('v1=', 'v0=');
    expect(
      reasonOf(() => verifyStripeSignature(body, { 'stripe-signature': v0 }, secret, now)),
    ).toBe('bad_signature');
  });

  it('maps malformed headers to bad_signature', () => {
    for (const value of ['garbage', `t=${t}`, `t=${t},v1=`, 'v1=abc']) {
      expect(
        reasonOf(() => verifyStripeSignature(body, { 'stripe-signature': value }, secret, now)),
      ).toBe('bad_signature');
    }
  });

  it('rejects timestamps more than 300 s old or ahead (the SDK checks only the age; we bound both)', () => {
    const headers = { 'stripe-signature': header() };
    expect(() =>
      verifyStripeSignature(body, headers, secret, now + STRIPE_TOLERANCE_SECONDS * 1000),
    ).not.toThrow();
    expect(reasonOf(() => verifyStripeSignature(body, headers, secret, now + 301_000))).toBe(
      'stale_timestamp',
    );
    expect(() => verifyStripeSignature(body, headers, secret, now - 300_000)).not.toThrow();
    expect(reasonOf(() => verifyStripeSignature(body, headers, secret, now - 301_000))).toBe(
      'stale_timestamp',
    );
    expect(reasonOf(() => verifyStripeSignature(body, headers, secret, now - 3_600_000))).toBe(
      'stale_timestamp',
    );
  });

  it('rejects a timestamp that is not a number, even correctly signed (the SDK would let it never expire)', () => {
    const hmac = (ts: string) =>
      Stripe.createNodeCryptoProvider().computeHMACSignature(`${ts}.${payload}`, secret);
    for (const ts of ['NaN', 'Infinity', 'abc', '']) {
      const signed = { 'stripe-signature': `t=${ts},v1=${hmac(ts)}` };
      expect(reasonOf(() => verifyStripeSignature(body, signed, secret, now))).toBe(
        'bad_signature',
      );
    }
  });

  it('reports a missing header', () => {
    expect(reasonOf(() => verifyStripeSignature(body, {}, secret, now))).toBe('missing_signature');
    expect(
      reasonOf(() => verifyStripeSignature(body, { 'stripe-signature': '' }, secret, now)),
    ).toBe('missing_signature');
  });

  it('refuses to run without a secret', () => {
    expect(() => verifyStripeSignature(body, { 'stripe-signature': header() }, ' ', now)).toThrow(
      /No Stripe webhook secret/,
    );
  });
});
