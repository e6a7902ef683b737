import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { missingSans, parseSubjectAltName } from '../../src/certs/sans.js';
import { tempDir } from './fixtures.js';
import { createPki } from '../helpers/pki.js';

describe('parseSubjectAltName', () => {
  it.each([
    { text: undefined, want: [] },
    { text: 'DNS:emoji-svc', want: [{ type: 'DNS', value: 'emoji-svc' }] },
    {
      text: 'DNS:a, URI:spiffe://mesh/ns/x, IP Address:198.18.0.1, IP Address:2001:DB8:0:0:0:0:0:1',
      want: [
        { type: 'DNS', value: 'a' },
        { type: 'URI', value: 'spiffe://mesh/ns/x' },
        { type: 'IP Address', value: '198.18.0.1' },
        { type: 'IP Address', value: '2001:DB8:0:0:0:0:0:1' },
      ],
    },
    // Node quotes values with special characters since CVE-2021-44532.
    {
      text: 'DNS:"a, DNS:b", DNS:c',
      want: [
        { type: 'DNS', value: 'a, DNS:b' },
        { type: 'DNS', value: 'c' },
      ],
    },
  ])('$text', ({ text, want }) => {
    expect(parseSubjectAltName(text)).toEqual(want);
  });
});

describe('missingSans', () => {
  let cert: X509Certificate;
  beforeAll(async () => {
    const t = await tempDir();
    const pki = await createPki(t.dir);
    cert = (await pki.issueLeaf({ sans: ['Emoji-Svc', 'spiffe://mesh/ns/default/sa/emoji', '198.18.1.3', '2001:db8::7'] })).cert;
    await t.cleanup();
  });

  it.each([
    { expected: [], missing: [] },
    { expected: ['emoji-svc', 'EMOJI-SVC'], missing: [] },
    { expected: ['spiffe://mesh/ns/default/sa/emoji'], missing: [] },
    { expected: ['spiffe://mesh/ns/default/sa/EMOJI'], missing: ['spiffe://mesh/ns/default/sa/EMOJI'] },
    { expected: ['198.18.1.3', '2001:DB8:0::7'], missing: [] },
    { expected: ['web-svc', 'emoji-svc', '*.emoji-svc'], missing: ['web-svc', '*.emoji-svc'] },
  ])('$expected', ({ expected, missing }) => {
    expect(missingSans(cert, expected)).toEqual(missing);
  });
});
