// Typed events and status records of the ADS server, for tests, metrics and
// the debug endpoint. A listener that throws is logged and skipped, so an
// observer can never break a stream.
export type StreamKind = 'sotw' | 'delta';

/** Fields every xDS event carries. */
export interface XdsEventBase {
  streamId: number;
  kind: StreamKind;
  nodeId: string;
  typeUrl: string;
  /** The version the message is about ('' when none, e.g. a first request). */
  version: string;
  /** The response nonce (for requests: the nonce being answered, '' for none). */
  nonce: string;
}

export interface RequestEvent extends XdsEventBase {
  /** SotW: resource_names. Delta: resource_names_subscribe. */
  subscribe: string[];
  /** Delta only: resource_names_unsubscribe. */
  unsubscribe: string[];
  /** What the server made of it. */
  disposition: 'initial' | 'ack' | 'nack' | 'stale' | 'subscription' | 'unknown-type';
}

export interface ResponseEvent extends XdsEventBase {
  resourceNames: string[];
  /** Delta only. */
  removed: string[];
}

export type AckEvent = XdsEventBase;

export interface NackEvent extends XdsEventBase {
  /** error_detail.message from Envoy. */
  error: string;
}

/** Envoy opened an ADS stream: the call reached the server (before any request is read, snapshot or not). */
export interface StreamEvent {
  streamId: number;
  kind: StreamKind;
}

export interface DisconnectEvent {
  streamId: number;
  kind: StreamKind;
  nodeId: string;
  reason: string;
}

export type Listener<T> = (event: T) => void;

export class Signal<T> {
  private readonly listeners = new Set<Listener<T>>();

  constructor(private readonly onListenerError: (err: unknown) => void) {}

  /** Adds a listener; returns a function that removes it. */
  on(listener: Listener<T>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: T): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}

export interface XdsSignals {
  request: Signal<RequestEvent>;
  response: Signal<ResponseEvent>;
  ack: Signal<AckEvent>;
  nack: Signal<NackEvent>;
  stream: Signal<StreamEvent>;
  disconnect: Signal<DisconnectEvent>;
}

/** One Envoy's state for one type, as status() reports it. Absent values are null. */
export interface TypeAckStatus {
  subscribed: { wildcard: boolean; names: string[] };
  /** What this Envoy should hold, given its subscription and the current snapshot. */
  desiredVersion: string;
  /** The last response sent and not yet answered. */
  pendingNonce: string | null;
  sentVersion: string | null;
  ackedVersion: string | null;
  ackedAt: string | null;
  nackedVersion: string | null;
  lastError: string | null;
  nackedAt: string | null;
  /** ACKed the desired version and nothing is in flight. */
  inSync: boolean;
}

/** Per type URL, whether one Envoy is in sync: the part of its status every ACK needs (AdsServer.sync()). */
export type TypesInSync = Record<string, Pick<TypeAckStatus, 'inSync'>>;

export interface EnvoyStatus {
  streamId: number;
  nodeId: string;
  kind: StreamKind;
  connectedAt: string;
  types: Record<string, TypeAckStatus>;
}

export interface AdsStatus {
  types: Record<string, { version: string; names: string[] }>;
  envoys: EnvoyStatus[];
}
