// Connection access logs: Envoy's stdout access logger on each listener, one
// JSON line when a connection closes. A listener's log sees the connection's
// whole record (tcp_proxy writes the upstream side into it), and it also logs
// connections no filter chain took; a second logger on tcp_proxy would write
// every connection twice. Only Envoy's command operators for metadata are
// used: no payload, no key material.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage
import { TYPE, typeUrl, type JsonObject } from '../protos.js';
import { deepFreeze } from './memo.js';

/** Every field of a line. Numbers stay numbers (Envoy types a value that is one operator). */
export const ACCESS_LOG_FORMAT: JsonObject = {
  log: 'meshlet-access',
  start_time: '%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%',
  duration_ms: '%DURATION%',
  bytes_from_downstream: '%BYTES_RECEIVED%',
  bytes_to_downstream: '%BYTES_SENT%',
  downstream_remote: '%DOWNSTREAM_REMOTE_ADDRESS%',
  downstream_local: '%DOWNSTREAM_LOCAL_ADDRESS%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_local: '%UPSTREAM_LOCAL_ADDRESS%',
  // meshlet's filter chain names carry the inbound policy or the route (meshlet-inbound-mtls, meshlet-route-emoji); downstream_local has the port.
  chain: '%FILTER_CHAIN_NAME%',
  cluster: '%UPSTREAM_CLUSTER%',
  downstream_peer_uri_san: '%DOWNSTREAM_PEER_URI_SAN%',
  downstream_peer_dns_san: '%DOWNSTREAM_PEER_DNS_SAN%',
  downstream_tls_version: '%DOWNSTREAM_TLS_VERSION%',
  downstream_tls_failure: '%DOWNSTREAM_TRANSPORT_FAILURE_REASON%',
  upstream_peer_uri_san: '%UPSTREAM_PEER_URI_SAN%',
  upstream_peer_dns_san: '%UPSTREAM_PEER_DNS_SAN%',
  upstream_tls_version: '%UPSTREAM_TLS_VERSION%',
  upstream_failure: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
  response_flags: '%RESPONSE_FLAGS%',
  termination: '%CONNECTION_TERMINATION_DETAILS%',
};

export function stdoutAccessLog(): JsonObject {
  return {
    name: 'envoy.access_loggers.stdout',
    typed_config: { '@type': typeUrl(TYPE.stdoutAccessLog), log_format: { json_format: { ...ACCESS_LOG_FORMAT } } },
  };
}

const logged = new WeakMap<JsonObject, JsonObject>();

/** A copy of `listener` that logs each of its connections; for a reused (frozen) listener, the same reused copy. */
export function withAccessLog(listener: JsonObject): JsonObject {
  if (!Object.isFrozen(listener)) return { ...listener, access_log: [stdoutAccessLog()] };
  let copy = logged.get(listener);
  if (!copy) logged.set(listener, (copy = deepFreeze({ ...listener, access_log: [stdoutAccessLog()] })));
  return copy;
}
