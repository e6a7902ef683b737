// Inbound listeners: one transparent listener for tproxy mode (RFC Routing 2),
// or one plain listener per mapped port (RFC Routing 1).
import { keyExchangeOf, reservedPorts, type IngressPort, type MeshConfig } from '../../config/model.js';
import { TYPE_URL, type JsonObject } from '../protos.js';
import { blackholeChain, policyChain } from './chains.js';
import { dualStack, originalDstFilter } from './envoy-json.js';
import { CLUSTER, LISTENER } from './names.js';
import type { SecretSource } from './tls.js';

/** The proxy's own ports (inbound, outbound, portless, admin, debug), sorted and unique. */
export function ownPorts(c: Pick<MeshConfig, 'proxy' | 'debug'>): number[] {
  return [...new Set(reservedPorts(c).keys())].sort((a, b) => a - b);
}

/**
 * `0.0.0.0` and `[::]` on the inbound port, transparent so TPROXY'd sockets
 * are accepted. original_dst restores the destination the client dialled, and
 * chains match on its port. No tls_inspector: no chain matches on SNI or ALPN,
 * and it would stall server-first protocols on plaintext ports.
 */
export function inboundTproxyListener(c: MeshConfig, source: SecretSource): JsonObject {
  const name = LISTENER.inbound;
  const chains = [
    ...ownPorts(c).map((port) => blackholeChain(name, port)),
    ...c.ingress.ports.map((p) =>
      policyChain(`${name}-${p.port}`, { destination_port: p.port }, p.policy, p.allowedSans, CLUSTER.inboundApp, source, {
        allowTls12: p.allowTls12,
        keyExchange: keyExchangeOf(c, p),
      }),
    ),
  ];
  return {
    '@type': TYPE_URL.listener,
    name,
    stat_prefix: name,
    ...dualStack(c.proxy.inboundPort),
    transparent: true,
    traffic_direction: 'INBOUND',
    listener_filters: [originalDstFilter()],
    filter_chains: chains,
    // Unlisted ports get ingress.default. When that is plaintext, iptables
    // does not redirect them, so only stale rules send them here, and
    // plaintext to the app is what the config asks for.
    default_filter_chain: policyChain(`${name}-default`, undefined, c.ingress.default, [], CLUSTER.inboundApp, source, { keyExchange: keyExchangeOf(c) }),
  };
}

export function mappedPorts(c: MeshConfig): (IngressPort & { mappedPort: number })[] {
  return c.ingress.ports.filter((p): p is IngressPort & { mappedPort: number } => p.mappedPort !== undefined && p.policy !== 'plaintext');
}

/** One listener per mapped port, both families, applying the port's policy. */
export function mappedListeners(c: MeshConfig, source: SecretSource): JsonObject[] {
  return mappedPorts(c).map((p) => {
    const name = LISTENER.mapped(p);
    return {
      '@type': TYPE_URL.listener,
      name,
      stat_prefix: name,
      ...dualStack(p.mappedPort),
      traffic_direction: 'INBOUND',
      filter_chains: [
        policyChain(name, undefined, p.policy, p.allowedSans, CLUSTER.mappedApp(p), source, { allowTls12: p.allowTls12, keyExchange: keyExchangeOf(c, p) }),
      ],
    };
  });
}
