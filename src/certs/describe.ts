// What `meshlet check` prints about the certificates. Built from certificates
// only: the private key is never read here.
import type { X509Certificate } from 'node:crypto';
import type { CertState } from './types.js';
import { keyTypeOf, nameOf, parseCertificates } from './pem.js';
import { formatSan, sansOf } from './sans.js';
import { validityOf } from './validity.js';

export interface CertSummary {
  subject: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  serialNumber: string;
  fingerprint256: string;
}

export interface CertDescription {
  /** Absent when the chain holds no parseable certificate. */
  leaf?: CertSummary & { sans: string[]; keyType: string };
  intermediates: CertSummary[];
  ca: CertSummary[];
}

function summary(c: X509Certificate): CertSummary {
  const { notBefore, notAfter } = validityOf(c);
  return {
    subject: nameOf(c.subject),
    issuer: nameOf(c.issuer),
    notBefore: notBefore.toISOString(),
    notAfter: notAfter.toISOString(),
    serialNumber: c.serialNumber,
    fingerprint256: c.fingerprint256,
  };
}

/** Takes the whole state or only its certificates; the key, if given, is not looked at. */
export function describeCerts(state: CertState | Omit<CertState, 'keyPem'>): CertDescription {
  const [leaf, ...rest] = parseCertificates(state.chainPem, 'chain', 'certs.certChain').certs;
  const ca = parseCertificates(state.caPem, 'CA', 'certs.ca').certs.map(summary);
  const intermediates = rest.map(summary);
  if (leaf === undefined) return { intermediates, ca };
  return { leaf: { ...summary(leaf), sans: sansOf(leaf).map(formatSan), keyType: keyTypeOf(leaf.publicKey) }, intermediates, ca };
}
