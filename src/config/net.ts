// Small, dependency-free parsers for the address forms the config accepts.
import { isIP } from 'node:net';

export interface Cidr {
  family: 4 | 6;
  address: string;
  prefix: number;
  text: string;
}

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

export function isDnsName(s: string): boolean {
  return DNS_NAME.test(s);
}

export function parsePort(s: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** Splits "host:port", "[v6]:port", "host" or "[v6]". Returns an error text on failure. */
export function splitHostPort(s: string): { host: string; port?: string } | string {
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) return 'unclosed "[" in IPv6 address';
    const host = s.slice(1, end);
    const rest = s.slice(end + 1);
    if (rest === '') return { host };
    if (!rest.startsWith(':')) return `unexpected "${rest}" after "]"`;
    return { host, port: rest.slice(1) };
  }
  const i = s.indexOf(':');
  if (i < 0) return { host: s };
  if (s.indexOf(':', i + 1) >= 0) return 'an IPv6 address with a port must be written as [addr]:port';
  return { host: s.slice(0, i), port: s.slice(i + 1) };
}

export function isIn127(ip: string): boolean {
  return isIP(ip) === 4 && ip.startsWith('127.');
}

export function parseCidr(s: string): Cidr | string {
  const slash = s.indexOf('/');
  const address = slash < 0 ? s : s.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6) return `"${address}" is not an IPv4 or IPv6 address`;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) return `prefix length "${p}" must be 0-${max}`;
    prefix = Number(p);
  }
  return { family, address, prefix, text: `${address}/${prefix}` };
}
