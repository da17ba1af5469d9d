import { randomBytes } from 'node:crypto';

import { Webhook } from 'standardwebhooks';

import { SignatureError } from '../../ports/webhook-door.port';
import { signStandardWebhook } from '../../common/standard-webhooks';
import {
  STANDARD_WEBHOOKS_TOLERANCE_SECONDS,
  verifyStandardWebhook,
} from './standard-webhooks-signature.verifier';

const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const id = 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W';
const ts = 1700000000;
const now = ts * 1000;
const payload =
  '{"type":"milestone.accepted","data":{"dealId":"cl_deal_1","itemKey":"design","note":"検収済み"}}';
const body = Buffer.from(payload);
/** Reference signature from the `standardwebhooks` package (the spec's JS library). */
const librarySignature = (s = secret, p: string | Buffer = payload, date = new Date(ts * 1000)) =>
  new Webhook(s).sign(id, date, p);
const headers = (signature: string, timestamp = String(ts)) => ({
  'webhook-id': id,
  'webhook-timestamp': timestamp,
  'webhook-signature': signature,
});

function reasonOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof SignatureError) return error.reason;
    throw error;
  }
  return undefined;
}

describe('signStandardWebhook', () => {
  it('produces the same v1 signature as the standardwebhooks library', () => {
    expect(signStandardWebhook(secret, id, ts, payload)).toBe(librarySignature());
    expect(signStandardWebhook(secret, id, ts, body)).toBe(librarySignature());
    const other = `whsec_${randomBytes(32).toString('base64')}`;
    expect(signStandardWebhook(other, 'msg_x', ts + 7, '{}')).toBe(
      new Webhook(other).sign('msg_x', new Date((ts + 7) * 1000), '{}'),
    );
  });

  it('is accepted by the library verifier', () => {
    const fresh = Math.floor(Date.now() / 1000);
    const signature = signStandardWebhook(secret, id, fresh, payload);
    expect(new Webhook(secret).verify(payload, headers(signature, String(fresh)))).toEqual(
      JSON.parse(payload),
    );
  });
});

describe('verifyStandardWebhook', () => {
  it('accepts a library-signed message', () => {
    expect(() =>
      verifyStandardWebhook(body, headers(librarySignature()), secret, now),
    ).not.toThrow();
  });

  it('accepts when any v1 entry matches and skips v1a and unknown versions', () => {
    const valid = librarySignature();
    const list = `v1a,${valid.slice(3)} v1,${librarySignature('whsec_' + randomBytes(24).toString('base64')).slice(3)} ${valid}`;
    expect(() => verifyStandardWebhook(body, headers(list), secret, now)).not.toThrow();
    expect(
      reasonOf(() =>
        verifyStandardWebhook(
          body,
          headers(`v1a,${valid.slice(3)} v2,${valid.slice(3)}`),
          secret,
          now,
        ),
      ),
    ).toBe('bad_signature');
  });

  it('rejects a wrong secret, a tampered body, another id and a re-signed timestamp', () => {
    const other = `whsec_${randomBytes(24).toString('base64')}`;
    expect(
      reasonOf(() => verifyStandardWebhook(body, headers(librarySignature(other)), secret, now)),
    ).toBe('bad_signature');
    const tampered = Buffer.from(payload.replace('design', 'build'));
    expect(
      reasonOf(() => verifyStandardWebhook(tampered, headers(librarySignature()), secret, now)),
    ).toBe('bad_signature');
    const otherId = { ...headers(librarySignature()), 'webhook-id': 'msg_other' };
    expect(reasonOf(() => verifyStandardWebhook(body, otherId, secret, now))).toBe('bad_signature');
    expect(
      reasonOf(() =>
        verifyStandardWebhook(body, headers(librarySignature(), String(ts + 1)), secret, now),
      ),
    ).toBe('bad_signature');
  });

  it('rejects timestamps more than 5 minutes in the past or future, like the library', () => {
    const tol = STANDARD_WEBHOOKS_TOLERANCE_SECONDS * 1000;
    const h = headers(librarySignature());
    expect(() => verifyStandardWebhook(body, h, secret, now + tol)).not.toThrow();
    expect(() => verifyStandardWebhook(body, h, secret, now - tol)).not.toThrow();
    expect(reasonOf(() => verifyStandardWebhook(body, h, secret, now + tol + 1000))).toBe(
      'stale_timestamp',
    );
    expect(reasonOf(() => verifyStandardWebhook(body, h, secret, now - tol - 1000))).toBe(
      'stale_timestamp',
    );
  });

  it('reports missing headers and malformed timestamps', () => {
    const complete = headers(librarySignature());
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const) {
      const partial: Record<string, string> = { ...complete };
      delete partial[name];
      expect(reasonOf(() => verifyStandardWebhook(body, partial, secret, now))).toBe(
        'missing_signature',
      );
    }
    expect(
      reasonOf(() => verifyStandardWebhook(body, headers(librarySignature(), '17e8'), secret, now)),
    ).toBe('bad_signature');
  });

  it('refuses a secret that is not whsec_<base64>', () => {
    expect(() => verifyStandardWebhook(body, headers(librarySignature()), 'whsec_', now)).toThrow(
      /whsec_/,
    );
    expect(() =>
      verifyStandardWebhook(body, headers(librarySignature()), 'whsec_not base64!', now),
    ).toThrow(/whsec_/);
  });
});
