// An immutable snapshot of everything the ADS server serves: per type URL, the
// resources by name, each encoded once. Streams send the stored bytes, so a
// resource that did not change goes out byte-identical and Envoy does not
// drain it: Envoy compares a listener's bytes, and a changed one drains its connections.
import { encodeResource, TYPE_URL, type AnyBytes, type JsonObject, type ResourceTypeUrl } from './protos.js';
import { canonicalJson, hashBytes, setVersion } from './version.js';
import { deepFreeze } from './builders/memo.js';

export interface SnapshotResource {
  readonly name: string;
  /** Envoy's JSON form with "@type", keys sorted; deep-frozen. */
  readonly json: Readonly<JsonObject>;
  /** The bytes sent on the wire, encoded once from `json`. */
  readonly any: Readonly<AnyBytes>;
  /** Content hash of the encoded bytes. */
  readonly version: string;
}

export interface TypeSnapshot {
  readonly typeUrl: ResourceTypeUrl;
  /** Hash over the sorted (name, resource version) pairs. */
  readonly version: string;
  /** Sorted by name. */
  readonly resources: ReadonlyMap<string, SnapshotResource>;
}

export interface Snapshot {
  readonly types: Readonly<Record<ResourceTypeUrl, TypeSnapshot>>;
}

export interface SnapshotInput {
  readonly listeners?: readonly JsonObject[];
  readonly clusters?: readonly JsonObject[];
  readonly secrets?: readonly JsonObject[];
}

/** Every problem in a snapshot input, reported together. */
export class SnapshotError extends Error {
  constructor(readonly errors: readonly string[]) {
    super(`invalid xDS snapshot:\n  ${errors.join('\n  ')}`);
    this.name = 'SnapshotError';
  }
}

const BUCKETS: readonly (readonly [keyof SnapshotInput, ResourceTypeUrl])[] = [
  ['listeners', TYPE_URL.listener],
  ['clusters', TYPE_URL.cluster],
  ['secrets', TYPE_URL.secret],
];

export function isResourceType(url: string): url is ResourceTypeUrl {
  return BUCKETS.some(([, t]) => t === url);
}

/** One type of a snapshot; a type the snapshot lacks reads as empty. */
export function typeOf(snapshot: Snapshot, typeUrl: ResourceTypeUrl): TypeSnapshot {
  return snapshot.types[typeUrl] ?? { typeUrl, version: setVersion([]), resources: new Map() };
}

export function buildSnapshot(input: SnapshotInput): Snapshot {
  const errors: string[] = [];
  const types = {} as Record<ResourceTypeUrl, TypeSnapshot>;
  building = new Map();
  try {
    for (const [bucket, typeUrl] of BUCKETS) {
      types[typeUrl] = buildType(typeUrl, input[bucket] ?? [], bucket, errors);
    }
    if (errors.length > 0) throw new SnapshotError(errors);
    // An empty build (a server's placeholder) must not drop the reusable entries.
    if (building.size > 0) built = building;
  } finally {
    building = undefined;
  }
  return Object.freeze({ types: Object.freeze(types) });
}

function buildType(typeUrl: ResourceTypeUrl, list: readonly JsonObject[], bucket: string, errors: string[]): TypeSnapshot {
  const byName = new Map<string, SnapshotResource>();
  list.forEach((json, i) => {
    const name = json['name'];
    const where = `${bucket}[${i}]${typeof name === 'string' ? ` (${name})` : ''}`;
    if (typeof name !== 'string' || name === '') return void errors.push(`${where}: a resource needs a non-empty "name"`);
    if (json['@type'] !== typeUrl) return void errors.push(`${where}: "@type" is ${JSON.stringify(json['@type'])}, expected ${typeUrl}`);
    if (byName.has(name)) return void errors.push(`${where}: duplicate name "${name}"`);
    try {
      byName.set(name, buildResource(name, typeUrl, json));
    } catch (err) {
      errors.push(`${where}: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  const resources = new Map([...byName].sort(([a], [b]) => (a < b ? -1 : 1)));
  return Object.freeze({ typeUrl, version: setVersion(resources.values()), resources });
}

/**
 * The resources of the latest build, by their builder JSON text. A reload
 * rebuilds every resource from the config, and most come out identical: for
 * those, the frozen canonical JSON, the bytes and the version are reused
 * instead of sorting, encoding and hashing them again (at 2,000 resources
 * that is most of a one-port edit's cost). Same text, same resource; only the
 * latest build's entries are kept.
 */
let built = new Map<string, SnapshotResource>();
let building: Map<string, SnapshotResource> | undefined;

/** Drops the reusable entries of the latest build (the startup snapshot's rehearsal, src/snapshot-rehearsal.ts); returns how many there were. */
export function forgetBuilt(): number {
  const n = built.size;
  built = new Map();
  return n;
}

/**
 * Resources by the builder object itself, for the frozen objects a builder
 * memo hands back unchanged (src/xds/builders/memo.ts): known without even
 * serialising them. Weak, so it lets go with the memo.
 */
const byObject = new WeakMap<JsonObject, SnapshotResource>();

function buildResource(name: string, typeUrl: string, json: JsonObject): SnapshotResource {
  const frozen = Object.isFrozen(json);
  const same = frozen ? byObject.get(json) : undefined;
  if (same) return same;
  const resource = buildByText(name, typeUrl, json);
  if (frozen) byObject.set(json, resource);
  return resource;
}

function buildByText(name: string, typeUrl: string, json: JsonObject): SnapshotResource {
  const key = JSON.stringify(json);
  const known = built.get(key);
  if (known) {
    building?.set(key, known);
    return known;
  }
  // The encoder writes fields by number and map entries by sorted key, so the
  // bytes do not depend on key order; the sorted, frozen JSON is only for the
  // views (/xds, dumps), made on first look instead of for every resource on
  // every build.
  const value = encodeResource(json);
  let canonical: Readonly<JsonObject> | undefined;
  const resource: SnapshotResource = Object.freeze({
    name,
    get json(): Readonly<JsonObject> {
      return (canonical ??= deepFreeze(canonicalJson(json)));
    },
    any: Object.freeze({ type_url: typeUrl, value }),
    version: hashBytes(value),
  });
  building?.set(key, resource);
  return resource;
}
