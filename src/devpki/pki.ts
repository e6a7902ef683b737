// Throwaway PKIs (demo, benchmarks, tests; never production) generated in-process: a mesh CA, an intermediate, and leaves with
// any SANs and validity window, written out under Contrast's file names.
//   const pki = await createPki(dir);
//   const leaf = await pki.issueLeaf({ sans: ['emoji-svc'] });
//   const files = await pki.writeContrastDir(podDir, leaf);
import type { KeyObject } from 'node:crypto';
import { buildCertificate, EKU_CLIENT_AUTH, EKU_SERVER_AUTH, KeyUsage, type Name } from './x509.js';
const { generateKeyPair, randomBytes, X509Certificate } = process.getBuiltinModule('node:crypto');
const { mkdir, rename, rm, symlink, writeFile } = process.getBuiltinModule('node:fs/promises');
const { join } = process.getBuiltinModule('node:path');

export type KeyKind = 'ec' | 'rsa';

const { promisify } = process.getBuiltinModule('node:util');
type X509Certificate = InstanceType<typeof X509Certificate>;
const genKeyPair = promisify(generateKeyPair);
const HOUR = 3600_000;
const DAY = 24 * HOUR;

async function newKey(kind: KeyKind): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  return kind === 'rsa' ? genKeyPair('rsa', { modulusLength: 2048 }) : genKeyPair('ec', { namedCurve: 'P-256' });
}

/** PKCS#8 PEM (`BEGIN PRIVATE KEY`), the form Contrast writes key.pem in. */
export const pkcs8 = (k: KeyObject): string => k.export({ type: 'pkcs8', format: 'pem' });

export interface Issuer {
  name: Name;
  certPem: string;
  cert: X509Certificate;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface Leaf {
  certPem: string;
  cert: X509Certificate;
  /** Leaf first, then the intermediate when the intermediate signed it. */
  chainPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  privateKey: KeyObject;
  sans: string[];
}

export interface LeafOptions {
  /** DNS names; a value with "://" becomes a URI SAN and an IP literal an IP SAN. */
  sans?: string[];
  commonName?: string;
  key?: KeyKind;
  /** Who signs it: the intermediate (default, as Contrast) or the mesh CA itself. */
  issuer?: 'intermediate' | 'ca';
  notBefore?: Date;
  notAfter?: Date;
}

export interface PkiOptions {
  /** Name prefix, so two PKIs in one test are told apart in messages. */
  name?: string;
  key?: KeyKind;
  /** `root` (default): mesh-ca.pem is the self-signed root above the intermediate.
   *  `intermediate`: as Contrast does, mesh-ca.pem is a self-signed certificate with the
   *  intermediate's own name and key, so leaves verify against it directly. */
  anchor?: 'root' | 'intermediate';
  caNotBefore?: Date;
  caNotAfter?: Date;
}

export interface ContrastFiles {
  dir: string;
  ca: string;
  certChain: string;
  key: string;
}

export interface Pki {
  ca: Issuer;
  intermediate: Issuer;
  /** What mesh-ca.pem holds. */
  caPem: string;
  issueLeaf(opts?: LeafOptions): Promise<Leaf>;
  /** Writes mesh-ca.pem, certChain.pem and key.pem (modes 0444, 0444, 0400, as Contrast). */
  writeContrastDir(dir: string, leaf: Leaf, overrides?: Partial<Record<'ca' | 'certChain' | 'key', string>>): Promise<ContrastFiles>;
}

const serial = (): Buffer => randomBytes(16);

/** Write-then-rename, so a rewrite (a rotation) replaces read-only files atomically. */
async function replaceFile(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, text, { mode });
  await rename(tmp, path);
}

function issue(subject: Name, keys: { privateKey: KeyObject; publicKey: KeyObject }, signer: Issuer | undefined, window: [Date, Date]): Issuer {
  const certPem = buildCertificate(
    {
      subject,
      issuer: signer?.name ?? subject,
      publicKey: keys.publicKey,
      issuerPublicKey: signer?.publicKey ?? keys.publicKey,
      signingKey: signer?.privateKey ?? keys.privateKey,
      notBefore: window[0],
      notAfter: window[1],
      ca: true,
      keyUsage: [KeyUsage.keyCertSign, KeyUsage.cRLSign, KeyUsage.digitalSignature],
    },
    serial(),
  );
  return { name: subject, certPem, cert: new X509Certificate(certPem), ...keys };
}

export async function createPki(dir: string, opts: PkiOptions = {}): Promise<Pki> {
  const prefix = opts.name ?? 'meshlet-test';
  const kind = opts.key ?? 'ec';
  const window: [Date, Date] = [opts.caNotBefore ?? new Date(Date.now() - DAY), opts.caNotAfter ?? new Date(Date.now() + 365 * DAY)];
  const [rootKeys, intKeys] = await Promise.all([newKey(kind), newKey(kind)]);
  const ca = issue({ o: prefix, cn: `${prefix} root CA` }, rootKeys, undefined, window);
  const intermediate = issue({ o: prefix, cn: `${prefix} intermediate CA` }, intKeys, ca, window);
  const caPem = opts.anchor === 'intermediate' ? issue(intermediate.name, intKeys, undefined, window).certPem : ca.certPem;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'mesh-ca.pem'), caPem);

  async function issueLeaf(o: LeafOptions = {}): Promise<Leaf> {
    const keys = await newKey(o.key ?? 'ec');
    const signer = o.issuer === 'ca' ? ca : intermediate;
    const sans = o.sans ?? ['localhost'];
    const certPem = buildCertificate(
      {
        subject: { o: prefix, cn: o.commonName ?? sans[0] ?? 'workload' },
        issuer: signer.name,
        publicKey: keys.publicKey,
        issuerPublicKey: signer.publicKey,
        signingKey: signer.privateKey,
        notBefore: o.notBefore ?? new Date(Date.now() - HOUR),
        notAfter: o.notAfter ?? new Date(Date.now() + 30 * DAY),
        ca: false,
        keyUsage: keys.publicKey.asymmetricKeyType === 'rsa' ? [KeyUsage.digitalSignature, KeyUsage.keyEncipherment] : [KeyUsage.digitalSignature],
        extKeyUsage: [EKU_SERVER_AUTH, EKU_CLIENT_AUTH],
        sans,
      },
      serial(),
    );
    const chainPem = signer === intermediate ? certPem + intermediate.certPem : certPem;
    return { certPem, cert: new X509Certificate(certPem), chainPem, keyPem: pkcs8(keys.privateKey), privateKey: keys.privateKey, sans };
  }

  async function writeContrastDir(to: string, leaf: Leaf, overrides: Partial<Record<'ca' | 'certChain' | 'key', string>> = {}): Promise<ContrastFiles> {
    await mkdir(to, { recursive: true });
    const files = { dir: to, ca: join(to, 'mesh-ca.pem'), certChain: join(to, 'certChain.pem'), key: join(to, 'key.pem') };
    await Promise.all([
      replaceFile(files.ca, overrides.ca ?? caPem, 0o444),
      replaceFile(files.certChain, overrides.certChain ?? leaf.chainPem, 0o444),
      replaceFile(files.key, overrides.key ?? leaf.keyPem, 0o400),
    ]);
    return files;
  }

  return { ca, intermediate, caPem, issueLeaf, writeContrastDir };
}

/**
 * Rotates a Secret-volume style directory the way the kubelet does: the new
 * files go to a fresh `..v<version>` directory, then `..data` is swapped to it
 * in one rename, and the previous version is removed.
 */
export async function swapSecretVolume(pki: Pki, certDir: string, version: number, leaf: Leaf): Promise<void> {
  const v = `..v${version}`;
  await pki.writeContrastDir(join(certDir, v), leaf);
  await symlink(v, join(certDir, '..data_tmp'));
  await rename(join(certDir, '..data_tmp'), join(certDir, '..data'));
  await rm(join(certDir, `..v${version - 1}`), { recursive: true, force: true });
}
