// Every cluster the listeners reference, and no other.
import type { MeshConfig } from '../../config/model.js';
import { TYPE_URL, type JsonObject } from '../protos.js';
import { noCircuitBreaking, socketAddress } from './envoy-json.js';
import { CONNECT_TIMEOUT, originalDst, outboundClusters, routeCluster } from './clusters-egress.js';
import { mappedPorts } from './listeners-inbound.js';
import { BuildMemo } from './memo.js';
import { CLUSTER } from './names.js';
import type { SecretSource } from './tls.js';
import { UPSTREAM_SOURCE_V4, UPSTREAM_SOURCE_V6 } from '../../config/constants.js';

/**
 * Upstream connections to the app leave from 127.0.0.6 (or ::6 for IPv6), so
 * they go over lo, which the iptables rules never capture, and the app sees a
 * peer address that marks proxied traffic. ::6 must be assigned to lo.
 * extra_source_addresses picks the source of the destination's family.
 * https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/address.proto#envoy-v3-api-msg-config-core-v3-bindconfig
 */
export function appBindConfig(): JsonObject {
  return {
    source_address: { address: UPSTREAM_SOURCE_V4, port_value: 0 },
    extra_source_addresses: [{ address: { address: UPSTREAM_SOURCE_V6, port_value: 0 } }],
  };
}

function blackhole(): JsonObject {
  return { '@type': TYPE_URL.cluster, name: CLUSTER.blackhole, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: CLUSTER.blackhole } };
}

/**
 * Mapped mode dials the app on loopback: it needs no pod IP in the config,
 * stays on lo (which iptables never captures or drops), and also reaches
 * apps that bind 127.0.0.1 only.
 */
function mappedApp(port: number): JsonObject {
  const name = CLUSTER.mappedApp({ port });
  return {
    '@type': TYPE_URL.cluster,
    name,
    type: 'STATIC',
    connect_timeout: CONNECT_TIMEOUT,
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress('127.0.0.1', port) } }] }] },
    upstream_bind_config: appBindConfig(),
    circuit_breakers: noCircuitBreaking(),
  };
}

const routeMemo = new BuildMemo();

export function buildClusters(c: MeshConfig, source: SecretSource = 'ads'): JsonObject[] {
  const out: JsonObject[] = [];
  if (c.ingress.mode === 'tproxy' || c.egress.capture) out.push(blackhole());
  if (c.ingress.mode === 'tproxy') out.push({ ...originalDst(CLUSTER.inboundApp), upstream_bind_config: appBindConfig() });
  if (c.ingress.mode === 'mapped') out.push(...mappedPorts(c).map((p) => mappedApp(p.port)));
  // A route's cluster depends on the route, the pod-wide TLS settings and where secrets come from.
  const context = `${source} ${JSON.stringify(c.tls)} `;
  out.push(
    ...routeMemo.map(
      c.egress.routes,
      (r) => context + JSON.stringify(r),
      (r) => routeCluster(c, r, source),
    ),
  );
  if (c.egress.capture) out.push(...outboundClusters(c, source));
  return out;
}
