// Addresses in the exact spelling iptables-save prints, so generated rules can
// be compared with the kernel's view line by line. iptables masks the host
// bits and prints IPv6 the way glibc's inet_ntop does.
import type { Cidr } from '../config/model.js';

export function canonicalCidr(c: Cidr): string {
  return c.family === 4 ? `${maskV4(c.address, c.prefix)}/${c.prefix}` : `${formatV6(maskV6(parseV6(c.address), c.prefix))}/${c.prefix}`;
}

function maskV4(ip: string, prefix: number): string {
  const n = ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const mask = prefix === 0 ? 0 : Number((0xffffffffn << BigInt(32 - prefix)) & 0xffffffffn);
  const m = (n & mask) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 0xff).join('.');
}

/** Eight 16-bit groups from a valid IPv6 literal (embedded IPv4 allowed). */
export function parseV6(ip: string): number[] {
  let text = ip;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const [head = '', rest] = text.split('::');
  if (rest === undefined) return groups(head);
  const left = groups(head);
  const right = groups(rest);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function maskV6(groups: number[], prefix: number): number[] {
  return groups.map((g, i) => {
    const bits = Math.max(0, Math.min(16, prefix - i * 16));
    return bits === 0 ? 0 : g & ((0xffff << (16 - bits)) & 0xffff);
  });
}

/** inet_ntop: compress the longest run (>= 2) of zero groups, first one wins. */
export function formatV6(g: number[]): string {
  let best = { base: -1, len: 0 };
  let cur = { base: -1, len: 0 };
  g.forEach((v, i) => {
    if (v === 0) {
      cur = cur.base < 0 ? { base: i, len: 1 } : { base: cur.base, len: cur.len + 1 };
      if (cur.len > best.len) best = cur;
    } else cur = { base: -1, len: 0 };
  });
  if (best.len < 2) best = { base: -1, len: 0 };
  // IPv4-compatible and IPv4-mapped addresses end in dotted quad.
  const six = g[5] ?? 0;
  if (best.base === 0 && (best.len === 6 || (best.len === 5 && six === 0xffff))) {
    const a = g[6] ?? 0;
    const b = g[7] ?? 0;
    const quad = `${a >> 8}.${a & 0xff}.${b >> 8}.${b & 0xff}`;
    return best.len === 6 ? `::${quad}` : `::ffff:${quad}`;
  }
  const out: string[] = [];
  for (let i = 0; i < 8; i++) {
    if (i === best.base) {
      out.push(i === 0 ? ':' : '');
      i += best.len - 1;
      if (i === 7) out.push('');
      continue;
    }
    out.push((g[i] ?? 0).toString(16));
  }
  return out.join(':');
}

/** Whether `ip` (same family as the CIDR) lies inside it. */
export function cidrContains(c: Cidr, ip: string): boolean {
  if (ip.includes(':') !== (c.family === 6)) return false;
  const bits = (addr: string): string =>
    c.family === 4
      ? addr
          .split('.')
          .map((o) => Number(o).toString(2).padStart(8, '0'))
          .join('')
      : parseV6(addr)
          .map((g) => g.toString(2).padStart(16, '0'))
          .join('');
  return bits(ip).slice(0, c.prefix) === bits(c.address).slice(0, c.prefix);
}
