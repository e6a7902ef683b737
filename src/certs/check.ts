// The four checks on a set of certificate material: the key matches the leaf,
// the leaf chains to the mesh CA, every certificate on that path is valid now,
// and the leaf carries the expected SANs. Pure: used at start and on rotation.
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { CertState } from './types.js';
import { ref, type CertField, type CertFiles, type CertProblem } from './problems.js';
import { keyTypeOf, nameOf, parseCertificates, parsePrivateKey } from './pem.js';
import { buildChain } from './chain.js';
import { validityProblem } from './validity.js';
import { formatSan, missingSans, sansOf } from './sans.js';

/** Material read from the files; a piece that could not be read is absent (and already reported). */
export type CertMaterial = Partial<CertState>;

const RENEW_LEAF = 'renew the workload certificate (with Contrast, restart the pod so its Initializer fetches a new one)';
const RENEW_CA = 'the mesh CA must be replaced: with Contrast, set a new manifest and redeploy the workloads';

interface Parsed {
  ca: X509Certificate[];
  chain: X509Certificate[];
  key: KeyObject | undefined;
}

type Add = (field: CertField, problem: string) => void;

/** The rotation path: checks material already read, e.g. a new chain and key against the mesh CA. */
export function checkCerts(state: CertState, files: CertFiles, now: Date = new Date()): CertProblem[] {
  return checkMaterial(state, files, now);
}

/** Like checkCerts, for material of which some files could not be read. */
export function checkMaterial(m: CertMaterial, files: CertFiles, now: Date): CertProblem[] {
  const problems: CertProblem[] = [];
  const add = (field: CertField, problem: string): void => {
    problems.push({ field, file: files[field.slice('certs.'.length) as 'ca' | 'certChain' | 'key'], problem });
  };
  const p = parseMaterial(m, add);
  const leaf = p.chain[0];
  if (leaf === undefined) return problems;
  if (p.key) checkKeyMatch(leaf, p, files, add);
  if (m.caPem !== undefined && p.ca.length > 0) checkPath(leaf, p, files, now, add);
  else checkLeafValidity(leaf, now, add);
  checkSans(leaf, files.expectedSans, add);
  return problems;
}

function parseMaterial(m: CertMaterial, add: Add): Parsed {
  const p: Parsed = { ca: [], chain: [], key: undefined };
  if (m.caPem !== undefined) {
    const r = parseCertificates(m.caPem, 'the mesh CA certificate', 'certs.ca');
    r.problems.forEach((x) => add('certs.ca', x));
    p.ca = r.certs;
  }
  if (m.chainPem !== undefined) {
    const r = parseCertificates(m.chainPem, 'the workload certificate chain', 'certs.certChain');
    r.problems.forEach((x) => add('certs.certChain', x));
    p.chain = r.certs;
  }
  if (m.keyPem !== undefined) {
    const r = parsePrivateKey(m.keyPem, 'certs.key');
    r.problems.forEach((x) => add('certs.key', x));
    p.key = r.key;
  }
  return p;
}

const describe = (c: X509Certificate): string => `(${nameOf(c.subject)})`;

function checkKeyMatch(leaf: X509Certificate, p: Parsed, files: CertFiles, add: Add): void {
  const key = p.key as KeyObject;
  if (leaf.checkPrivateKey(key)) return;
  const chainRef = ref(files, 'certs.certChain');
  const other = p.chain.findIndex((c, i) => i > 0 && c.checkPrivateKey(key));
  if (other > 0) {
    add(
      'certs.key',
      `private key does not match the first certificate in ${chainRef} but certificate #${other + 1} — put the leaf certificate first in the chain`,
    );
    return;
  }
  const keyType = keyTypeOf(key);
  const certType = keyTypeOf(leaf.publicKey);
  const types = keyType === certType ? '' : ` (the key is ${keyType}, the certificate's key is ${certType})`;
  add(
    'certs.key',
    `private key does not match the certificate in ${chainRef}${types} — the key and the chain must come from the same issuance; write both together`,
  );
}

function checkLeafValidity(leaf: X509Certificate, now: Date, add: Add): void {
  const v = validityProblem(leaf, now, `the workload certificate ${describe(leaf)}`, RENEW_LEAF);
  if (v !== undefined) add('certs.certChain', v);
}

function checkPath(leaf: X509Certificate, p: Parsed, files: CertFiles, now: Date, add: Add): void {
  const r = buildChain(leaf, p.chain.slice(1), p.ca);
  if (!r.ok) {
    const which = r.depth === 0 ? `the workload certificate ${describe(leaf)}` : `intermediate CA certificate ${describe(r.stuckAt)}`;
    add(
      'certs.certChain',
      `the certificate chain is not signed by the mesh CA in ${ref(files, 'certs.ca')}: ${which} — ${r.why}; ` +
        `use the certificate chain and mesh CA of the same mesh, or add the missing intermediate to ${ref(files, 'certs.certChain')}`,
    );
    checkLeafValidity(leaf, now, add);
    return;
  }
  checkLeafValidity(leaf, now, add);
  for (const c of r.intermediates) {
    const v = validityProblem(c, now, `intermediate CA certificate ${describe(c)}`, 'replace the intermediate in the chain with a current one');
    if (v !== undefined) add('certs.certChain', v);
  }
  const v = validityProblem(r.anchor, now, `mesh CA certificate ${describe(r.anchor)}`, RENEW_CA);
  if (v !== undefined) add('certs.ca', v);
}

function checkSans(leaf: X509Certificate, expected: readonly string[], add: Add): void {
  const missing = missingSans(leaf, expected);
  if (missing.length === 0) return;
  const has = sansOf(leaf).map(formatSan);
  add(
    'certs.certChain',
    `the workload certificate does not carry the SAN${missing.length === 1 ? '' : 's'} ${missing.map((s) => JSON.stringify(s)).join(', ')} ` +
      `required by certs.expectedSans (it carries ${has.length === 0 ? 'none' : has.join(', ')}) — issue it with these SANs, or correct certs.expectedSans`,
  );
}
