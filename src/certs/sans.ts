// Subject Alternative Names: parse Node's subjectAltName text and match the
// SANs the config expects. DNS names compare case-insensitively, URIs exactly.
import { isIP } from '../config/net.js';
import type { X509Certificate } from 'node:crypto';

export interface San {
  type: string;
  value: string;
}

// Node writes "DNS:a, URI:spiffe://b, IP Address:198.18.0.1" and JSON-quotes a value
// with special characters (DNS:"a,b"), since its fix for CVE-2021-44532.
const ENTRY = /\s*([A-Za-z][A-Za-z ]*):("(?:[^"\\]|\\.)*"|[^,]*)\s*(?:,|$)/y;

export function parseSubjectAltName(text: string | undefined): San[] {
  const out: San[] = [];
  if (text === undefined) return out;
  ENTRY.lastIndex = 0;
  for (let m = ENTRY.exec(text); m !== null && m[0] !== ''; m = ENTRY.exec(text)) {
    const raw = m[2] ?? '';
    out.push({ type: m[1] ?? '', value: raw.startsWith('"') ? (JSON.parse(raw) as string) : raw.trim() });
    if (ENTRY.lastIndex >= text.length) break;
  }
  return out;
}

export function sansOf(cert: X509Certificate): San[] {
  return parseSubjectAltName(cert.subjectAltName);
}

export const formatSan = (s: San): string => `${s.type}:${s.value}`;

function normIp(ip: string): string {
  return isIP(ip) === 6 ? new URL(`http://[${ip}]`).hostname : ip;
}

function carries(sans: readonly San[], expected: string): boolean {
  return sans.some((s) => {
    if (s.type === 'DNS') return s.value.toLowerCase() === expected.toLowerCase();
    if (s.type === 'URI') return s.value === expected;
    if (s.type === 'IP Address') return isIP(expected) !== 0 && normIp(s.value) === normIp(expected);
    return false;
  });
}

/** The expected SANs (DNS, URI or IP) the certificate does not carry. */
export function missingSans(cert: X509Certificate, expected: readonly string[]): string[] {
  const sans = sansOf(cert);
  return expected.filter((e) => !carries(sans, e));
}
