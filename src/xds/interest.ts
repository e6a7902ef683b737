// What one stream subscribes to for one type: a wildcard, explicit names, or
// both. See "How the client specifies what resources to return" in
// https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#how-the-client-specifies-what-resources-to-return
import { TYPE_URL } from './protos.js';
import type { SnapshotResource, TypeSnapshot } from './snapshot.js';

/** The reserved name for an explicit wildcard subscription (Envoy >= 1.21). */
export const WILDCARD = '*';

/**
 * Types where an empty first request means "everything" (legacy wildcard).
 * For other types (SDS here) an empty list means "nothing".
 */
export const LEGACY_WILDCARD_TYPES: ReadonlySet<string> = new Set([TYPE_URL.listener, TYPE_URL.cluster]);

/**
 * Names one stream may subscribe to for one type. Envoy names only the
 * secrets it needs (a few) and subscribes to listeners and clusters by
 * wildcard; a peer naming more is not an Envoy of ours, and every name is
 * kept for the stream's life and listed in status().
 */
export const MAX_SUBSCRIBED_NAMES = 10_000;

/** A stream asked for more than a limit allows; the server ends it with RESOURCE_EXHAUSTED. */
export class LimitExceeded extends Error {}

export class Interest {
  wildcard = false;
  readonly names = new Set<string>();

  /** Adds an explicit name; past MAX_SUBSCRIBED_NAMES, throws LimitExceeded. */
  subscribe(name: string): void {
    this.names.add(name);
    if (this.names.size > MAX_SUBSCRIBED_NAMES) throw new LimitExceeded(`more than ${MAX_SUBSCRIBED_NAMES} resource names subscribed for one type`);
  }

  includes(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }

  isEmpty(): boolean {
    return !this.wildcard && this.names.size === 0;
  }

  toJSON(): { wildcard: boolean; names: string[] } {
    return { wildcard: this.wildcard, names: [...this.names].sort() };
  }
}

/** The resources of `type` that `interest` covers, in name order. */
export function selectResources(type: TypeSnapshot, interest: Interest): SnapshotResource[] {
  if (interest.wildcard) return [...type.resources.values()];
  const out: SnapshotResource[] = [];
  for (const r of type.resources.values()) if (interest.names.has(r.name)) out.push(r);
  return out;
}
