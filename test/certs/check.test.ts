// The rotation path: checkCerts on material already in memory. A new chain and
// key are accepted only as a matching pair signed by the mesh CA.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCerts, type CertFiles, type CertState } from '../../src/certs/index.js';
import { createPki, type Leaf, type Pki } from '../helpers/pki.js';
import { tempDir } from './fixtures.js';

const files: CertFiles = {
  ca: '/contrast/tls-config/mesh-ca.pem',
  certChain: '/contrast/tls-config/certChain.pem',
  key: '/contrast/tls-config/key.pem',
  expectedSans: ['web'],
};

describe('checkCerts (rotation)', () => {
  let t: Awaited<ReturnType<typeof tempDir>>;
  let pki: Pki;
  let other: Pki;
  let current: Leaf;
  let next: Leaf;
  const state = (leaf: Leaf, over: Partial<CertState> = {}): CertState => ({ caPem: pki.caPem, chainPem: leaf.chainPem, keyPem: leaf.keyPem, ...over });

  beforeAll(async () => {
    t = await tempDir();
    [pki, other] = await Promise.all([createPki(t.dir), createPki(`${t.dir}/other`, { name: 'other' })]);
    [current, next] = await Promise.all([pki.issueLeaf({ sans: ['web'] }), pki.issueLeaf({ sans: ['web'] })]);
  });
  afterAll(async () => t.cleanup());

  it('accepts the current and the next matching pair', () => {
    expect(checkCerts(state(current), files)).toEqual([]);
    expect(checkCerts(state(next), files)).toEqual([]);
  });

  it('refuses a new chain with the old key', () => {
    expect(checkCerts(state(next, { keyPem: current.keyPem }), files)).toEqual([
      {
        field: 'certs.key',
        file: files.key,
        problem: expect.stringContaining(`private key does not match the certificate in certs.certChain (${files.certChain})`) as string,
      },
    ]);
  });

  it('refuses a chain the mesh CA did not sign', async () => {
    const foreign = await other.issueLeaf({ sans: ['web'] });
    const problems = checkCerts(state(foreign), files);
    expect(problems.map((p) => [p.field, p.file])).toEqual([['certs.certChain', files.certChain]]);
    expect(problems[0]?.problem).toContain(`not signed by the mesh CA in certs.ca (${files.ca})`);
  });

  it('accepts a rotated CA bundle holding the old and the new CA', async () => {
    const leafOfNew = await other.issueLeaf({ sans: ['web'] });
    expect(checkCerts(state(leafOfNew, { caPem: pki.caPem + other.caPem }), files)).toEqual([]);
    expect(checkCerts(state(current, { caPem: pki.caPem + other.caPem }), files)).toEqual([]);
  });

  it('uses the clock it is given', () => {
    const later = new Date(current.cert.validTo);
    later.setUTCDate(later.getUTCDate() + 1);
    expect(checkCerts(state(current), files, later).map((p) => p.problem)).toEqual([expect.stringContaining('expired at')]);
  });
});
