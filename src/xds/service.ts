// The AggregatedDiscoveryService's two methods, with serializers from the
// generated wire encoder (no .proto parsing at run time).
import { Status as GrpcStatus, type BidiMethod, type ServerCall } from './grpc.js';
import { TYPE, type AnyBytes } from './protos.js';
import { decodeMessage, encodePlain, TooManyElements } from './wire.js';

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

/**
 * Repeated elements and map entries one request may hold (names to
 * subscribe, the versions Envoy holds on reconnect...). Envoy's largest
 * request, the first after a reconnect, lists what it holds of one type: one
 * entry per resource, 10,000 at bench/'s largest mesh.
 */
export const MAX_REQUEST_ELEMENTS = 100_000;

/** Serializers for one message type, in the plain-object form the streams work with; `maxElements` bounds a decode (decodeMessage). */
export function codec<T>(typeName: string, maxElements?: number): { serialize: (value: T) => Buffer; deserialize: (bytes: Buffer) => T } {
  return {
    serialize: (value: T) => encodePlain(typeName, value as object),
    deserialize: (bytes: Buffer) => {
      try {
        return decodeMessage(typeName, bytes, maxElements) as T;
      } catch (err) {
        if (!(err instanceof TooManyElements)) throw err;
        throw Object.assign(new Error(`the request holds more than ${maxElements} repeated elements and map entries`), { code: GrpcStatus.RESOURCE_EXHAUSTED });
      }
    },
  };
}

const SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService';

export interface AdsHandlers {
  sotw: (call: ServerCall<DiscoveryRequest, DiscoveryResponse>) => void;
  delta: (call: ServerCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) => void;
}

export function adsMethods(h: AdsHandlers): [BidiMethod<DiscoveryRequest, DiscoveryResponse>, BidiMethod<DeltaDiscoveryRequest, DeltaDiscoveryResponse>] {
  const req = codec<DiscoveryRequest>(TYPE.discoveryRequest, MAX_REQUEST_ELEMENTS);
  const res = codec<DiscoveryResponse>(TYPE.discoveryResponse);
  const dreq = codec<DeltaDiscoveryRequest>(TYPE.deltaRequest, MAX_REQUEST_ELEMENTS);
  const dres = codec<DeltaDiscoveryResponse>(TYPE.deltaResponse);
  return [
    { path: `${SERVICE}/StreamAggregatedResources`, deserialize: req.deserialize, serialize: res.serialize, handler: h.sotw },
    { path: `${SERVICE}/DeltaAggregatedResources`, deserialize: dreq.deserialize, serialize: dres.serialize, handler: h.delta },
  ];
}
