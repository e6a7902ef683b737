// Small constructors for the Envoy JSON shapes every builder repeats. Kept
// here so a field name is spelled once.
import { TYPE, typeUrl, type JsonObject } from '../protos.js';

/** The wildcard addresses a listener binds for every address of the pod. */
const ANY_V4 = '0.0.0.0';
const ANY_V6 = '::';

export function socketAddress(ip: string, port: number): JsonObject {
  return { socket_address: { address: ip, port_value: port } };
}

/**
 * One listener address per IP family: `address` carries IPv4 and
 * `additional_addresses` IPv6 (IPV6_V6ONLY, since ipv4_compat stays false), so
 * both families share one set of filter chains and cannot drift apart.
 * https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/listener/v3/listener.proto#envoy-v3-api-field-config-listener-v3-listener-additional-addresses
 */
export function dualStack(port: number, v4 = ANY_V4, v6 = ANY_V6): JsonObject {
  return { address: socketAddress(v4, port), additional_addresses: [{ address: socketAddress(v6, port) }] };
}

export const originalDstFilter = (): JsonObject => ({
  name: 'envoy.filters.listener.original_dst',
  typed_config: { '@type': typeUrl(TYPE.originalDst) },
});

export function tcpProxy(statPrefix: string, cluster: string): JsonObject {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: { '@type': typeUrl(TYPE.tcpProxy), stat_prefix: statPrefix, cluster },
  };
}

/** `{ address_prefix, prefix_len }` for an IP, or a CIDR's parts. */
export function cidrRange(address: string, prefixLen: number): JsonObject {
  return { address_prefix: address, prefix_len: prefixLen };
}

const UNLIMITED = 4294967295;

/**
 * Envoy's default circuit breakers cap a cluster at 1024 connections, which a
 * busy pod reaches; a sidecar should not add a limit the app does not have.
 */
export function noCircuitBreaking(): JsonObject {
  return {
    thresholds: [{ priority: 'DEFAULT', max_connections: UNLIMITED, max_pending_requests: UNLIMITED, max_requests: UNLIMITED, max_retries: UNLIMITED }],
  };
}
