// Inbound listeners: one transparent listener for tproxy mode (RFC Routing 2),
// or one plain listener per mapped port (RFC Routing 1).
import { createHash } from 'node:crypto';
import { keyExchangeOf, reservedPorts, type IngressPort, type MeshConfig, type Policy } from '../../config/model.js';
import { TYPE, TYPE_URL, typeUrl, type JsonObject } from '../protos.js';
import { blackholeChain, policyChain } from './chains.js';
import { dualStack, originalDstFilter } from './envoy-json.js';
import { CLUSTER, LISTENER } from './names.js';
import type { DownstreamOptions, SecretSource } from './tls.js';

/** The proxy's own ports (inbound, outbound, portless, admin, debug), sorted and unique. */
export function ownPorts(c: Pick<MeshConfig, 'proxy' | 'debug'>): number[] {
  return [...new Set(reservedPorts(c).keys())].sort((a, b) => a - b);
}

/**
 * `0.0.0.0` and `[::]` on the inbound port, transparent so TPROXY'd sockets
 * are accepted. original_dst restores the destination the client dialled, and
 * a matcher on its port picks the chain. No tls_inspector: no chain matches on
 * SNI or ALPN, and it would stall server-first protocols on plaintext ports.
 *
 * Ports with the same policy share one chain (named by the policy, see
 * policyChainName), and the matcher maps each port to its chain. So the chain
 * count is the number of distinct policies, not of ports: an edit that moves
 * one port to another policy changes one entry of the map, Envoy updates the
 * listener in place (no chain it keeps is rebuilt or drained), and 1000 ports
 * cost Envoy a map of 1000 short strings instead of 1000 TLS contexts. A
 * port's existing connections keep the chain they were accepted on; new ones
 * get the new policy.
 */
export function inboundTproxyListener(c: MeshConfig, source: SecretSource): JsonObject {
  const name = LISTENER.inbound;
  const chains = new Map<string, JsonObject>();
  const chainOf: Record<string, string> = {};
  for (const p of c.ingress.ports) {
    const opts = { allowTls12: p.allowTls12, keyExchange: keyExchangeOf(c, p) };
    const sans = [...new Set(p.allowedSans)].sort();
    const chain = policyChainName(name, p.policy, sans, opts);
    if (!chains.has(chain)) chains.set(chain, policyChain(chain, undefined, p.policy, sans, CLUSTER.inboundApp, source, opts));
    chainOf[String(p.port)] = chain;
  }
  // Last, so that no port can map one of the proxy's own ports anywhere else.
  const blackhole = `${name}-blackhole`;
  chains.set(blackhole, blackholeChain(blackhole));
  for (const port of ownPorts(c)) chainOf[String(port)] = blackhole;
  return {
    '@type': TYPE_URL.listener,
    name,
    stat_prefix: name,
    ...dualStack(c.proxy.inboundPort),
    transparent: true,
    traffic_direction: 'INBOUND',
    listener_filters: [originalDstFilter()],
    // Sorted by name: the order of ports in the config changes nothing.
    filter_chains: [...chains.keys()].sort().map((k) => chains.get(k) as JsonObject),
    filter_chain_matcher: destinationPortMatcher(chainOf),
    // Unlisted ports get ingress.default (the matcher has no entry for them).
    // When that is plaintext, iptables does not redirect them, so only stale
    // rules send them here, and plaintext to the app is what the config asks for.
    default_filter_chain: policyChain(`${name}-default`, undefined, c.ingress.default, [], CLUSTER.inboundApp, source, { keyExchange: keyExchangeOf(c) }),
  };
}

/**
 * The name of the inbound chain for one policy: meshlet-inbound-mtls,
 * meshlet-inbound-tls-tls12, meshlet-inbound-mtls-pq-required,
 * meshlet-inbound-mtls-sans-1a2b3c4d5e6f (the first 12 hex digits of SHA-256
 * over the sorted SAN list). Only what changes the chain is in the name, so
 * equal chains share a name; the access log
 * carries it as `chain`, next to the port in `downstream_local`.
 */
export function policyChainName(listener: string, policy: Policy, sortedSans: readonly string[], opts: Required<DownstreamOptions>): string {
  let n = `${listener}-${policy}`;
  if (policy === 'plaintext') return n;
  if (policy === 'tls' && opts.allowTls12) n += '-tls12';
  if (opts.keyExchange !== 'pq-preferred') n += `-${opts.keyExchange}`;
  // Only mtls checks the client's SANs (tls asks for no client certificate).
  if (policy === 'mtls' && sortedSans.length > 0) n += `-sans-${createHash('sha256').update(JSON.stringify(sortedSans)).digest('hex').slice(0, 12)}`;
  return n;
}

/** Envoy's filter chain matcher: the connection's destination port, looked up in `chainOf` (port → chain name). */
function destinationPortMatcher(chainOf: Record<string, string>): JsonObject {
  const map: JsonObject = {};
  // One object per chain, shared by its ports: the encoder writes a shared value once and copies its bytes.
  const onMatch = new Map<string, JsonObject>();
  for (const [port, chain] of Object.entries(chainOf)) {
    let m = onMatch.get(chain);
    if (!m) onMatch.set(chain, (m = { action: { name: chain, typed_config: { '@type': typeUrl(TYPE.stringValue), value: chain } } }));
    map[port] = m;
  }
  return {
    matcher_tree: {
      input: { name: 'destination-port', typed_config: { '@type': typeUrl(TYPE.destinationPortInput) } },
      exact_match_map: { map },
    },
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
