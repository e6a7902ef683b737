// Table tests of every check, on real PKIs generated per run.
import { generateKeyPairSync } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CertError,
  checkReadCerts,
  loadCerts,
  readCertFiles,
  readCerts,
  type CertField,
  type CertFiles,
  type CertProblem,
  type LoadOptions,
} from '../../src/certs/index.js';
import { createPki, pkcs8, type Leaf, type Pki } from '../helpers/pki.js';
import { pemBodyLines, tempDir, writeCase, type CaseFiles } from './fixtures.js';

const DAY = 86_400_000;
const ago = (days: number): Date => new Date(Date.now() - days * DAY);
const ahead = (days: number): Date => new Date(Date.now() + days * DAY);

interface World {
  pki: Pki;
  other: Pki;
  twin: Pki;
  leaf: Leaf;
  rsa: Leaf;
}

interface Made {
  leaf: Leaf;
  over?: CaseFiles;
  sans?: string[];
  pki?: Pki;
}

/** One row: the files to write and the problems expected, as field plus a fragment of the message. */
interface Row {
  name: string;
  make: (w: World) => Made | Promise<Made>;
  now?: Date;
  expect: [CertField, string][];
}

let w: World;
let root: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  root = await tempDir();
  const [pki, other, twin] = await Promise.all([
    createPki(join(root.dir, 'pki')),
    createPki(join(root.dir, 'other'), { name: 'other-mesh' }),
    createPki(join(root.dir, 'twin')), // same names as `pki`, different keys
  ]);
  const [leaf, rsa] = await Promise.all([pki.issueLeaf({ sans: ['emoji-svc'] }), pki.issueLeaf({ sans: ['rsa-svc'], key: 'rsa' })]);
  w = { pki, other, twin, leaf, rsa };
});
afterAll(async () => root.cleanup());

const rows: Row[] = [
  { name: 'valid EC P-256 leaf via the intermediate', make: (w) => ({ leaf: w.leaf, sans: ['emoji-svc'] }), expect: [] },
  { name: 'valid RSA leaf (PKCS#8 key)', make: (w) => ({ leaf: w.rsa, sans: ['rsa-svc'] }), expect: [] },
  {
    name: 'RSA key as PKCS#1 (BEGIN RSA PRIVATE KEY)',
    make: (w) => ({ leaf: w.rsa, over: { key: w.rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }) } }),
    expect: [],
  },
  {
    name: 'EC key as SEC1 (BEGIN EC PRIVATE KEY)',
    make: (w) => ({ leaf: w.leaf, over: { key: w.leaf.privateKey.export({ type: 'sec1', format: 'pem' }) } }),
    expect: [],
  },
  { name: 'leaf signed by the CA itself, chain is the leaf alone', make: async (w) => ({ leaf: await w.pki.issueLeaf({ issuer: 'ca' }) }), expect: [] },
  {
    name: 'CA bundle with several certificates',
    make: (w) => ({ leaf: w.leaf, over: { ca: w.other.caPem + w.pki.caPem } }),
    expect: [],
  },
  {
    name: 'Contrast layout: mesh CA is the intermediate, self-signed',
    make: async () => {
      const pki = await createPki(join(root.dir, 'contrast'), { anchor: 'intermediate' });
      return { pki, leaf: await pki.issueLeaf({ sans: ['web'] }), sans: ['web'] };
    },
    expect: [],
  },
  {
    name: 'CRLF line endings and text around the PEM blocks',
    make: (w) => {
      const crlf = (t: string): string => `Bag Attributes: exported\r\n${t.replace(/\n/g, '\r\n')}trailing text\r\n`;
      return { leaf: w.leaf, over: { ca: crlf(w.pki.caPem), certChain: crlf(w.leaf.chainPem), key: crlf(w.leaf.keyPem) } };
    },
    expect: [],
  },
  {
    name: 'DNS SAN matched case-insensitively, URI SAN exactly',
    make: async (w) => ({
      leaf: await w.pki.issueLeaf({ sans: ['Emoji-Svc', 'spiffe://mesh/ns/default/emoji'] }),
      sans: ['emoji-svc', 'spiffe://mesh/ns/default/emoji'],
    }),
    expect: [],
  },
  {
    name: 'key does not match the leaf',
    make: async (w) => ({ leaf: w.leaf, over: { key: (await w.pki.issueLeaf()).keyPem } }),
    expect: [['certs.key', 'private key does not match the certificate in certs.certChain (']],
  },
  {
    name: 'RSA key for an EC certificate',
    make: (w) => ({ leaf: w.leaf, over: { key: w.rsa.keyPem } }),
    expect: [['certs.key', "(the key is RSA 2048, the certificate's key is EC P-256)"]],
  },
  {
    name: 'chain not leaf-first',
    make: (w) => ({ leaf: w.leaf, over: { certChain: w.pki.intermediate.certPem + w.leaf.certPem } }),
    expect: [['certs.key', 'certificate #2 — put the leaf certificate first']],
  },
  {
    name: 'leaf from another CA',
    make: async (w) => ({ leaf: await w.other.issueLeaf() }),
    expect: [['certs.certChain', 'not signed by the mesh CA in certs.ca (']],
  },
  {
    name: 'another CA with the same name',
    make: async (w) => ({ leaf: await w.twin.issueLeaf() }),
    expect: [['certs.certChain', 'different CA with the same name']],
  },
  {
    name: 'intermediate missing from the chain file',
    make: (w) => ({ leaf: w.leaf, over: { certChain: w.leaf.certPem } }),
    expect: [['certs.certChain', 'is in neither file; use the certificate chain and mesh CA of the same mesh, or add the missing intermediate']],
  },
  {
    name: 'expired leaf',
    make: async (w) => ({ leaf: await w.pki.issueLeaf({ notBefore: ago(30), notAfter: ago(1) }) }),
    expect: [['certs.certChain', 'expired at']],
  },
  {
    name: 'leaf not yet valid',
    make: async (w) => ({ leaf: await w.pki.issueLeaf({ notBefore: ahead(1), notAfter: ahead(30) }) }),
    expect: [['certs.certChain', 'is not valid until']],
  },
  {
    name: 'expired mesh CA and intermediate',
    make: async () => {
      const pki = await createPki(join(root.dir, 'old'), { caNotBefore: ago(400), caNotAfter: ago(2) });
      return { pki, leaf: await pki.issueLeaf() };
    },
    expect: [
      ['certs.certChain', 'intermediate CA certificate (O=meshlet-test, CN=meshlet-test intermediate CA) expired at'],
      ['certs.ca', 'mesh CA certificate (O=meshlet-test, CN=meshlet-test root CA) expired at'],
    ],
  },
  { name: 'injected clock after notAfter', now: ahead(60), make: (w) => ({ leaf: w.leaf }), expect: [['certs.certChain', 'expired at']] },
  { name: 'injected clock before notBefore', now: ago(0.5), make: (w) => ({ leaf: w.leaf }), expect: [['certs.certChain', 'is not valid until']] },
  {
    name: 'missing SAN',
    make: (w) => ({ leaf: w.leaf, sans: ['emoji-svc', 'spiffe://mesh/emoji'] }),
    expect: [['certs.certChain', 'does not carry the SAN "spiffe://mesh/emoji" required by certs.expectedSans (it carries DNS:emoji-svc)']],
  },
  {
    name: 'missing CA file',
    make: (w) => ({ leaf: w.leaf, over: { ca: null } }),
    expect: [['certs.ca', "file not found — the mesh CA is written by Contrast's Initializer; check the volume mount"]],
  },
  { name: 'missing chain file', make: (w) => ({ leaf: w.leaf, over: { certChain: null } }), expect: [['certs.certChain', 'file not found']] },
  { name: 'missing key file', make: (w) => ({ leaf: w.leaf, over: { key: null } }), expect: [['certs.key', 'file not found — the workload key']] },
  {
    name: 'all three files missing',
    make: (w) => ({ leaf: w.leaf, over: { ca: null, certChain: null, key: null } }),
    expect: [
      ['certs.ca', 'file not found'],
      ['certs.certChain', 'file not found'],
      ['certs.key', 'file not found'],
    ],
  },
  {
    name: 'garbage in the chain file',
    make: (w) => ({ leaf: w.leaf, over: { certChain: 'hello world\n' } }),
    expect: [['certs.certChain', 'found no PEM data']],
  },
  { name: 'garbage in the key file', make: (w) => ({ leaf: w.leaf, over: { key: 'not a key' } }), expect: [['certs.key', 'found no private key']] },
  {
    name: 'damaged certificate block',
    make: (w) => ({ leaf: w.leaf, over: { ca: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' } }),
    expect: [['certs.ca', 'certificate #1 is not valid X.509']],
  },
  {
    name: 'damaged key block',
    make: (w) => ({ leaf: w.leaf, over: { key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' } }),
    expect: [['certs.key', 'the private key cannot be parsed']],
  },
  { name: 'empty key file', make: (w) => ({ leaf: w.leaf, over: { key: '' } }), expect: [['certs.key', 'file is empty']] },
  {
    name: 'files swapped: key in the chain file, chain in the key file',
    make: (w) => ({ leaf: w.leaf, over: { certChain: w.leaf.keyPem, key: w.leaf.chainPem } }),
    expect: [
      ['certs.certChain', 'holds a private key, not certificates — point certs.certChain at'],
      ['certs.key', 'holds a certificate, not a private key — point certs.key at the key file'],
    ],
  },
  {
    name: 'key block inside the chain file',
    make: (w) => ({ leaf: w.leaf, over: { certChain: w.leaf.chainPem + w.leaf.keyPem } }),
    expect: [['certs.certChain', 'also holds a private key']],
  },
  {
    name: 'encrypted key',
    make: (w) => ({
      leaf: w.leaf,
      over: { key: w.leaf.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }) },
    }),
    expect: [['certs.key', 'the private key is encrypted']],
  },
  {
    name: 'RSA key under 2048 bits',
    make: (w) => ({ leaf: w.leaf, over: { key: pkcs8(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey) } }),
    expect: [['certs.key', 'the RSA key has 1024 bits']],
  },
  {
    name: 'Ed25519 key',
    make: (w) => ({ leaf: w.leaf, over: { key: pkcs8(generateKeyPairSync('ed25519').privateKey) } }),
    expect: [['certs.key', 'the private key is ed25519']],
  },
  {
    name: 'several problems at once',
    make: async (w) => ({ leaf: await w.other.issueLeaf({ sans: ['a'], notBefore: ago(10), notAfter: ago(1) }), over: { key: w.leaf.keyPem }, sans: ['b'] }),
    expect: [
      ['certs.key', 'does not match'],
      ['certs.certChain', 'not signed by the mesh CA'],
      ['certs.certChain', 'expired at'],
      ['certs.certChain', 'does not carry the SAN "b"'],
    ],
  },
];

describe('readCerts / loadCerts', () => {
  let n = 0;
  it.each(rows)('$name', async (row) => {
    const made = await Promise.resolve(row.make(w));
    const dir = join(root.dir, `case-${n++}`);
    await mkdir(dir);
    const files = await writeCase(made.pki ?? w.pki, made.leaf, dir, made.over ?? {}, made.sans ?? []);
    const opts = { now: row.now ?? new Date() };
    const r = readCerts(files, opts);

    const got = r.problems.map((p) => [p.field, p.problem] as const);
    expect(got).toHaveLength(row.expect.length);
    row.expect.forEach(([field, fragment], i) => {
      expect(got[i]?.[0]).toBe(field);
      expect(got[i]?.[1]).toContain(fragment);
    });
    const fileOf = { 'certs.ca': files.ca, 'certs.certChain': files.certChain, 'certs.key': files.key };
    for (const p of r.problems) expect(p.file).toBe(fileOf[p.field]);
    // meshlet run's two steps (read before Envoy starts, check while it boots) find the same problems, in the same order.
    expect(twoSteps(files, opts)).toEqual(r.problems);

    if (row.expect.length === 0) {
      expect(r.state).toBeDefined();
      expect(loadCerts(files, opts).chainPem).toBe(r.state?.chainPem);
      return;
    }
    expect(r.state).toBeUndefined();
    const err = captureError(() => loadCerts(files, opts));
    expect(err.problems).toEqual(r.problems);
    for (const p of r.problems) expect(err.message).toContain(`${p.field} (${fileOf[p.field]}): ${p.problem}`);
    // No message may carry key material, whatever file the key ended up in.
    for (const line of [...pemBodyLines(made.leaf.keyPem), ...pemBodyLines(made.over?.key ?? '')]) expect(err.message).not.toContain(line);
  });
});

/** readCertFiles then checkReadCerts: the problems of whichever step threw, none when both passed. */
function twoSteps(files: CertFiles, opts: LoadOptions): readonly CertProblem[] {
  let state;
  try {
    state = readCertFiles(files, opts);
  } catch (err) {
    return captureError(() => {
      throw err;
    }).problems;
  }
  try {
    expect(checkReadCerts(state, files, opts)).toBe(state);
    return [];
  } catch (err) {
    return captureError(() => {
      throw err;
    }).problems;
  }
}

function captureError(fn: () => unknown): CertError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CertError);
    return err as CertError;
  }
  throw new Error('expected a CertError');
}

describe('loadCerts edge cases', () => {
  it('reports a directory given as a file', async () => {
    const dir = join(root.dir, 'isdir');
    const files = await writeCase(w.pki, w.leaf, dir, {});
    const err = captureError(() => loadCerts({ ...files, key: dir }));
    expect(err.problems).toEqual([
      { field: 'certs.key', file: dir, problem: expect.stringContaining('is a directory — set certs.key to the PEM file itself') as string },
    ]);
  });

  it('readCertFiles only reads: a readable file that holds no key passes it, and checkReadCerts names the problem', async () => {
    const dir = join(root.dir, 'two-steps');
    const files = await writeCase(w.pki, w.leaf, dir, { key: 'not a key\n' });
    const state = readCertFiles(files);
    expect(state.keyPem).toBe('not a key\n');
    const err = captureError(() => checkReadCerts(state, files));
    expect(err.problems.map((p) => [p.field, p.file])).toEqual([['certs.key', files.key]]);
  });

  it('readCertFiles stops at a missing file, naming it, and still reports what is wrong with the others', async () => {
    const dir = join(root.dir, 'missing-and-wrong');
    const files = await writeCase(w.pki, w.leaf, dir, { key: null, certChain: 'no certificate here\n' });
    const err = captureError(() => readCertFiles(files));
    expect(err.problems.map((p) => p.field)).toEqual(['certs.key', 'certs.certChain']);
    expect(err.problems[0]?.problem).toContain('file not found');
    expect(err.problems[0]?.file).toBe(files.key);
  });

  it('uses the injected reader', () => {
    const texts: Record<string, string> = { '/x/ca': w.pki.caPem, '/x/chain': w.leaf.chainPem, '/x/key': w.leaf.keyPem };
    const readFile = (p: string): string => texts[p] ?? '';
    const state = loadCerts({ ca: '/x/ca', certChain: '/x/chain', key: '/x/key', expectedSans: ['emoji-svc'] }, { readFile });
    expect(state).toEqual({ caPem: w.pki.caPem, chainPem: w.leaf.chainPem, keyPem: w.leaf.keyPem });
  });
});
