import { Env } from '../config/env.schema';

/** What Fastify's `trustProxy` takes from TRUST_PROXY. */
export type TrustProxy = false | string[] | ((address: string, hop: number) => boolean);

/**
 * Fastify's `trustProxy` for TRUST_PROXY (CONTRACT §2): off, the proxies' addresses/CIDRs (the
 * hops Fastify checks one by one), or a hop count. Fastify 5.12 refuses a bare number (it trusts
 * nothing then, since a count cannot tell a proxy from a client that connects directly), so a
 * count becomes the trust function Express has always used for one: the nearest `hops` addresses,
 * whoever they are. Only right when the port is reachable through those proxies alone (a container
 * network, a private load balancer); otherwise name the proxies' addresses.
 */
export function trustProxyOption(setting: Env['TRUST_PROXY']): TrustProxy {
  if (setting === false || Array.isArray(setting)) return setting;
  const hops = setting;
  return (_address, hop) => hop < hops;
}
