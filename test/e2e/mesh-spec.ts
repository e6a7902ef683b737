// The mesh the main end-to-end file shares across its scenarios:
//   web    198.18.0.11  pod A: egress routes of every kind, capture on
//   emoji  198.18.0.12  pod B: tproxy, mtls by default, a tls and a plaintext port
//   voting 198.18.0.13  pod C: mapped mode (app 8080, Envoy 18080)
//   outside 198.18.0.100 not meshed: the independent client, an excluded server
//   dns     198.18.0.101 not meshed: a DNS responder and a plain server
import type { LabSpec } from '../../src/demo/lab.js';

export const ADDR = {
  web: { v4: '198.18.0.11', v6: '2001:db8::11' },
  emoji: { v4: '198.18.0.12', v6: '2001:db8::12' },
  voting: { v4: '198.18.0.13', v6: '2001:db8::13' },
  outside: { v4: '198.18.0.100', v6: '2001:db8::100' },
  dns: { v4: '198.18.0.101', v6: '2001:db8::101' },
} as const;

export const ROUTE = {
  emoji: '127.137.0.1:8081',
  voting: '127.137.0.2:8081',
  /** No port: every port, kept as dialled. */
  emojiAny: '127.137.0.3',
  pinnedOk: '127.137.0.4:8081',
  pinnedBad: '127.137.0.5:8081',
  emojiV6: '127.137.0.6:8081',
} as const;

export const EMOJI_PORTS = { mtls: 8080, tls: 8443, plaintext: 7890, any1: 9090, any2: 9091 } as const;
export const VOTING_PORTS = { app: 8080, mapped: 18080 } as const;

export const MESH: LabSpec = {
  pods: [
    {
      name: 'web',
      app: { ports: [8080] },
      nameserver: ADDR.dns.v4,
      config: {
        ingress: { ports: [{ name: 'web', port: 8080, policy: 'tls' }] },
        egress: {
          routes: [
            { name: 'emoji', listen: ROUTE.emoji, remote: 'emoji-svc:8080' },
            { name: 'voting', listen: ROUTE.voting, remote: `voting-svc:${VOTING_PORTS.mapped}` },
            { name: 'emoji-any', listen: ROUTE.emojiAny, remote: 'emoji-svc' },
            { name: 'pinned-ok', listen: ROUTE.pinnedOk, remote: 'emoji-svc:8080', expectedSans: ['emoji-svc'] },
            { name: 'pinned-bad', listen: ROUTE.pinnedBad, remote: 'emoji-svc:8080', expectedSans: ['voting-svc'] },
            { name: 'emoji-v6', listen: ROUTE.emojiV6, remote: `[${ADDR.emoji.v6}]:8080` },
          ],
          capture: true,
          exclude: { cidrs: [`${ADDR.outside.v4}/32`, `${ADDR.outside.v6}/128`] },
        },
      },
    },
    {
      name: 'emoji',
      app: { ports: Object.values(EMOJI_PORTS) },
      config: {
        ingress: {
          mode: 'tproxy',
          default: 'mtls',
          ports: [
            { name: 'https', port: EMOJI_PORTS.tls, policy: 'tls' },
            { name: 'metrics', port: EMOJI_PORTS.plaintext, policy: 'plaintext' },
          ],
        },
      },
    },
    {
      name: 'voting',
      app: { ports: [VOTING_PORTS.app] },
      config: { ingress: { mode: 'mapped', ports: [{ name: 'http', port: VOTING_PORTS.app, mappedPort: VOTING_PORTS.mapped, policy: 'mtls' }] } },
    },
  ],
  hosts: [
    { name: 'outside', app: { ports: [8080] } },
    { name: 'dns', app: { ports: [8080] }, dns: { 'db.mesh.test': { A: [ADDR.outside.v4], AAAA: [ADDR.outside.v6] } } },
  ],
};
