// node's startup snapshot blob, built with V8's code kept ("withoutCodeCache":
// false in --build-snapshot-config), holds two kinds of compiled code:
// - the bytecode of every function that ran while the snapshot was built, in
//   V8's part of the blob; meshlet wants it (src/snapshot-rehearsal.ts);
// - node's code cache for its own built-in modules, about 4 MB that node
//   compiles in a second pass and appends at the end of the blob. meshlet
//   does not want it: node reads the whole blob into memory and keeps it
//   there, it would take 4-5 MiB of every sidecar's memory, and it is of no
//   use at run time, as node's cached code does not fit the V8 flags meshlet
//   sets (src/cli.ts), so the built-ins loaded at run time compile from source
//   either way. Measured on a 2-CPU VM: reading it cost more CPU at start than
//   it saved.
// "withoutCodeCache": true drops both, so the build keeps both and this
// removes the second. The blob's last section is that cache: a count, then
// per built-in its id (length, then bytes) and its code (length, then bytes),
// lengths as 64-bit little-endian integers (node's src/node_snapshotable.cc,
// SnapshotData::ToBlob). Rather than parse every section before it, whose
// layout changes between node versions, this finds the one offset from which
// that layout reads exactly to the end of the file, and fails if there is no
// such offset, so a node whose blob differs fails the build, loudly. Written
// from the layout's description, checked against node 26's blobs
// (test/cli/snapshot.test.ts).

/** Where the built-ins' code cache starts, how many modules it holds and its size in bytes. */
export interface CodeCacheSection {
  offset: number;
  entries: number;
  bytes: number;
}

const ID = /^[A-Za-z0-9_./-]+$/;
/** node has a few hundred built-in modules; the cache holds one entry per module it compiled. */
const MAX_ENTRIES = 10_000;

function u64(blob: Buffer, at: number): number | undefined {
  if (at + 8 > blob.length) return undefined;
  const hi = blob.readUInt32LE(at + 4);
  // Every length here is far below 4 GiB: a high word means this is not one.
  return hi === 0 ? blob.readUInt32LE(at) : undefined;
}

/**
 * A real cache holds hundreds of modules, node's internal ones among them: a
 * few bytes inside an entry's code that happen to read as a short cache
 * ending at the end of the file are not taken for it.
 */
const MIN_ENTRIES = 20;

/** The entries read from `offset` if they end exactly at the end of the blob, else undefined. */
function readsToEnd(blob: Buffer, offset: number): number | undefined {
  const count = u64(blob, offset);
  if (count === undefined || count < MIN_ENTRIES || count > MAX_ENTRIES) return undefined;
  let at = offset + 8;
  let internal = false;
  for (let i = 0; i < count; i++) {
    const idLength = u64(blob, at);
    if (idLength === undefined || idLength < 1 || idLength > 255) return undefined;
    at += 8;
    if (at + idLength > blob.length) return undefined;
    const id = blob.toString('latin1', at, at + idLength);
    if (!ID.test(id)) return undefined;
    internal ||= id.startsWith('internal/');
    at += idLength;
    const codeLength = u64(blob, at);
    if (codeLength === undefined) return undefined;
    at += 8 + codeLength;
    if (at > blob.length) return undefined;
  }
  return at === blob.length && internal ? count : undefined;
}

/** The built-ins' code cache at the end of `blob`, or undefined when the blob ends with an empty one (or none that reads). */
export function findBuiltinCodeCache(blob: Buffer): CodeCacheSection | undefined {
  // From the end backwards: the last section is the one sought, and an entry's own bytes never read as a whole
  // cache that ends where the file does.
  for (let offset = blob.length - 8; offset >= 0; offset--) {
    const entries = readsToEnd(blob, offset);
    if (entries !== undefined) return { offset, entries, bytes: blob.length - offset };
  }
  return undefined;
}

/** True when the blob ends with an empty code cache: a count of 0, as stripBuiltinCodeCache leaves it. */
export function endsWithEmptyCodeCache(blob: Buffer): boolean {
  return blob.length >= 8 && u64(blob, blob.length - 8) === 0;
}

/**
 * The blob without the built-ins' code cache: everything before it, then a
 * count of 0, which node reads as an empty cache. Throws when the blob has no
 * cache that reads as described above.
 */
export function stripBuiltinCodeCache(blob: Buffer): { blob: Buffer; removed: CodeCacheSection } {
  const removed = findBuiltinCodeCache(blob);
  if (!removed) {
    throw new Error(
      "no code cache of node's built-ins reads to the end of this blob: this node writes its snapshot blob another way; " +
        'see src/snapshot-blob.ts, or build with "withoutCodeCache": true (scripts/install-snapshot.sh) and lose the kept bytecode',
    );
  }
  const count0 = Buffer.alloc(8);
  return { blob: Buffer.concat([blob.subarray(0, removed.offset), count0]), removed };
}

/**
 * The start of the first PEM block in `blob` (a BEGIN line followed by base64), or undefined. A startup snapshot must
 * hold none: the build's rehearsal reads a throwaway PKI, and what a snapshot keeps of the heap goes into every image
 * (src/snapshot-rehearsal.ts). meshlet's own messages name the BEGIN lines but never follow one with base64.
 */
export function pemBlockIn(blob: Buffer): string | undefined {
  const m = /-----BEGIN [A-Z0-9 ]+-----\r?\n[A-Za-z0-9+/=]{16}/.exec(blob.toString('latin1'));
  return m?.[0].slice(0, m[0].indexOf('-----', 5) + 5);
}
