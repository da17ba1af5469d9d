import { trustProxyOption } from './trust-proxy';

describe('trustProxyOption', () => {
  it('keeps off as off and proxy addresses as the list Fastify checks', () => {
    expect(trustProxyOption(false)).toBe(false);
    expect(trustProxyOption(['10.0.0.0/8', 'loopback'])).toEqual(['10.0.0.0/8', 'loopback']);
  });

  it('turns a hop count into trust in the nearest that many addresses', () => {
    const trust = trustProxyOption(2) as (address: string, hop: number) => boolean;
    expect([0, 1, 2, 3].map((hop) => trust('203.0.113.9', hop))).toEqual([
      true,
      true,
      false,
      false,
    ]);
  });
});
