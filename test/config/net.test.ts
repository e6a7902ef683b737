// src/config/net.ts isIP replaces node's net.isIP on meshlet's start path (it
// avoids compiling node's large IPv6 expression). It must answer exactly as
// node does: compared here on hand-picked edge cases and on a generated
// corpus of near-addresses (seeded, so every run checks the same inputs).
import { isIP as nodeIsIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isIP } from '../../src/config/net.js';
import { prng } from '../helpers/prng.js';

function corpus(n: number): string[] {
  const r = prng(20261202);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const hex = (): string => Array.from({ length: 1 + Math.floor(r() * 5) }, () => pick([...'0123456789abcdefABCDEFg'])).join('');
  const octet = (): string => pick(['0', '1', '9', '10', '99', '100', '199', '200', '249', '250', '255', '256', '300', '01', '001', '', '1a']);
  const v4 = (): string => Array.from({ length: pick([3, 4, 4, 4, 4, 5]) }, octet).join('.');
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const kind = r();
    if (kind < 0.2) {
      out.push(v4());
      continue;
    }
    if (kind < 0.25) {
      // Random characters from the alphabet addresses use.
      out.push(Array.from({ length: Math.floor(r() * 24) }, () => pick([...'0123456789abcdefAF:.%-xz'])).join(''));
      continue;
    }
    // Groups, some of them compressed, perhaps a dotted tail, perhaps a zone, perhaps damaged.
    const groups = Array.from({ length: Math.floor(r() * 10) }, hex);
    if (r() < 0.3) groups.push(v4());
    let s = groups.join(':');
    if (r() < 0.6) {
      const at = Math.floor(r() * (s.length + 1));
      s = `${s.slice(0, at)}${pick(['::', '::', ':', ':::'])}${s.slice(at)}`;
    }
    if (r() < 0.15) s = `${s}%${pick(['eth0', 'lo', 'a.b-c:d', '', '%x', 'é'])}`;
    if (r() < 0.1) s = pick([` ${s}`, `${s} `, `[${s}]`, s.toUpperCase(), `${s}/64`]);
    out.push(s);
  }
  return out;
}

describe('isIP (config/net.ts)', () => {
  it('answers as net.isIP on edge cases', () => {
    const cases = [
      '',
      '::',
      ':',
      ':::',
      '1::',
      '::1',
      '1::1',
      '::ffff:1.2.3.4',
      '::1.2.3.4',
      '1.2.3.4::',
      '1:2:3:4:5:6:7:8',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7::',
      '1:2:3:4:5:6:7:8::',
      '::1:2:3:4:5:6:7',
      '::1:2:3:4:5:6:7:8',
      '1:2:3:4:5:6:1.2.3.4',
      '1:2:3:4:5:6:7:1.2.3.4',
      '1:2:3:4:5::1.2.3.4',
      '1:2:3:4:5:6::1.2.3.4',
      '1::2::3',
      'fe80::1%eth0',
      'fe80::1%',
      'fe80::1%%a',
      '12345::',
      'g::',
      '1.2.3.4',
      '255.255.255.255',
      '256.1.1.1',
      '01.2.3.4',
      '1.2.3',
      '1.2.3.4.5',
      '1..2.3',
      '0.0.0.0',
      'localhost',
      '2001:db8::/32',
      '[::1]',
    ];
    for (const c of cases) expect(isIP(c), JSON.stringify(c)).toBe(nodeIsIP(c));
  });

  it('answers as net.isIP on 100,000 generated near-addresses', () => {
    const inputs = corpus(100_000);
    const found = { 4: 0, 6: 0, 0: 0 };
    const differ: string[] = [];
    for (const s of inputs) {
      const theirs = nodeIsIP(s);
      found[theirs as 0 | 4 | 6] += 1;
      if (isIP(s) !== theirs) differ.push(JSON.stringify(s));
    }
    expect(differ.slice(0, 10)).toEqual([]);
    // The corpus reaches every answer often enough to mean something.
    expect(Math.min(found[4], found[6], found[0])).toBeGreaterThan(2_000);
  });
});
