// notBefore/notAfter against an injected clock (RFC 5280 §4.1.2.5).
import type { X509Certificate } from 'node:crypto';

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/** Node 20 has no validFromDate; its validFrom text ("Jan  1 00:00:00 2025 GMT") parses with Date. */
export function validityOf(cert: X509Certificate): Validity {
  return { notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}

const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A problem message when `now` lies outside the window; `renew` says how to get a new one. */
export function validityProblem(cert: X509Certificate, now: Date, what: string, renew: string): string | undefined {
  const { notBefore, notAfter } = validityOf(cert);
  if (now.getTime() > notAfter.getTime()) return `${what} expired at ${iso(notAfter)} (now ${iso(now)}) — ${renew}`;
  if (now.getTime() < notBefore.getTime()) {
    return `${what} is not valid until ${iso(notBefore)} (now ${iso(now)}) — check this node's clock, or wait until then`;
  }
  return undefined;
}
