import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { describeCerts } from '../../src/certs/index.js';
import { createPki, type Leaf, type Pki } from '../helpers/pki.js';
import { pemBodyLines, tempDir } from './fixtures.js';

describe('describeCerts', () => {
  let t: Awaited<ReturnType<typeof tempDir>>;
  let pki: Pki;
  let leaf: Leaf;
  beforeAll(async () => {
    t = await tempDir();
    pki = await createPki(t.dir, { name: 'mesh' });
    leaf = await pki.issueLeaf({ sans: ['emoji-svc', 'spiffe://mesh/emoji'], notAfter: new Date('2030-01-02T03:04:05Z') });
  });
  afterAll(async () => t.cleanup());

  it('summarizes the leaf, the intermediates and the CA', () => {
    const d = describeCerts({ caPem: pki.caPem, chainPem: leaf.chainPem, keyPem: leaf.keyPem });
    expect(d.leaf).toMatchObject({
      subject: 'O=mesh, CN=emoji-svc',
      issuer: 'O=mesh, CN=mesh intermediate CA',
      sans: ['DNS:emoji-svc', 'URI:spiffe://mesh/emoji'],
      notAfter: '2030-01-02T03:04:05.000Z',
      keyType: 'EC P-256',
    });
    expect(d.intermediates.map((c) => c.subject)).toEqual(['O=mesh, CN=mesh intermediate CA']);
    expect(d.ca.map((c) => c.subject)).toEqual(['O=mesh, CN=mesh root CA']);
  });

  it('names the key type of an RSA leaf', async () => {
    const rsa = await pki.issueLeaf({ key: 'rsa' });
    expect(describeCerts({ caPem: pki.caPem, chainPem: rsa.chainPem }).leaf?.keyType).toBe('RSA 2048');
  });

  it('never includes the private key', () => {
    const out = JSON.stringify(describeCerts({ caPem: pki.caPem, chainPem: leaf.chainPem, keyPem: leaf.keyPem }));
    for (const line of pemBodyLines(leaf.keyPem)) expect(out).not.toContain(line);
    expect(out).not.toMatch(/PRIVATE KEY/);
  });

  it('has no leaf when the chain cannot be parsed', () => {
    expect(describeCerts({ caPem: pki.caPem, chainPem: 'junk' })).toEqual({ intermediates: [], ca: [expect.anything()] });
  });
});
