// Inbound listeners: one transparent listener for tproxy mode (RFC Routing 2),
// or one plain listener per mapped port (RFC Routing 1).
import { keyExchangeOf, reservedPorts, type IngressPort, type MeshConfig, type Policy } from '../../config/model.js';
import { TYPE, TYPE_URL, typeUrl, type JsonObject } from '../protos.js';
import { blackholeChain, policyChain } from './chains.js';
import { dualStack, originalDstFilter } from './envoy-json.js';
import { CLUSTER, LISTENER } from './names.js';
import type { DownstreamOptions, SecretSource } from './tls.js';
const { createHash } = process.getBuiltinModule('node:crypto');

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
 * cost Envoy a map of 1000 short strings instead of 1000 TLS contexts.
 *
 * Envoy drains a chain only when the chain itself changes, never for a
 * matcher edit. So when a port moves to a stricter policy, the chain it left
 * gets its next generation in `generations` (nextChainGenerations): renamed,
 * Envoy drains the old one, and connections accepted under the weaker policy
 * end within Envoy's drain time, together with the other connections of that
 * chain.
 */
export function inboundTproxyListener(c: MeshConfig, source: SecretSource, generations: ChainGenerations = NO_GENERATIONS): JsonObject {
  const name = LISTENER.inbound;
  const named = (chain: string): string => {
    const g = generations.get(chain) ?? 0;
    return g > 0 ? `${chain}-g${g}` : chain;
  };
  const chains = new Map<string, JsonObject>();
  const chainOf: Record<string, string> = {};
  for (const [port, pc] of inboundPortChains(c)) {
    const chain = named(pc.name);
    if (!chains.has(chain)) chains.set(chain, policyChain(chain, undefined, pc.policy, pc.sans, CLUSTER.inboundApp, source, pc.opts));
    chainOf[String(port)] = chain;
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
    default_filter_chain: policyChain(named(DEFAULT_CHAIN), undefined, c.ingress.default, [], CLUSTER.inboundApp, source, {
      keyExchange: keyExchangeOf(c),
    }),
  };
}

/** Chain name → generation (absent: 0). */
export type ChainGenerations = ReadonlyMap<string, number>;
const NO_GENERATIONS: ChainGenerations = new Map();
const DEFAULT_CHAIN = `${LISTENER.inbound}-default`;

/** What a port's chain enforces, reduced to what changes the chain (see downstreamTls). */
interface PortChain {
  name: string;
  policy: Policy;
  sans: string[];
  opts: Required<DownstreamOptions>;
}

function portChain(policy: Policy, allowedSans: readonly string[], opts: Required<DownstreamOptions>): PortChain {
  // Only mtls checks the client's SANs, only tls may allow TLS 1.2, plaintext has no key exchange.
  const sans = policy === 'mtls' ? [...new Set(allowedSans)].sort() : [];
  const reduced = { ...opts, allowTls12: policy === 'tls' && opts.allowTls12 };
  return { name: policyChainName(LISTENER.inbound, policy, sans, reduced), policy, sans, opts: reduced };
}

/** The chain of every listed port. Two ports get one name only if their chains are the same; anything else is refused. */
function inboundPortChains(c: MeshConfig): Map<number, PortChain> {
  const out = new Map<number, PortChain>();
  const content = new Map<string, string>();
  for (const p of c.ingress.ports) {
    const pc = portChain(p.policy, p.allowedSans, { allowTls12: p.allowTls12, keyExchange: keyExchangeOf(c, p) });
    const what = JSON.stringify([pc.policy, pc.sans, pc.policy === 'plaintext' ? {} : pc.opts]);
    const before = content.get(pc.name);
    // Unreachable unless 48 bits of SHA-256 collide or a new option is missing from the name: fail closed, never merge two policies.
    if (before !== undefined && before !== what) throw new Error(`ingress.ports: port ${p.port} would share chain ${pc.name} with a different policy`);
    content.set(pc.name, what);
    out.set(p.port, pc);
  }
  return out;
}

/**
 * The chain generations after an edit from `prev` to `next`: a chain that a
 * listed port left for a stricter policy, and that other ports still use,
 * moves to its next generation, so Envoy drains the connections it accepted
 * under the weaker one. A port that left for a looser policy drains nothing,
 * nor does a chain that is gone (Envoy drains a removed chain by itself).
 * Generations live as long as the process: a new meshlet starts a new Envoy.
 */
export function nextChainGenerations(prev: MeshConfig, next: MeshConfig, generations: ChainGenerations): ChainGenerations {
  if (prev.ingress.mode !== 'tproxy' || next.ingress.mode !== 'tproxy') return NO_GENERATIONS;
  const [before, after] = [inboundPortChains(prev), inboundPortChains(next)];
  const [defBefore, defAfter] = [defaultChain(prev), defaultChain(next)];
  const kept = new Set([DEFAULT_CHAIN, ...[...after.values()].map((pc) => pc.name)]);
  const drain = new Set<string>();
  for (const port of new Set([...before.keys(), ...after.keys()])) {
    const from = before.get(port) ?? defBefore;
    const to = after.get(port) ?? defAfter;
    if (from.name === to.name || looserOrEqual(from, to)) continue;
    const left = before.has(port) ? from.name : DEFAULT_CHAIN;
    if (kept.has(left)) drain.add(left);
  }
  const out = new Map<string, number>();
  for (const chain of kept) {
    const g = (generations.get(chain) ?? 0) + (drain.has(chain) ? 1 : 0);
    if (g > 0) out.set(chain, g);
  }
  return out;
}

function defaultChain(c: MeshConfig): PortChain {
  return portChain(c.ingress.default, [], { allowTls12: false, keyExchange: keyExchangeOf(c) });
}

const RANK: Readonly<Record<Policy, number>> = { plaintext: 0, tls: 1, mtls: 2 };

/** Whether every client `from` admitted is admitted by `to` as well (so an open connection of `from` breaks no rule of `to`). */
function looserOrEqual(from: PortChain, to: PortChain): boolean {
  if (RANK[to.policy] !== RANK[from.policy]) return RANK[to.policy] < RANK[from.policy];
  if (to.policy === 'plaintext') return true;
  if (to.opts.keyExchange === 'pq-required' && from.opts.keyExchange !== 'pq-required') return false;
  if (to.policy === 'tls') return to.opts.allowTls12 || !from.opts.allowTls12;
  // mtls: no SAN list admits any mesh client; a list admits its own SANs.
  if (to.sans.length === 0) return true;
  return from.sans.length > 0 && from.sans.every((s) => to.sans.includes(s));
}

/**
 * The name of the inbound chain for one policy: meshlet-inbound-mtls,
 * meshlet-inbound-tls-tls12, meshlet-inbound-mtls-pq-required,
 * meshlet-inbound-mtls-sans-1a2b3c4d5e6f (the first 12 hex digits of SHA-256
 * over the sorted SAN list), and a -g<n> suffix from its generation. Only
 * what changes the chain is in the name, so equal chains share a name; the
 * access log carries it as `chain`, next to the port in `downstream_local`.
 */
function policyChainName(listener: string, policy: Policy, sortedSans: readonly string[], opts: Required<DownstreamOptions>): string {
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
