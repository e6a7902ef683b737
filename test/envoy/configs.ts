// Configs shared by the builder tables and the real-Envoy checks.
import { validConfig } from '../helpers/config.js';
import type { MeshConfig } from '../../src/config/model.js';
import type { RawConfigInput } from '../../src/config/schema.js';
import type { CertState } from '../../src/certs/types.js';

export function meshConfig(raw: RawConfigInput): MeshConfig {
  return validConfig(raw);
}

/** Every feature at once: tproxy ingress (mtls, tls, plaintext, allowedSans), routes with and without ports, SNI, SAN pins, capture with exclusions. */
export const FULL: RawConfigInput = {
  ingress: {
    mode: 'tproxy',
    default: 'mtls',
    ports: [
      { name: 'web', port: 8080, policy: 'tls' },
      { name: 'metrics', port: 7890, policy: 'plaintext' },
      { name: 'db', port: 5432, policy: 'mtls', allowedSans: ['spiffe://mesh.test/ns/a/sa/client', 'client.mesh.test', '198.18.0.7'] },
      { name: 'grpc', port: 9090 },
      { name: 'legacy', port: 8444, policy: 'tls', allowTls12: true },
    ],
  },
  egress: {
    routes: [
      { name: 'emoji', listen: '127.137.0.1:8081', remote: 'emoji-svc:8080' },
      { name: 'voting', listen: '127.137.0.5:8081', remote: 'voting-svc', sni: 'voting.mesh.test', expectedSans: ['voting.mesh.test'] },
      { name: 'db', listen: '127.137.0.2', remote: 'db-svc' },
      { name: 'ip', listen: '127.137.0.3', remote: '198.18.0.10', expectedSans: ['spiffe://mesh.test/ns/b/sa/ip'] },
      { name: 'fixed', listen: '127.137.0.4', remote: '[2001:db8::10]:443', sni: 'fixed.mesh.test' },
      { name: 'v4ip', listen: '127.137.0.6:9000', remote: '198.18.0.11:9443' },
    ],
    capture: true,
    exclude: { ports: [22, 3306], cidrs: ['198.19.0.0/16', '2001:db8:1::/48'] },
  },
};

export const MAPPED: RawConfigInput = {
  ingress: {
    mode: 'mapped',
    ports: [
      { name: 'web', port: 8080, mappedPort: 18080, policy: 'tls', allowTls12: true },
      { name: 'db', port: 5432, mappedPort: 15432, policy: 'mtls', allowedSans: ['client.mesh.test'] },
      { name: 'metrics', port: 7890, policy: 'plaintext' },
    ],
  },
};

export const DISABLED: RawConfigInput = {
  ingress: { mode: 'disabled' },
  egress: { routes: [{ name: 'emoji', listen: '127.137.0.1:8081', remote: 'emoji-svc:8080' }] },
};

/** Placeholder PEMs: enough for builders and the encoder; real Envoy runs use tmp-pki. */
export const FAKE_CERTS: CertState = { caPem: 'CA-PEM', chainPem: 'CHAIN-PEM', keyPem: 'KEY-PEM' };
