// A throwaway CA whose leaves are also written to files, for tests whose
// peers (TLS servers in other processes) read certificates from paths. The
// certificates come from the one in-process PKI, src/devpki.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CertState } from '../../src/certs/types.js';
import { createPki } from '../../src/devpki/pki.js';

export interface Leaf {
  name: string;
  /** The chain (leaf, then intermediate), as a TLS server presents it. */
  certPath: string;
  keyPath: string;
  /** The same chain, as text (named as in CertState and src/devpki: certPem is a single certificate there). */
  chainPem: string;
  keyPem: string;
}

export interface IssueOptions {
  /** SAN values; "a://b" becomes URI, an IP literal IP, anything else DNS. Default: [name]. */
  sans?: string[];
}

export interface TmpCa {
  dir: string;
  caPath: string;
  caPem: string;
  issue(name: string, opts?: IssueOptions): Promise<Leaf>;
  /** The CertState meshlet would serve for `leaf` under this CA. */
  certState(leaf: Leaf): CertState;
}

export async function createTmpCa(dir: string, name = 'meshlet-test-ca'): Promise<TmpCa> {
  mkdirSync(dir, { recursive: true });
  const pki = await createPki(dir, { name });
  const caPath = path.join(dir, `${name}.pem`);
  writeFileSync(caPath, pki.caPem);
  const issue = async (leafName: string, opts: IssueOptions = {}): Promise<Leaf> => {
    const leaf = await pki.issueLeaf({ sans: opts.sans ?? [leafName], commonName: leafName });
    const certPath = path.join(dir, `${leafName}.pem`);
    const keyPath = path.join(dir, `${leafName}.key`);
    writeFileSync(certPath, leaf.chainPem);
    writeFileSync(keyPath, leaf.keyPem, { mode: 0o600 });
    return { name: leafName, certPath, keyPath, chainPem: leaf.chainPem, keyPem: leaf.keyPem };
  };
  return { dir, caPath, caPem: pki.caPem, issue, certState: (leaf) => ({ caPem: pki.caPem, chainPem: leaf.chainPem, keyPem: leaf.keyPem }) };
}
