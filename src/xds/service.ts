// The AggregatedDiscoveryService's two methods, with serializers from the
// generated wire encoder (no .proto parsing at run time).
import type { BidiMethod, ServerCall } from './grpc.js';
import { TYPE, type AnyBytes } from './protos.js';
import { decodeMessage, encodePlain } from './wire.js';

export interface Node {
  id?: string;
  cluster?: string;
}

export interface Status {
  code?: number;
  message?: string;
}

export interface DiscoveryRequest {
  version_info: string;
  node?: Node | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail?: Status | null;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: AnyBytes[];
  type_url: string;
  nonce: string;
}

export interface DeltaDiscoveryRequest {
  node?: Node | null;
  type_url: string;
  resource_names_subscribe: string[];
  resource_names_unsubscribe: string[];
  initial_resource_versions: Record<string, string>;
  response_nonce: string;
  error_detail?: Status | null;
}

export interface DeltaResource {
  name: string;
  version: string;
  resource: AnyBytes;
}

export interface DeltaDiscoveryResponse {
  system_version_info: string;
  resources: DeltaResource[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
}

/** Serializers for one message type, in the plain-object form the streams work with. */
export function codec<T>(typeName: string): { serialize: (value: T) => Buffer; deserialize: (bytes: Buffer) => T } {
  return {
    serialize: (value: T) => encodePlain(typeName, value as object),
    deserialize: (bytes: Buffer) => decodeMessage(typeName, bytes) as T,
  };
}

const SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService';

export interface AdsHandlers {
  sotw: (call: ServerCall<DiscoveryRequest, DiscoveryResponse>) => void;
  delta: (call: ServerCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) => void;
}

export function adsMethods(h: AdsHandlers): [BidiMethod<DiscoveryRequest, DiscoveryResponse>, BidiMethod<DeltaDiscoveryRequest, DeltaDiscoveryResponse>] {
  const req = codec<DiscoveryRequest>(TYPE.discoveryRequest);
  const res = codec<DiscoveryResponse>(TYPE.discoveryResponse);
  const dreq = codec<DeltaDiscoveryRequest>(TYPE.deltaRequest);
  const dres = codec<DeltaDiscoveryResponse>(TYPE.deltaResponse);
  return [
    { path: `${SERVICE}/StreamAggregatedResources`, deserialize: req.deserialize, serialize: res.serialize, handler: h.sotw },
    { path: `${SERVICE}/DeltaAggregatedResources`, deserialize: dreq.deserialize, serialize: dres.serialize, handler: h.delta },
  ];
}
