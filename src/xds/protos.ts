// What the rest of meshlet knows about protobuf: the type names and URLs, and
// the packing of resources (Envoy's JSON form, with "@type") into bytes. The
// encoding itself is wire.ts, driven by a field table generated at build time
// from the Envoy API files (wire-gen.ts), so nothing parses .proto files at
// run time.
import { encodeJson } from './wire.js';

export const TYPE = {
  listener: 'envoy.config.listener.v3.Listener',
  cluster: 'envoy.config.cluster.v3.Cluster',
  secret: 'envoy.extensions.transport_sockets.tls.v3.Secret',
  downstreamTls: 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  upstreamTls: 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  tcpProxy: 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  setFilterState: 'envoy.extensions.filters.network.set_filter_state.v3.Config',
  originalDst: 'envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  dfpCluster: 'envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig',
  sniDfp: 'envoy.extensions.filters.network.sni_dynamic_forward_proxy.v3.FilterConfig',
  stdoutAccessLog: 'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
  destinationPortInput: 'envoy.extensions.matching.common_inputs.network.v3.DestinationPortInput',
  stringValue: 'google.protobuf.StringValue',
  discoveryRequest: 'envoy.service.discovery.v3.DiscoveryRequest',
  discoveryResponse: 'envoy.service.discovery.v3.DiscoveryResponse',
  deltaRequest: 'envoy.service.discovery.v3.DeltaDiscoveryRequest',
  deltaResponse: 'envoy.service.discovery.v3.DeltaDiscoveryResponse',
} as const;

export const typeUrl = (name: string): string => `type.googleapis.com/${name}`;

export const TYPE_URL = {
  listener: typeUrl(TYPE.listener),
  cluster: typeUrl(TYPE.cluster),
  secret: typeUrl(TYPE.secret),
} as const;

export type ResourceTypeUrl = (typeof TYPE_URL)[keyof typeof TYPE_URL];
/** The order a full push goes out in: clusters before the listeners that use them, secrets first of all. */
export const PUSH_ORDER: readonly ResourceTypeUrl[] = [TYPE_URL.secret, TYPE_URL.cluster, TYPE_URL.listener];

/** A packed resource as the cache stores it and the wire sends it. */
export interface AnyBytes {
  type_url: string;
  value: Uint8Array;
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

/** Packs `{ "@type": url, ...fields }` into `{ type_url, value }`, refusing unknown types and fields. */
export function packAny(json: JsonObject, where = 'Any'): { type_url: string; value: Uint8Array } {
  const url = json['@type'];
  if (typeof url !== 'string') throw new Error(`${where}: an Any needs "@type"`);
  return { type_url: url, value: encodeJson(url.slice(url.lastIndexOf('/') + 1), json, where) };
}

/** Encodes a resource (Envoy JSON form, with "@type") to bytes. */
export function encodeResource(json: JsonObject): Uint8Array {
  return packAny(json, typeof json['name'] === 'string' ? json['name'] : 'resource').value;
}
