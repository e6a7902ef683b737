// Field-level address rules, used by the schema (so they are reported with
// every other field error) and by normalization (to parse once validated).
import { isDnsName, isIn127, isIP, parseCidr, parsePort, splitHostPort, type Cidr } from './net.js';

export type Parsed<T> = T | { error: string };
export const isError = <T>(p: Parsed<T>): p is { error: string } => typeof p === 'object' && p !== null && 'error' in p;

export function parseListen(value: string): Parsed<{ ip: string; port?: number }> {
  const hp = splitHostPort(value);
  if (typeof hp === 'string') return { error: `must be "127.x.y.z:port" or "127.x.y.z": ${hp}` };
  if (!isIn127(hp.host)) return { error: 'listen address must be an IPv4 address in 127.0.0.0/8, so only the pod can reach it' };
  if (hp.port === undefined) return { ip: hp.host };
  const port = parsePort(hp.port);
  return port === undefined ? { error: 'port must be in 1-65535' } : { ip: hp.host, port };
}

export function parseRemote(value: string): Parsed<{ host: string; port?: number }> {
  const hp = splitHostPort(value);
  if (typeof hp === 'string') return { error: `must be "host:port" or "host": ${hp}` };
  if (isIP(hp.host) === 0 && !isDnsName(hp.host)) return { error: 'host must be a DNS name or an IP address' };
  if (hp.port === undefined) return { host: hp.host };
  const port = parsePort(hp.port);
  return port === undefined ? { error: 'port must be in 1-65535' } : { host: hp.host, port };
}

export function parseLoopback(value: string): Parsed<{ ip: string; port: number }> {
  const hp = splitHostPort(value);
  const port = typeof hp === 'string' || hp.port === undefined ? undefined : parsePort(hp.port);
  if (typeof hp === 'string' || port === undefined || isIP(hp.host) === 0) return { error: 'must be "ip:port" (for example 127.0.0.1:15020)' };
  if (!(isIn127(hp.host) || hp.host === '::1'))
    return { error: 'must be a loopback address (127.0.0.0/8 or ::1); meshlet never exposes admin or debug endpoints' };
  return { ip: hp.host, port };
}

export function parseCidrField(value: string): Parsed<Cidr> {
  const c = parseCidr(value);
  return typeof c === 'string' ? { error: `must be a CIDR like 198.18.0.0/15 or 2001:db8::/32: ${c}` } : c;
}

/** Unwraps a value already checked by the schema. */
export function must<T>(p: Parsed<T>): T {
  if (isError(p)) throw new Error(`internal: unvalidated value: ${p.error}`);
  return p;
}
