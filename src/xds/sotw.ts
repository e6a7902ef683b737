// State-of-the-world ADS (StreamAggregatedResources) for one Envoy stream.
// When to answer follows Istio's ShouldRespond: a first request is answered;
// a stale nonce is ignored; a NACK is recorded and not answered; an ACK is
// answered only when what the stream should hold differs from what was last
// sent (new names, or a new snapshot). Spec: "ACK/NACK and resource type
// instance version" and "When to send an update" in
// https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol
import type { ResourceTypeUrl } from './protos.js';
import type { DiscoveryRequest, DiscoveryResponse } from './service.js';
import { isResourceType, typeOf, type SnapshotResource } from './snapshot.js';
import { Interest, LEGACY_WILDCARD_TYPES, selectResources, WILDCARD } from './interest.js';
import { setVersion } from './version.js';
import { XdsStream, type StreamContext, type TypeState } from './stream.js';
import { TypeTracker } from './tracker.js';

interface SotwState extends TypeState {
  /** Subscribed by an empty list (pre-"*" Envoy), which stays a wildcard while lists stay empty. */
  legacyWildcard: boolean;
  /** Answer even if nothing changed: a first request, or names back after an empty list. */
  mustRespond: boolean;
}

export class SotwStream extends XdsStream<SotwState> {
  constructor(
    ctx: StreamContext,
    private readonly write: (res: DiscoveryResponse) => void,
  ) {
    super(ctx, 'sotw');
  }

  handle(req: DiscoveryRequest): void {
    this.noteNode(req.node);
    const typeUrl = req.type_url;
    const nonce = req.response_nonce;
    const names = req.resource_names;
    if (!isResourceType(typeUrl)) return this.noteRequest(typeUrl, req.version_info, nonce, 'unknown-type', names);
    const st = this.states.get(typeUrl);
    const disposition = classify(st, nonce, Boolean(req.error_detail));
    this.noteRequest(typeUrl, req.version_info, nonce, disposition, names);
    if (disposition === 'stale') return;
    if (disposition === 'initial' || !st) {
      this.subscribe(typeUrl, st, req);
    } else {
      if (disposition === 'ack') this.recordAck(typeUrl, st, nonce);
      // A NACK's names still say what Envoy wants next; recording them does not resend anything by itself.
      if (disposition === 'nack') this.recordNack(typeUrl, st, nonce, req.error_detail?.message ?? '');
      this.applyNames(typeUrl, st, names, false);
    }
    this.pump();
  }

  private subscribe(typeUrl: ResourceTypeUrl, existing: SotwState | undefined, req: DiscoveryRequest): void {
    const tracker = existing?.tracker ?? new TypeTracker();
    tracker.restart();
    tracker.reported(req.version_info, this.ctx.now());
    const st: SotwState = { tracker, interest: new Interest(), legacyWildcard: false, mustRespond: true };
    this.states.set(typeUrl, st);
    this.applyNames(typeUrl, st, req.resource_names, true);
  }

  private applyNames(typeUrl: ResourceTypeUrl, st: SotwState, names: readonly string[], first: boolean): void {
    st.legacyWildcard = names.length === 0 && LEGACY_WILDCARD_TYPES.has(typeUrl) && (first || st.legacyWildcard);
    st.interest.wildcard = st.legacyWildcard || names.includes(WILDCARD);
    st.interest.names.clear();
    for (const n of names) if (n !== WILDCARD) st.interest.subscribe(n);
    // An empty list unsubscribes (named types). Envoy drops what it had, so a later
    // subscription must be answered even if the content is what we sent before.
    if (st.interest.isEmpty()) st.mustRespond = true;
  }

  private selected(typeUrl: ResourceTypeUrl, st: SotwState): { resources: SnapshotResource[]; version: string } {
    const type = typeOf(this.ctx.snapshot(), typeUrl);
    const resources = selectResources(type, st.interest);
    return { resources, version: st.interest.wildcard ? type.version : setVersion(resources) };
  }

  protected desiredVersion(typeUrl: ResourceTypeUrl, st: SotwState): string {
    return this.selected(typeUrl, st).version;
  }

  protected wantsSend(typeUrl: ResourceTypeUrl, st: SotwState): boolean {
    if (st.interest.isEmpty()) return false;
    // After a NACK sentVersion is the rejected version, so an unchanged desired state is not resent.
    return st.mustRespond || this.desiredVersion(typeUrl, st) !== st.tracker.sentVersion;
  }

  protected send(typeUrl: ResourceTypeUrl, st: SotwState): void {
    const { resources, version } = this.selected(typeUrl, st);
    const nonce = this.nextNonce();
    st.tracker.sent(nonce, version);
    st.mustRespond = false;
    this.write({ version_info: version, resources: resources.map((r) => r.any), type_url: typeUrl, nonce });
    this.noteResponse(
      typeUrl,
      version,
      nonce,
      resources.map((r) => r.name),
    );
  }
}

type Disposition = 'initial' | 'ack' | 'nack' | 'stale' | 'subscription';

function classify(st: SotwState | undefined, nonce: string, hasError: boolean): Disposition {
  if (nonce === '') return 'initial';
  // "The management server should not send a DiscoveryResponse for any DiscoveryRequest that has a stale nonce."
  if (!st || nonce !== st.tracker.latestNonce) return 'stale';
  // Answers the latest response already ACKed/NACKed: only the names may have changed.
  if (st.tracker.pendingNonce === null) return 'subscription';
  // The spec's preferred NACK test is error_detail, not a version mismatch.
  return hasError ? 'nack' : 'ack';
}
