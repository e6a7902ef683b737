// Small, dependency-free parsers for the address forms the config accepts.
const { isIPv4 } = process.getBuiltinModule('node:net');

/**
 * net.isIP, without node's IPv6 regular expression: 4 for an IPv4 address in
 * dotted decimal, 6 for an IPv6 address (with an optional %zone), 0 otherwise,
 * exactly as node answers (test/config/net.test.ts compares the two on a
 * large generated corpus). Node's IPv6 expression is large, and V8 compiles it
 * to machine code on its second use: about 5 ms, in every start whose config
 * holds an IPv6 literal, before Envoy is spawned. IPv4 stays with node: its
 * expression is small, and as machine code it beats a JavaScript loop in
 * meshlet's interpreter-only V8, which counts in a 2,000-entry config. A
 * string without a ":" cannot be IPv6.
 */
export function isIP(s: string): 0 | 4 | 6 {
  if (isIPv4(s)) return 4;
  return s.includes(':') && isIPv6(s) ? 6 : 0;
}

const ZONE = /^[0-9a-zA-Z.:-]+$/;

/**
 * Up to eight groups of 1-4 hex digits separated by ":", one "::" standing
 * for at least one group of zeros, the last 32 bits possibly in dotted
 * decimal, then optionally "%" and a zone of letters, digits, "-", "." or ":".
 */
export function isIPv6(s: string): boolean {
  const pct = s.indexOf('%');
  if (pct >= 0 && !ZONE.test(s.slice(pct + 1))) return false;
  const addr = pct >= 0 ? s.slice(0, pct) : s;
  const gap = addr.indexOf('::');
  if (gap >= 0 && addr.indexOf('::', gap + 1) >= 0) return false;
  const head = gap >= 0 ? addr.slice(0, gap) : addr;
  const tail = gap >= 0 ? addr.slice(gap + 2) : '';
  // Dotted decimal may end the address, and is allowed nowhere else (so not before a "::").
  const headGroups = countGroups(head, gap < 0);
  const tailGroups = gap >= 0 ? countGroups(tail, true) : 0;
  if (headGroups < 0 || tailGroups < 0) return false;
  const groups = headGroups + tailGroups;
  return gap >= 0 ? groups <= 7 : groups === 8;
}

/** Groups in "a:b:c" (a dotted-decimal last part counts two; allowed only when it ends the address); -1 if malformed. */
function countGroups(part: string, endsAddress: boolean): number {
  if (part === '') return 0;
  let groups = 0;
  let start = 0;
  for (let i = 0; i <= part.length; i++) {
    if (i < part.length && part.charCodeAt(i) !== 58) continue;
    const last = i === part.length;
    if (last && endsAddress && part.includes('.', start)) {
      if (!isIPv4(part.slice(start))) return -1;
      groups += 2;
    } else {
      if (!isHexGroup(part, start, i)) return -1;
      groups += 1;
    }
    start = i + 1;
  }
  return groups;
}

function isHexGroup(s: string, from: number, to: number): boolean {
  const len = to - from;
  if (len < 1 || len > 4) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

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
