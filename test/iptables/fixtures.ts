// Configs for every mode, shared by the golden and the namespace tests.
import { validConfigWithResolvers } from '../helpers/config.js';
import type { MeshConfig } from '../../src/config/model.js';

/** The pod's resolv.conf in every fixture: the harness's outside hosts (harness.ts ADDR.remoteV4/V6). */
export const RESOLV_CONF = 'nameserver 198.18.5.5\nnameserver 2001:db8:5::5\n';

export function config(raw: unknown, resolvConf = RESOLV_CONF): MeshConfig {
  return validConfigWithResolvers(raw, resolvConf);
}

/** 17 excluded ports: more than one multiport rule can hold. */
export const MANY_PORTS = Array.from({ length: 17 }, (_, i) => 9000 + i);

export const CASES: Record<string, unknown> = {
  'tproxy-mixed': {
    ingress: {
      mode: 'tproxy',
      default: 'mtls',
      ports: [
        { name: 'web', port: 8080, policy: 'tls' },
        { name: 'metrics', port: 7890, policy: 'plaintext' },
        { name: 'api', port: 9443, policy: 'mtls' },
        { name: 'admin', port: 9901, policy: 'plaintext' },
      ],
    },
  },
  'tproxy-default-plaintext': {
    ingress: {
      mode: 'tproxy',
      default: 'plaintext',
      ports: [
        { name: 'web', port: 8080, policy: 'tls' },
        { name: 'api', port: 8443, policy: 'mtls' },
      ],
    },
  },
  /** Mapped with default mtls (the default): every unlisted port is closed too. */
  mapped: {
    ingress: {
      mode: 'mapped',
      ports: [
        { name: 'web', port: 8080, policy: 'tls', mappedPort: 18080 },
        { name: 'api', port: 9090, policy: 'mtls', mappedPort: 19090 },
        { name: 'metrics', port: 7890, policy: 'plaintext' },
      ],
    },
  },
  /** Mapped with default plaintext: only the listed app ports are closed. */
  'mapped-default-plaintext': {
    ingress: { mode: 'mapped', default: 'plaintext', ports: [{ name: 'web', port: 8080, policy: 'tls', mappedPort: 18080 }] },
  },
  disabled: { ingress: { mode: 'disabled' } },
  capture: {
    ingress: { mode: 'disabled' },
    egress: {
      capture: true,
      exclude: { ports: [...MANY_PORTS].reverse(), cidrs: ['198.18.6.7/24', '2001:db8:6:0:1::/48', '198.19.0.1'] },
    },
  },
  /** Capture with non-TCP allowed in clear (explicit opt-out of the drop). */
  'capture-nontcp-allow': {
    ingress: { mode: 'disabled' },
    egress: { capture: true, nonTcp: 'allow' },
  },
  /** No capture, but non-TCP dropped (explicit opt-in). */
  'nontcp-drop': {
    ingress: { mode: 'disabled' },
    egress: { nonTcp: 'drop' },
  },
  portless: {
    ingress: { mode: 'disabled' },
    egress: {
      routes: [
        { name: 'emoji', listen: '127.137.0.1:8081', remote: 'emoji-svc:8080' },
        { name: 'db', listen: '127.137.0.2', remote: 'db-svc' },
        { name: 'cache', listen: '127.137.0.3', remote: 'cache-svc:6379' },
      ],
    },
  },
  full: {
    ingress: { mode: 'tproxy', ports: [{ name: 'metrics', port: 7890, policy: 'plaintext' }] },
    egress: { capture: true, routes: [{ name: 'db', listen: '127.137.0.2', remote: 'db-svc' }], exclude: { ports: [5432], cidrs: ['198.18.6.0/24'] } },
  },
  /** DNS capture alone: meshlet runs as the proxy uid (the default), so only 1337 is exempt. */
  dns: {
    ingress: { mode: 'disabled' },
    egress: { routes: [{ name: 'emoji', listen: '127.137.0.1:8080', remote: 'emoji-svc:8080', names: ['emoji-svc'] }] },
    dns: { enabled: true },
  },
  /** DNS capture with everything else, a custom address and meshlet running as its own uid. */
  'dns-full': {
    ingress: { mode: 'tproxy', ports: [{ name: 'metrics', port: 7890, policy: 'plaintext' }] },
    egress: {
      capture: true,
      routes: [{ name: 'db', listen: '127.137.0.2', remote: 'db-svc', names: ['db-svc', 'db.example.test'] }],
      exclude: { ports: [5432], cidrs: ['198.18.6.0/24'] },
    },
    dns: { enabled: true, address: '127.0.0.53:5353', meshletUid: 1500 },
  },
};
