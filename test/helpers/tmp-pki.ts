// A throwaway CA and leaf certificates made with openssl, for tests only:
// ECDSA P-256 keys in PKCS#8, as Contrast's Initializer writes them.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import type { CertState } from '../../src/certs/types.js';

export interface Leaf {
  name: string;
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

export interface IssueOptions {
  /** SAN values; "a:b" becomes URI, an IP literal IP, anything else DNS. Default: [name]. */
  sans?: string[];
  days?: number;
}

export interface TmpCa {
  dir: string;
  caPath: string;
  caPem: string;
  issue(name: string, opts?: IssueOptions): Leaf;
  /** The CertState meshlet would serve for `leaf` under this CA. */
  certState(leaf: Leaf): CertState;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function sanEntry(v: string): string {
  if (isIP(v) !== 0) return `IP:${v}`;
  return v.includes(':') ? `URI:${v}` : `DNS:${v}`;
}

function newKey(keyPath: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath]);
}

export function createTmpCa(dir: string, name = 'meshlet-test-ca'): TmpCa {
  mkdirSync(dir, { recursive: true });
  const caKey = path.join(dir, `${name}.key`);
  const caPath = path.join(dir, `${name}.pem`);
  newKey(caKey);
  openssl(['req', '-x509', '-new', '-key', caKey, '-out', caPath, '-days', '2', '-subj', `/CN=${name}`]);
  const caPem = readFileSync(caPath, 'utf8');

  const issue = (leafName: string, opts: IssueOptions = {}): Leaf => {
    const base = path.join(dir, leafName);
    const keyPath = `${base}.key`;
    const certPath = `${base}.pem`;
    newKey(keyPath);
    openssl(['req', '-new', '-key', keyPath, '-out', `${base}.csr`, '-subj', `/CN=${leafName}`]);
    const sans = (opts.sans ?? [leafName]).map(sanEntry).join(',');
    writeFileSync(`${base}.ext`, `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`);
    openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', caPath, '-CAkey', caKey, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
      '-days', String(opts.days ?? 1), '-extfile', `${base}.ext`, '-out', certPath]);
    return { name: leafName, certPath, keyPath, certPem: readFileSync(certPath, 'utf8'), keyPem: readFileSync(keyPath, 'utf8') };
  };

  return { dir, caPath, caPem, issue, certState: (leaf) => ({ caPem, chainPem: leaf.certPem, keyPem: leaf.keyPem }) };
}
