// resolv.conf parsing and the name table: which query names meshlet answers,
// with Kubernetes' search path and ndots:5 as the main case.
import { describe, expect, it } from 'vitest';
import { parseResolvConf } from '../../src/dns/resolv.js';
import { buildNameTable } from '../../src/dns/table.js';
import type { EgressRoute } from '../../src/config/model.js';

const K8S = `# written by the kubelet
search demo.svc.cluster.local svc.cluster.local cluster.local
nameserver 198.18.0.53
options ndots:5
`;

describe('resolv.conf', () => {
  it.each([
    [
      'a Kubernetes pod',
      K8S,
      { nameservers: [{ ip: '198.18.0.53', port: 53 }], search: ['demo.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], ndots: 5 },
    ],
    [
      'no nameserver: the local machine, as glibc does',
      'search a.test\n',
      {
        nameservers: [
          { ip: '127.0.0.1', port: 53 },
          { ip: '::1', port: 53 },
        ],
        search: ['a.test'],
        ndots: 1,
      },
    ],
    [
      'an empty file',
      '',
      {
        nameservers: [
          { ip: '127.0.0.1', port: 53 },
          { ip: '::1', port: 53 },
        ],
        search: [],
        ndots: 1,
      },
    ],
    [
      'at most three nameservers; IPv6 and scoped; junk skipped',
      'nameserver 198.18.0.1\nnameserver not-an-ip\nnameserver 2001:db8::53\nnameserver fe80::1%eth0\nnameserver 198.18.0.4\n',
      {
        nameservers: [
          { ip: '198.18.0.1', port: 53 },
          { ip: '2001:db8::53', port: 53 },
          { ip: 'fe80::1%eth0', port: 53 },
        ],
        search: [],
        ndots: 1,
      },
    ],
    ['the last search or domain line wins', 'search a.test b.test\ndomain C.Test.\n', { search: ['c.test'] }],
    ['trailing dots, case and duplicates in search', 'search A.test. a.test b.test..\n', { search: ['a.test', 'b.test'] }],
    ['comments and blank lines', '; comment\n# nameserver 198.18.0.9\n\n  nameserver   198.18.0.8  \n', { nameservers: [{ ip: '198.18.0.8', port: 53 }] }],
    ['ndots capped at 15, other options ignored', 'options rotate ndots:30 timeout:1\n', { ndots: 15 }],
    ['a bad ndots is ignored', 'options ndots:x ndots:\n', { ndots: 1 }],
  ])('%s', (_what, text, want) => {
    expect(parseResolvConf(text)).toMatchObject(want);
  });
});

const route = (name: string, listenIp: string, names: string[]): EgressRoute => ({ name, listenIp, remoteHost: `${name}-svc`, expectedSans: [], names });
const SEARCH = ['demo.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];

describe('name table', () => {
  const table = buildNameTable(
    [
      route('emoji', '127.137.0.1', ['emoji-svc']),
      route('voting', '127.137.0.2', ['voting-svc.demo.svc.cluster.local']),
      route('api', '127.137.0.3', ['api.example.test']),
    ],
    SEARCH,
  );

  it.each([
    // A short name: what glibc sends with ndots:5 (first search domain first), and every other form.
    ['emoji-svc.demo.svc.cluster.local', 'emoji'],
    ['emoji-svc.svc.cluster.local', 'emoji'],
    ['emoji-svc.cluster.local', 'emoji'],
    ['emoji-svc', 'emoji'],
    ['EMOJI-SVC.Demo.Svc.Cluster.Local.', 'emoji'],
    // What the client tries first for the fully qualified form with ndots:5: answered at once.
    ['emoji-svc.demo.svc.cluster.local.demo.svc.cluster.local', 'emoji'],
    ['emoji-svc.svc.cluster.local.cluster.local', 'emoji'],
    // A fully qualified name: itself, its short forms, and what the client tries first with ndots:5.
    ['voting-svc.demo.svc.cluster.local', 'voting'],
    ['voting-svc', 'voting'],
    ['voting-svc.demo', 'voting'],
    ['voting-svc.demo.svc', 'voting'],
    ['voting-svc.demo.svc.cluster.local.demo.svc.cluster.local', 'voting'],
    // An outside name: itself and with each search domain appended.
    ['api.example.test', 'api'],
    ['api.example.test.demo.svc.cluster.local', 'api'],
    ['api.example.test.cluster.local', 'api'],
    // Not ours.
    ['other-svc.demo.svc.cluster.local', undefined],
    ['emoji-svc.other.svc.cluster.local', undefined],
    ['emoji', undefined],
    ['svc-emoji', undefined],
    ['api.example', undefined],
    ['example.test', undefined],
    ['', undefined],
    ['emoji-svc\\.demo.svc.cluster.local', undefined],
  ])('%s -> %s', (qname, want) => {
    expect(table.lookup(qname)?.route).toBe(want);
    if (want) expect(table.lookup(qname)?.ip).toMatch(/^127\.137\.0\.\d$/);
  });

  it('names as configured win over expansions; earlier routes win among expansions', () => {
    const t = buildNameTable(
      [
        route('short', '127.137.0.1', ['db']),
        route('full', '127.137.0.2', ['db.demo.svc.cluster.local']),
        route('later', '127.137.0.3', ['db.svc.cluster.local']),
      ],
      SEARCH,
    );
    expect(t.lookup('db.demo.svc.cluster.local')?.route).toBe('full');
    expect(t.lookup('db')?.route).toBe('short');
    expect(t.lookup('db.svc.cluster.local')?.route).toBe('later');
    expect(t.lookup('db.cluster.local')?.route).toBe('short');
  });

  it('without search domains only the names themselves match', () => {
    const t = buildNameTable([route('emoji', '127.137.0.1', ['emoji-svc'])], []);
    expect(t.entries()).toEqual([['emoji-svc', 'emoji']]);
  });

  it('lists every answered name: the forms, then each form with each search domain', () => {
    const t = buildNameTable([route('emoji', '127.137.0.1', ['emoji-svc'])], ['demo.test', 'test']);
    expect(t.entries().map(([n]) => n)).toEqual([
      'emoji-svc',
      'emoji-svc.demo.test',
      'emoji-svc.demo.test.demo.test',
      'emoji-svc.demo.test.test',
      'emoji-svc.test',
      'emoji-svc.test.demo.test',
      'emoji-svc.test.test',
    ]);
    expect(buildNameTable([route('none', '127.137.0.9', [])], SEARCH).size).toBe(0);
  });
});
