// What SotW and Delta streams share: node identity, nonces, ACK/NACK
// bookkeeping, logging, and the push order. Transport-free: the server wires a
// grpc call to `handle` and `write`, which keeps these classes testable alone.
import type { Logger } from '../log.js';
import { PUSH_ORDER, type ResourceTypeUrl } from './protos.js';
import type { Node } from './service.js';
import type { Snapshot } from './snapshot.js';
import type { EnvoyStatus, RequestEvent, StreamKind, TypeAckStatus, TypesInSync, XdsEventBase, XdsSignals } from './events.js';
import type { Interest } from './interest.js';
import type { TypeTracker } from './tracker.js';

/**
 * What a peer sends is kept and logged only this long (characters): an error
 * message, a node id or a type URL may be megabytes on the wire, and each
 * would otherwise be held for the stream's life and written in every line.
 */
export const MAX_PEER_TEXT = 1024;

/** Names logged per request at most; the rest are counted. */
export const MAX_LOGGED_NAMES = 10;

/** `text` cut to MAX_PEER_TEXT characters, saying how long it was. */
export function peerText(text: string): string {
  return text.length <= MAX_PEER_TEXT ? text : `${text.slice(0, MAX_PEER_TEXT)}... (${text.length} characters)`;
}

/** The first MAX_LOGGED_NAMES names, each cut by peerText, and a count of the rest. */
function loggedNames(names: readonly string[]): string[] {
  const shown = names.slice(0, MAX_LOGGED_NAMES).map(peerText);
  return names.length > MAX_LOGGED_NAMES ? [...shown, `... and ${names.length - MAX_LOGGED_NAMES} more`] : shown;
}

export interface StreamContext {
  streamId: number;
  log: Logger;
  signals: XdsSignals;
  snapshot: () => Snapshot;
  now: () => Date;
}

export interface TypeState {
  readonly tracker: TypeTracker;
  readonly interest: Interest;
}

/** Envoy holds what it should of a type: nothing in flight, and the desired version ACKed (or nothing subscribed). */
function inSync(st: TypeState, desiredVersion: string): boolean {
  return st.tracker.pendingNonce === null && (st.interest.isEmpty() || st.tracker.ackedVersion === desiredVersion);
}

export abstract class XdsStream<S extends TypeState> {
  nodeId = '';
  protected readonly states = new Map<ResourceTypeUrl, S>();
  protected readonly log: Logger;
  private readonly connectedAt: string;
  private nonceCounter = 0;

  constructor(
    protected readonly ctx: StreamContext,
    readonly kind: StreamKind,
  ) {
    this.log = ctx.log.child({ streamId: ctx.streamId, kind });
    this.connectedAt = ctx.now().toISOString();
  }

  get streamId(): number {
    return this.ctx.streamId;
  }

  /** Re-evaluates every subscribed type against a new snapshot. */
  onSnapshot(): void {
    this.pump();
  }

  status(): EnvoyStatus {
    const types: Record<string, TypeAckStatus> = {};
    for (const [typeUrl, st] of this.states) {
      const t = st.tracker;
      const desiredVersion = this.desiredVersion(typeUrl, st);
      types[typeUrl] = {
        subscribed: st.interest.toJSON(),
        desiredVersion,
        pendingNonce: t.pendingNonce,
        sentVersion: t.sentVersion,
        ackedVersion: t.ackedVersion,
        ackedAt: t.ackedAt,
        nackedVersion: t.nackedVersion,
        lastError: t.lastError,
        nackedAt: t.nackedAt,
        inSync: inSync(st, desiredVersion),
      };
    }
    return { streamId: this.ctx.streamId, nodeId: this.nodeId, kind: this.kind, connectedAt: this.connectedAt, types };
  }

  /** status()'s inSync per type alone, without listing (and sorting) the subscribed names: what every ACK needs. */
  sync(): TypesInSync {
    const types: TypesInSync = {};
    for (const [typeUrl, st] of this.states) types[typeUrl] = { inSync: inSync(st, this.desiredVersion(typeUrl, st)) };
    return types;
  }

  /** The version of what this stream should hold for `typeUrl` now. */
  protected abstract desiredVersion(typeUrl: ResourceTypeUrl, st: S): string;
  protected abstract wantsSend(typeUrl: ResourceTypeUrl, st: S): boolean;
  protected abstract send(typeUrl: ResourceTypeUrl, st: S): void;

  /**
   * Sends what is due, in PUSH_ORDER (secrets, clusters, listeners), holding
   * every later type while an earlier one awaits its ACK/NACK. That is the
   * "make before break" order of the spec's eventual-consistency section:
   * https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#eventual-consistency-considerations
   * Like Consul, one type is in flight at a time unless Envoy asks for an
   * earlier type meanwhile. A NACK releases the hold too: Envoy keeps its last
   * good clusters, and holding listeners forever would also hold back fixes.
   */
  protected pump(): void {
    for (;;) {
      const next = this.nextType();
      if (next === undefined) return;
      this.send(next[0], next[1]);
    }
  }

  private nextType(): [ResourceTypeUrl, S] | undefined {
    for (const typeUrl of PUSH_ORDER) {
      const st = this.states.get(typeUrl);
      if (!st) continue;
      if (st.tracker.pendingNonce !== null) return undefined;
      if (this.wantsSend(typeUrl, st)) return [typeUrl, st];
    }
    return undefined;
  }

  protected nextNonce(): string {
    this.nonceCounter += 1;
    return String(this.nonceCounter);
  }

  /** Only the first request must carry the node; later ones may omit it. */
  protected noteNode(node: Node | null | undefined): void {
    if (this.nodeId === '' && node?.id) {
      this.nodeId = peerText(node.id);
      this.log.info({ nodeId: this.nodeId, typeUrl: '', version: '', nonce: '' }, 'xDS stream opened');
    }
  }

  protected event(typeUrl: string, version: string, nonce: string): XdsEventBase {
    return { streamId: this.ctx.streamId, kind: this.kind, nodeId: this.nodeId, typeUrl, version, nonce };
  }

  /** Log fields every xDS line carries, so one grep follows a version from push to ACK or NACK. */
  protected fields(typeUrl: string, version: string, nonce: string): Record<string, string> {
    return { nodeId: this.nodeId, typeUrl, version, nonce };
  }

  protected noteRequest(
    typeUrl: string,
    version: string,
    nonce: string,
    disposition: RequestEvent['disposition'],
    subscribe: string[],
    unsubscribe: string[] = [],
  ): void {
    const level = disposition === 'unknown-type' ? 'warn' : 'debug';
    const logged = { subscribe: loggedNames(subscribe), unsubscribe: loggedNames(unsubscribe) };
    this.log[level]({ ...this.fields(peerText(typeUrl), version, peerText(nonce)), disposition, ...logged }, 'xDS request');
    this.ctx.signals.request.emit({ ...this.event(typeUrl, version, nonce), subscribe, unsubscribe, disposition });
  }

  protected noteResponse(typeUrl: string, version: string, nonce: string, resourceNames: string[], removed: string[] = []): void {
    this.log.info({ ...this.fields(typeUrl, version, nonce), resources: resourceNames.length, removed: removed.length }, 'xDS response');
    this.ctx.signals.response.emit({ ...this.event(typeUrl, version, nonce), resourceNames, removed });
  }

  protected recordAck(typeUrl: string, st: S, nonce: string): void {
    const version = st.tracker.acked(this.ctx.now());
    this.log.info(this.fields(typeUrl, version, nonce), 'xDS ACK');
    this.ctx.signals.ack.emit(this.event(typeUrl, version, nonce));
  }

  /** Records a NACK. The caller must not resend: only a new desired state is sent (go-control-plane #582/#962). */
  protected recordNack(typeUrl: string, st: S, nonce: string, message: string): void {
    const error = peerText(message);
    const version = st.tracker.nacked(error, this.ctx.now());
    this.log.warn({ ...this.fields(typeUrl, version, nonce), error }, 'xDS NACK: Envoy rejected the update and keeps its last good config');
    this.ctx.signals.nack.emit({ ...this.event(typeUrl, version, nonce), error });
  }

  closed(reason: string): void {
    this.log.info({ ...this.fields('', '', ''), reason }, 'xDS stream closed');
    this.ctx.signals.disconnect.emit({ streamId: this.ctx.streamId, kind: this.kind, nodeId: this.nodeId, reason });
  }
}
