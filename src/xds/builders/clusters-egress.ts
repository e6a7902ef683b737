// Clusters for egress routes and capture: every one originates mTLS with the
// workload certificate and trusts the mesh CA, except the capture exclusions.
import { isIP } from '../../config/net.js';
import { keyExchangeOf, type EgressRoute, type MeshConfig } from '../../config/model.js';
import { TYPE, TYPE_URL, typeUrl, type JsonObject } from '../protos.js';
import { noCircuitBreaking, socketAddress } from './envoy-json.js';
import { CLUSTER, DNS_CACHE } from './names.js';
import { upstreamTls, type SecretSource } from './tls.js';

export const CONNECT_TIMEOUT = '5s';

/**
 * The one DNS cache config of the portless routes' dynamic-forward-proxy
 * clusters and filters; Envoy requires every user of a cache name to carry
 * the same config. V4_PREFERRED: A records first, AAAA when there are none.
 */
export function dnsCacheConfig(): JsonObject {
  return { name: DNS_CACHE, dns_lookup_family: 'V4_PREFERRED' };
}

/** No listen port and no remote port: the remote is dialled at the port the app dialled. */
export function keepsDialledPort(r: EgressRoute): boolean {
  return r.listenPort === undefined && r.remotePort === undefined;
}

/** A single remote: STATIC for an IP literal, STRICT_DNS for a name (every A record is an endpoint). */
function fixedEndpoint(name: string, host: string, port: number): JsonObject {
  const load_assignment = { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(host, port) } }] }] };
  if (isIP(host) !== 0) return { type: 'STATIC', load_assignment };
  return { type: 'STRICT_DNS', dns_lookup_family: 'V4_PREFERRED', load_assignment };
}

/**
 * The dynamic-forward-proxy cluster: it dials the host and port the listener
 * put into the connection's filter state (envoy.upstream.dynamic_host/_port).
 * IP literals skip DNS.
 */
function dynamicEndpoint(): JsonObject {
  return {
    lb_policy: 'CLUSTER_PROVIDED',
    cluster_type: {
      name: 'envoy.clusters.dynamic_forward_proxy',
      typed_config: { '@type': typeUrl(TYPE.dfpCluster), dns_cache_config: dnsCacheConfig() },
    },
  };
}

export function routeCluster(c: Pick<MeshConfig, 'tls'>, r: EgressRoute, source: SecretSource): JsonObject {
  const name = CLUSTER.route(r);
  const port = r.remotePort ?? r.listenPort;
  const keyExchange = keyExchangeOf(c, r);
  const peer = r.sni === undefined ? { expectedSans: r.expectedSans, keyExchange } : { sni: r.sni, expectedSans: r.expectedSans, keyExchange };
  return {
    '@type': TYPE_URL.cluster,
    name,
    connect_timeout: CONNECT_TIMEOUT,
    ...(port === undefined ? dynamicEndpoint() : fixedEndpoint(name, r.remoteHost, port)),
    circuit_breakers: noCircuitBreaking(),
    transport_socket: upstreamTls(peer, source),
  };
}

export function originalDst(name: string): JsonObject {
  return {
    '@type': TYPE_URL.cluster,
    name,
    type: 'ORIGINAL_DST',
    lb_policy: 'CLUSTER_PROVIDED',
    connect_timeout: CONNECT_TIMEOUT,
    circuit_breakers: noCircuitBreaking(),
  };
}

/** Capture: mTLS to wherever the app dialled; no SNI and no SAN pin, since the destination is not configured. */
export function outboundClusters(c: MeshConfig, source: SecretSource): JsonObject[] {
  const out: JsonObject[] = [
    { ...originalDst(CLUSTER.outboundMtls), transport_socket: upstreamTls({ expectedSans: [], keyExchange: keyExchangeOf(c) }, source) },
  ];
  if (c.egress.exclude.ports.length > 0 || c.egress.exclude.cidrs.length > 0) out.push(originalDst(CLUSTER.passthrough));
  return out;
}
