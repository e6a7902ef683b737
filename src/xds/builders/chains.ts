// Filter chains shared by the listener builders: the per-policy chain and the
// blackhole chain.
import type { Policy } from '../../config/model.js';
import type { JsonObject } from '../protos.js';
import { tcpProxy } from './envoy-json.js';
import { CLUSTER } from './names.js';
import { downstreamTls, type DownstreamOptions, type SecretSource } from './tls.js';

/**
 * A chain that applies `policy` and hands the connection to `cluster`.
 * plaintext has no transport socket: Envoy applies whatever policy the config
 * gives the port it sees; iptables only decides what reaches Envoy.
 */
export function policyChain(
  name: string,
  match: JsonObject | undefined,
  policy: Policy,
  allowedSans: readonly string[],
  cluster: string,
  source: SecretSource,
  tls: DownstreamOptions = {},
): JsonObject {
  const chain: JsonObject = { name };
  if (match) chain['filter_chain_match'] = match;
  if (policy !== 'plaintext') chain['transport_socket'] = downstreamTls(policy, allowedSans, source, tls);
  chain['filters'] = [tcpProxy(name, cluster)];
  return chain;
}

/**
 * A connection whose original destination is one of the proxy's own ports is
 * closed, never forwarded: forwarding it would dial Envoy itself in a loop
 * (https://github.com/edgelesssys/contrast/issues/1142). With `port`, the
 * chain matches that port itself (plus `extraMatch`); without, a matcher
 * picks it and `name` is the chain's whole name.
 */
export function blackholeChain(name: string, port?: number, extraMatch: JsonObject = {}): JsonObject {
  if (port === undefined) return { name, filters: [tcpProxy(name, CLUSTER.blackhole)] };
  const chain = `${name}-blackhole-${port}`;
  return { name: chain, filter_chain_match: { destination_port: port, ...extraMatch }, filters: [tcpProxy(chain, CLUSTER.blackhole)] };
}
