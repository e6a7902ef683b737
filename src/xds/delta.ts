// Incremental ADS (DeltaAggregatedResources) for one Envoy stream. Like
// Consul, every resource is compared by its content hash against what the
// stream holds, and only differences are sent. Spec: "Incremental xDS" in
// https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#incremental-xds
import type { ResourceTypeUrl } from './protos.js';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from './service.js';
import { isResourceType, typeOf, type SnapshotResource } from './snapshot.js';
import { Interest, LEGACY_WILDCARD_TYPES, selectResources, WILDCARD } from './interest.js';
import { setVersion } from './version.js';
import { XdsStream, type StreamContext, type TypeState } from './stream.js';
import { TypeTracker } from './tracker.js';

interface DeltaState extends TypeState {
  /**
   * name -> version Envoy holds, as far as this stream knows: seeded from
   * initial_resource_versions, updated when a response is sent. Kept after a
   * NACK too, so a rejected resource is not resent until its content changes.
   */
  readonly known: Map<string, string>;
  /** The first request is answered even when empty, so Envoy's init can finish. */
  mustRespond: boolean;
}

interface Diff {
  updates: SnapshotResource[];
  removed: string[];
  version: string;
}

export class DeltaStream extends XdsStream<DeltaState> {
  constructor(
    ctx: StreamContext,
    private readonly write: (res: DeltaDiscoveryResponse) => void,
  ) {
    super(ctx, 'delta');
  }

  handle(req: DeltaDiscoveryRequest): void {
    this.noteNode(req.node);
    const { type_url: typeUrl, response_nonce: nonce } = req;
    const subscribe = req.resource_names_subscribe;
    const unsubscribe = req.resource_names_unsubscribe;
    if (!isResourceType(typeUrl)) return this.noteRequest(typeUrl, '', nonce, 'unknown-type', subscribe, unsubscribe);
    const st = this.states.get(typeUrl);
    const disposition = !st ? 'initial' : nonce === '' ? 'subscription' : nonce === st.tracker.pendingNonce ? (req.error_detail ? 'nack' : 'ack') : 'stale';
    this.noteRequest(typeUrl, st?.tracker.sentVersion ?? '', nonce, disposition, subscribe, unsubscribe);
    if (!st) {
      this.states.set(typeUrl, initialState(typeUrl, req));
    } else {
      if (disposition === 'ack') this.recordAck(typeUrl, st, nonce);
      if (disposition === 'nack') this.recordNack(typeUrl, st, nonce, req.error_detail?.message ?? '');
      // Subscription changes are deltas, so they apply even on a stale nonce: dropping one would lose it for good.
      applySubscriptions(st, subscribe, unsubscribe);
    }
    this.pump();
  }

  private diff(typeUrl: ResourceTypeUrl, st: DeltaState): Diff {
    const type = typeOf(this.ctx.snapshot(), typeUrl);
    const desired = selectResources(type, st.interest);
    const names = new Set(desired.map((r) => r.name));
    return {
      updates: desired.filter((r) => st.known.get(r.name) !== r.version),
      removed: [...st.known.keys()].filter((n) => !names.has(n)).sort(),
      version: st.interest.wildcard ? type.version : setVersion(desired),
    };
  }

  protected desiredVersion(typeUrl: ResourceTypeUrl, st: DeltaState): string {
    return this.diff(typeUrl, st).version;
  }

  protected wantsSend(typeUrl: ResourceTypeUrl, st: DeltaState): boolean {
    if (st.mustRespond) return true;
    const d = this.diff(typeUrl, st);
    return d.updates.length > 0 || d.removed.length > 0;
  }

  protected send(typeUrl: ResourceTypeUrl, st: DeltaState): void {
    const { updates, removed, version } = this.diff(typeUrl, st);
    const nonce = this.nextNonce();
    for (const r of updates) st.known.set(r.name, r.version);
    for (const n of removed) st.known.delete(n);
    st.tracker.sent(nonce, version);
    st.mustRespond = false;
    this.write({
      system_version_info: version,
      resources: updates.map((r) => ({ name: r.name, version: r.version, resource: r.any })),
      type_url: typeUrl,
      removed_resources: removed,
      nonce,
    });
    this.noteResponse(
      typeUrl,
      version,
      nonce,
      updates.map((r) => r.name),
      removed,
    );
  }
}

function initialState(typeUrl: string, req: DeltaDiscoveryRequest): DeltaState {
  const st: DeltaState = { tracker: new TypeTracker(), interest: new Interest(), known: new Map(), mustRespond: true };
  // An empty first subscribe list is the legacy wildcard, for LDS and CDS only.
  st.interest.wildcard = req.resource_names_subscribe.length === 0 && LEGACY_WILDCARD_TYPES.has(typeUrl);
  for (const n of req.resource_names_subscribe) {
    if (n === WILDCARD) st.interest.wildcard = true;
    else st.interest.subscribe(n);
  }
  // On reconnect Envoy lists what it already holds; matching versions are not resent,
  // and names that no longer exist go back in removed_resources.
  for (const [name, version] of Object.entries(req.initial_resource_versions)) st.known.set(name, version);
  return st;
}

function applySubscriptions(st: DeltaState, subscribe: readonly string[], unsubscribe: readonly string[]): void {
  for (const n of subscribe) {
    if (n === WILDCARD) st.interest.wildcard = true;
    else st.interest.subscribe(n);
    // "the server must still provide those resources": Envoy may have forgotten them.
    st.known.delete(n);
  }
  for (const n of unsubscribe) {
    if (n === WILDCARD) st.interest.wildcard = false;
    else st.interest.names.delete(n);
  }
  // Envoy drops what it unsubscribed from itself; no removed_resources for those.
  for (const n of [...st.known.keys()]) if (!st.interest.includes(n)) st.known.delete(n);
}
