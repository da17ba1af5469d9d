import { decodeBase64, headerValue, safeEqual } from './header.util';

describe('headerValue', () => {
  it('returns the value of a lower-cased header', () => {
    expect(headerValue({ 'webhook-id': 'msg_1' }, 'Webhook-Id')).toBe('msg_1');
  });

  it('returns the first value of a repeated header', () => {
    expect(headerValue({ 'x-a': ['one', 'two'] }, 'x-a')).toBe('one');
  });

  it('finds a header in a hand-built bag with mixed-case names', () => {
    expect(headerValue({ 'Stripe-Signature': 't=1' }, 'stripe-signature')).toBe('t=1');
  });

  it('returns undefined for an absent header', () => {
    expect(headerValue({}, 'x-a')).toBeUndefined();
  });
});

describe('safeEqual', () => {
  it('compares equal-length buffers and rejects different lengths without throwing', () => {
    expect(safeEqual(Buffer.from('abc'), Buffer.from('abc'))).toBe(true);
    expect(safeEqual(Buffer.from('abc'), Buffer.from('abd'))).toBe(false);
    expect(safeEqual(Buffer.from('abc'), Buffer.from('abcd'))).toBe(false);
  });
});

describe('decodeBase64', () => {
  it('decodes base64 and refuses anything else', () => {
    expect(decodeBase64(' AQID ')).toEqual(Buffer.from([1, 2, 3]));
    expect(decodeBase64('not base64!')).toBeUndefined();
    expect(decodeBase64('')).toBeUndefined();
  });
});
