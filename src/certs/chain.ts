// Path building from the leaf to a trust anchor: at each step take a CA
// certificate from the bundle if one issued the current certificate, otherwise
// an intermediate from the chain file. "Issued" means the issuer name and key
// identifiers match (X509_check_issued), the issuer is a CA, and the signature
// verifies with the issuer's key (RFC 5280 §6.1).
import type { X509Certificate } from 'node:crypto';
import { nameOf } from './pem.js';

const MAX_DEPTH = 8;

export type ChainResult =
  { ok: true; intermediates: X509Certificate[]; anchor: X509Certificate } | { ok: false; stuckAt: X509Certificate; depth: number; why: string };

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  return parent.ca && child.checkIssued(parent) && child.verify(parent.publicKey);
}

export function buildChain(leaf: X509Certificate, intermediates: readonly X509Certificate[], anchors: readonly X509Certificate[]): ChainResult {
  const used: X509Certificate[] = [];
  let cur = leaf;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const anchor = anchors.find((a) => issuedBy(cur, a));
    if (anchor) return { ok: true, intermediates: used, anchor };
    const next = intermediates.find((c) => c !== leaf && !used.includes(c) && issuedBy(cur, c));
    if (next === undefined) return { ok: false, stuckAt: cur, depth, why: whyNoIssuer(cur, intermediates, anchors) };
    used.push(next);
    cur = next;
  }
  return { ok: false, stuckAt: cur, depth: MAX_DEPTH, why: `the chain is longer than ${MAX_DEPTH} certificates` };
}

/** Why no certificate issued `cert`: a same-name impostor, a non-CA, or nothing at all. */
function whyNoIssuer(cert: X509Certificate, intermediates: readonly X509Certificate[], anchors: readonly X509Certificate[]): string {
  const issuer = nameOf(cert.issuer);
  const named = [...anchors, ...intermediates].filter((c) => c.subject === cert.issuer);
  if (named.length === 0) return `its issuer "${issuer}" is in neither file`;
  if (named.every((c) => !c.ca)) return `its issuer "${issuer}" is not a CA certificate (basicConstraints CA:FALSE)`;
  return `a certificate named "${issuer}" is present, but its key did not sign this certificate — it is a different CA with the same name`;
}
