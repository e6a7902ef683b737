// Field rules of the `dns` section and of egress route `names` (docs/dns.md).
// Like addresses.ts, each parser is used by the schema (to report errors with
// every other field error) and by normalization (to parse once validated).
import { isError, type Parsed } from './addresses.js';
import { isDnsName, isIn127, isIP, parsePort, splitHostPort } from './net.js';

export const DNS_DEFAULT_PORT = 53;

/** Where meshlet's DNS server listens: an IPv4 loopback address with a port. */
export function parseDnsAddress(value: string): Parsed<{ ip: string; port: number }> {
  const hp = splitHostPort(value);
  const port = typeof hp === 'string' || hp.port === undefined ? undefined : parsePort(hp.port);
  if (typeof hp === 'string' || port === undefined || isIP(hp.host) === 0) return { error: 'must be "127.x.y.z:port" (for example 127.0.0.1:15053)' };
  if (!isIn127(hp.host)) return { error: 'must be an IPv4 loopback address (127.0.0.0/8); IPv6 queries are sent to [::1] on the same port' };
  return { ip: hp.host, port };
}

/** An upstream resolver: "ip", "ip:port", "[v6]" or "[v6]:port"; the port defaults to 53. */
export function parseUpstream(value: string): Parsed<{ ip: string; port: number }> {
  const hp = splitHostPort(value);
  if (typeof hp === 'string') return { error: `must be "ip", "ip:port" or "[ipv6]:port": ${hp}` };
  if (isIP(hp.host) === 0) return { error: 'must be an IP address: the resolver is dialled before any name can be resolved' };
  if (hp.port === undefined) return { ip: hp.host, port: DNS_DEFAULT_PORT };
  const port = parsePort(hp.port);
  return port === undefined ? { error: 'port must be in 1-65535' } : { ip: hp.host, port };
}

/**
 * A name that resolves to an egress route. Compared case-insensitively and
 * without a trailing dot, so it is normalized to lowercase with no dot.
 */
export function parseRouteName(value: string): Parsed<string> {
  if (value.includes('*')) return { error: 'wildcards are not supported; list each name' };
  const bare = value.endsWith('.') ? value.slice(0, -1) : value;
  if (isIP(bare) !== 0) return { error: 'must be a DNS name, not an IP address' };
  if (!isDnsName(value) || bare === '') return { error: 'must be a DNS name: labels of 1-63 letters, digits or "-", joined by ".", at most 253 characters' };
  return bare.toLowerCase();
}

/** The normalized form of a name that passed parseRouteName, or undefined. */
export function routeNameKey(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const p = parseRouteName(value);
  return isError(p) ? undefined : p;
}
