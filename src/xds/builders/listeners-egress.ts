// Outbound listeners: one per egress route with a port, one shared listener
// for every portless route, and the capture listener (RFC Step 3).
import { isIP } from '../../config/net.js';
import type { EgressRoute, MeshConfig } from '../../config/model.js';
import { TYPE, TYPE_URL, typeUrl, type JsonObject } from '../protos.js';
import { blackholeChain } from './chains.js';
import { cidrRange, dualStack, originalDstFilter, socketAddress, tcpProxy } from './envoy-json.js';
import { ownPorts } from './listeners-inbound.js';
import { CLUSTER, LISTENER } from './names.js';
import { dnsCacheConfig, keepsDialledPort } from './clusters-egress.js';
import { BuildMemo } from './memo.js';

/** iptables REDIRECTs locally generated connections to loopback (127.0.0.1 / ::1), whatever they dialled. */
const REDIRECT_V4 = '127.0.0.1';
const REDIRECT_V6 = '::1';

const routeMemo = new BuildMemo();

/** One listener per route with a port; a route's listener depends on the route alone. */
export function routeListeners(c: MeshConfig): JsonObject[] {
  const withPort = c.egress.routes.filter((r): r is EgressRoute & { listenPort: number } => r.listenPort !== undefined);
  return routeMemo.map(withPort, (r) => JSON.stringify(r), routeListener);
}

function routeListener(r: EgressRoute & { listenPort: number }): JsonObject {
  const name = LISTENER.route(r);
  return {
    '@type': TYPE_URL.listener,
    name,
    stat_prefix: name,
    address: socketAddress(r.listenIp, r.listenPort),
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ name, filters: [tcpProxy(name, CLUSTER.route(r))] }],
  };
}

/**
 * Portless routes dial remoteHost at the port the app dialled: set_filter_state
 * names the host and copies the original destination port, the
 * sni_dynamic_forward_proxy filter holds the connection until the shared DNS
 * cache has the host (without it the first connection to a new host:port
 * fails), and tcp_proxy hands it to the route's dynamic-forward-proxy cluster.
 * https://www.envoyproxy.io/docs/envoy/latest/configuration/advanced/well_known_filter_state
 */
function portlessFilters(r: EgressRoute, name: string): JsonObject[] {
  const proxy = tcpProxy(name, CLUSTER.route(r));
  if (!keepsDialledPort(r)) return [proxy];
  const value = (s: string): JsonObject => ({ text_format_source: { inline_string: s } });
  return [
    {
      name: 'envoy.filters.network.set_filter_state',
      typed_config: {
        '@type': typeUrl(TYPE.setFilterState),
        on_new_connection: [
          // The DNS cache keys hosts as host:port, so an IPv6 literal needs brackets.
          { object_key: 'envoy.upstream.dynamic_host', format_string: value(isIP(r.remoteHost) === 6 ? `[${r.remoteHost}]` : r.remoteHost) },
          { object_key: 'envoy.upstream.dynamic_port', format_string: value('%DOWNSTREAM_LOCAL_PORT%') },
        ],
      },
    },
    {
      name: 'envoy.filters.network.sni_dynamic_forward_proxy',
      typed_config: { '@type': typeUrl(TYPE.sniDfp), dns_cache_config: dnsCacheConfig() },
    },
    proxy,
  ];
}

/**
 * iptables REDIRECTs `-d listenIp` to the portless port, which lands on
 * 127.0.0.1; original_dst restores listenIp:dialledPort, and each route's
 * chain matches its listenIp. Unmatched connections have no chain and are closed.
 */
export function portlessListener(c: MeshConfig): JsonObject | undefined {
  const routes = c.egress.routes.filter((r) => r.listenPort === undefined);
  if (routes.length === 0) return undefined;
  return {
    '@type': TYPE_URL.listener,
    name: LISTENER.portless,
    stat_prefix: LISTENER.portless,
    address: socketAddress(REDIRECT_V4, c.proxy.portlessEgressPort),
    traffic_direction: 'OUTBOUND',
    listener_filters: [originalDstFilter()],
    filter_chains: routes.map((r) => {
      const name = LISTENER.route(r);
      return { name, filter_chain_match: { prefix_ranges: [cidrRange(r.listenIp, 32)] }, filters: portlessFilters(r, name) };
    }),
  };
}

/**
 * Captured outbound TCP goes to its original destination in mTLS, except the
 * configured exclusions (plaintext, as if never captured; iptables normally
 * keeps them away) and loopback connections to the proxy's own ports, which
 * would loop.
 */
export function outboundListener(c: MeshConfig): JsonObject {
  const name = LISTENER.outbound;
  const loopback = { prefix_ranges: [cidrRange('127.0.0.0', 8), cidrRange('::1', 128)] };
  const chains = ownPorts(c).map((port) => blackholeChain(name, port, loopback));
  for (const port of [...new Set(c.egress.exclude.ports)]) {
    const chain = `${name}-exclude-${port}`;
    chains.push({ name: chain, filter_chain_match: { destination_port: port }, filters: [tcpProxy(chain, CLUSTER.passthrough)] });
  }
  const cidrs = [...new Map(c.egress.exclude.cidrs.map((x) => [x.text, x])).values()];
  if (cidrs.length > 0) {
    const chain = `${name}-exclude-cidrs`;
    chains.push({
      name: chain,
      filter_chain_match: { prefix_ranges: cidrs.map((x) => cidrRange(x.address, x.prefix)) },
      filters: [tcpProxy(chain, CLUSTER.passthrough)],
    });
  }
  return {
    '@type': TYPE_URL.listener,
    name,
    stat_prefix: name,
    ...dualStack(c.proxy.outboundPort, REDIRECT_V4, REDIRECT_V6),
    traffic_direction: 'OUTBOUND',
    listener_filters: [originalDstFilter()],
    filter_chains: chains,
    default_filter_chain: { name: `${name}-mtls`, filters: [tcpProxy(`${name}-mtls`, CLUSTER.outboundMtls)] },
  };
}
