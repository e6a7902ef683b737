// Versions are content hashes, never counters: a restarted meshlet computes the
// same version for the same content, and can never reuse a version for
// different content, and Envoy never skips a change it takes for one it has.
import type { Json } from './protos.js';

const HASH_CHARS = 16;

/** Short SHA-256 hex of some bytes: the per-resource version. */
export function hashBytes(bytes: Uint8Array): string {
  // node:crypto on first use: `meshlet run` loads this module before it spawns Envoy, and hashes only afterwards.
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(bytes).digest('hex').slice(0, HASH_CHARS);
}

/**
 * A deep copy with every object's keys sorted. protobufjs writes message fields
 * in field-number order whatever the key order, but map fields
 * (`typed_extension_protocol_options`, ...) are written in insertion order, so
 * two equal configs built in a different order would encode differently.
 * Array order is meaning, so it is kept.
 */
export function canonicalJson<T extends Json>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => canonicalJson(v)) as T;
  if (value === null || typeof value !== 'object') return value;
  const out: { [k: string]: Json } = {};
  for (const key of Object.keys(value).sort()) out[key] = canonicalJson(value[key] as Json);
  return out as T;
}

/**
 * The version of a set of resources: a hash over the (name, resource version)
 * pairs sorted by name. Used for a whole type in a snapshot and for the subset
 * one Envoy subscribes to, so both agree when the subscription is a wildcard.
 */
export function setVersion(entries: Iterable<{ readonly name: string; readonly version: string }>): string {
  const pairs = [...entries].map((e): [string, string] => [e.name, e.version]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return hashBytes(Buffer.from(JSON.stringify(pairs)));
}
