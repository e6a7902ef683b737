// Change → ACK latency: when a new snapshot changes some types, the change
// counts as ACKed once every connected Envoy is in sync on each of them.
import { TYPE_URL } from '../xds/protos.js';
import { typeOf, type Snapshot } from '../xds/snapshot.js';
import type { TypesInSync } from '../xds/events.js';

/** Changes kept waiting at most: an Envoy that never answers must not grow the list forever. */
const MAX_PENDING = 100;

export function versions(s: Snapshot): Map<string, string> {
  return new Map([TYPE_URL.cluster, TYPE_URL.listener, TYPE_URL.secret].map((t) => [t, typeOf(s, t).version]));
}

export class AckLatency {
  /** Changes waiting for Envoy's ACK: type URL → version, and when the change was seen. */
  private pending: { at: number; versions: Map<string, string> }[] = [];

  constructor(
    private readonly observe: (seconds: number) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new snapshot replaces `before`; the types whose version changed wait for an ACK. */
  changed(before: Snapshot, after: Snapshot, at: number): void {
    const was = versions(before);
    const changed = new Map([...versions(after)].filter(([t, v]) => was.get(t) !== v));
    if (changed.size > 0) this.pending.push({ at, versions: changed });
  }

  /**
   * After an ACK. (Comparing versions would miss named SDS under Delta: an
   * Envoy that holds only some secrets ACKs a version over those.)
   */
  settle(envoys: readonly { types: TypesInSync }[]): void {
    if (envoys.length === 0) return;
    const now = this.now();
    this.pending = this.pending.filter((p) => {
      for (const t of [...p.versions.keys()]) if (envoys.every((e) => e.types[t]?.inSync !== false)) p.versions.delete(t);
      if (p.versions.size > 0) return true;
      this.observe((now - p.at) / 1000);
      return false;
    });
    if (this.pending.length > MAX_PENDING) this.pending.splice(0, this.pending.length - MAX_PENDING);
  }
}
