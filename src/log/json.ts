// Turns one log call's values into JSON text the way meshlet's log lines have
// always looked (they were pino's; operators' pipelines and our tests parse
// them): the `err` field through the standard error shape, listed key paths
// censored, then JSON.stringify, and for a value it cannot write (a cycle, a
// BigInt) a fallback that writes "[Circular]", BigInts as numbers, keys
// sorted, at most 5 levels deep and 100 entries wide. On top of the listed
// paths, any string, String object or byte array (typed arrays, DataView,
// Buffer, ArrayBuffer) that holds a PEM private key is censored wherever it is.

// Through getBuiltinModule: the ESM wrapper of node:util keeps worker_threads resident.
const { types } = process.getBuiltinModule('node:util');

export const CENSOR = '[redacted]';
/** CENSOR as JSON text. */
export const CENSORED = JSON.stringify(CENSOR);

/** Written for a value whose serialization throws (a throwing toJSON or getter); the wording is what pino wrote. */
export const UNSERIALIZABLE = '"[unable to serialize, circular reference is too complex to analyze]"';

const MAX_DEPTH = 5;
const MAX_BREADTH = 100;

/** A PEM private key of any kind: PKCS#8, encrypted PKCS#8, SEC1 EC, PKCS#1 RSA, OpenSSH. */
export function holdsPrivateKey(s: string): boolean {
  return s.includes('PRIVATE KEY') && s.includes('-----BEGIN');
}

const bytesHoldPrivateKey = (b: Buffer): boolean => holdsPrivateKey(b.toString('latin1'));
const isByte = (n: unknown): boolean => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 255;
/** The length of the shortest text holdsPrivateKey matches; shorter arrays of numbers cannot hold a key. */
const MIN_PEM_BYTES = '-----BEGIN'.length + 'PRIVATE KEY'.length;

/** JSON.rawJSON's result: JSON writes its text as it is, whatever the text holds. */
function isRawJSON(v: object): v is { rawJSON: string } {
  const check = (JSON as unknown as { isRawJSON?: (v: unknown) => boolean }).isRawJSON;
  return check !== undefined && check(v);
}

/**
 * Whether an object holds a PEM private key where a look at its own
 * properties would miss it: the bytes of any typed array, DataView, Buffer,
 * ArrayBuffer or SharedArrayBuffer; an array of byte values (a Buffer's toJSON
 * writes one); a String object's text; a JSON.rawJSON text.
 */
function objectHoldsPrivateKey(v: object): boolean {
  if (ArrayBuffer.isView(v)) return bytesHoldPrivateKey(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  if (types.isAnyArrayBuffer(v)) return bytesHoldPrivateKey(Buffer.from(v));
  if (Array.isArray(v)) return v.length >= MIN_PEM_BYTES && v.every(isByte) && bytesHoldPrivateKey(Buffer.from(v as number[]));
  if (types.isStringObject(v)) return holdsPrivateKey(String.prototype.valueOf.call(v));
  return isRawJSON(v) && holdsPrivateKey(v.rawJSON);
}

/**
 * Objects whose JSON comes from internal state rather than own properties
 * (boxed primitives, JSON.rawJSON), or whose bytes the PEM check reads
 * (typed arrays, DataView, ArrayBuffer): a copy would lose that state.
 */
const keptWhole = (v: object): boolean => ArrayBuffer.isView(v) || types.isAnyArrayBuffer(v) || types.isBoxedPrimitive(v) || isRawJSON(v);

// ---------------------------------------------------------------------------
// Redaction by key path

/** One level of the compiled key paths below a top-level field. */
interface PathNode {
  /** Keys censored at this level. */
  censor: Set<string>;
  /** Every key at this level is censored (a path ending in `*`). */
  censorAll: boolean;
  /** Paths that continue below a named key (already merged with `any`). */
  named: Map<string, PathNode>;
  /** Paths that continue below every key or index. */
  any: PathNode | undefined;
}

const newNode = (): PathNode => ({ censor: new Set(), censorAll: false, named: new Map(), any: undefined });

function insert(node: PathNode, segs: readonly string[]): void {
  const [head, ...rest] = segs as [string, ...string[]];
  if (rest.length === 0) {
    if (head === '*') node.censorAll = true;
    else node.censor.add(head);
    return;
  }
  if (head === '*') insert((node.any ??= newNode()), rest);
  else {
    let next = node.named.get(head);
    if (!next) node.named.set(head, (next = newNode()));
    insert(next, rest);
  }
}

function mergeInto(target: PathNode, from: PathNode): void {
  for (const k of from.censor) target.censor.add(k);
  target.censorAll ||= from.censorAll;
  for (const [k, n] of from.named) {
    let t = target.named.get(k);
    if (!t) target.named.set(k, (t = newNode()));
    mergeInto(t, n);
  }
  if (from.any) mergeInto((target.any ??= newNode()), from.any);
}

/** A named key also takes every path that continues below `*`, so one lookup finds all paths for a key. */
function settle(node: PathNode): void {
  if (node.any) {
    settle(node.any);
    for (const n of node.named.values()) mergeInto(n, node.any);
  }
  for (const n of node.named.values()) settle(n);
}

export interface Redaction {
  /** Top-level fields censored whatever their value. */
  top: ReadonlySet<string>;
  /** The paths below one top-level field, or undefined when none apply. */
  below(key: string): PathNode | undefined;
}

/**
 * Compiles dot paths (`a.b`, with `*` for any key or array index). A path of
 * one key censors that top-level field; a longer one censors the last key
 * only where the object owns it (an undefined value too), never adding it.
 */
export function compileRedaction(paths: readonly string[]): Redaction {
  const root = newNode();
  for (const p of paths) {
    const segs = p.split('.');
    if (segs.some((s) => s === '' || /[[\]"'`]/.test(s))) throw new Error(`log redaction path "${p}": use dot-separated keys and * only`);
    if (segs.length === 1 && segs[0] === '*') throw new Error('log redaction path "*" would censor every field');
    insert(root, segs);
  }
  settle(root);
  const hasPaths = (n: PathNode | undefined): n is PathNode => n !== undefined && (n.censor.size > 0 || n.censorAll || n.named.size > 0 || n.any !== undefined);
  return {
    top: root.censor,
    below: (key) => {
      const n = root.named.get(key) ?? root.any;
      return hasPaths(n) ? n : undefined;
    },
  };
}

/**
 * A copy of `value` with the paths below `node` censored. Only the objects on
 * the way to a censored key are copied (keeping their prototype and own
 * enumerable properties); everything else is shared with the caller's value,
 * which is never changed. An object with its own toJSON is written as its
 * toJSON says and not copied: a copy would lose the internal state that
 * Buffer's or URL's toJSON reads. Nor is an object kept whole (above): its
 * own properties are not what is written or checked.
 */
export function redactPaths(value: unknown, node: PathNode): unknown {
  if (typeof value !== 'object' || value === null || typeof (value as { toJSON?: unknown }).toJSON === 'function' || keptWhole(value)) return value;
  const step = (k: string, v: unknown): unknown => {
    if (node.censorAll || node.censor.has(k)) return CENSOR;
    const next = node.named.get(k) ?? node.any;
    return next ? redactPaths(v, next) : v;
  };
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = step(String(i), value[i]);
    return out;
  }
  const src = value as Record<string, unknown>;
  const out = Object.create(Object.getPrototypeOf(value) as object | null) as Record<string, unknown>;
  for (const k in src) if (Object.hasOwn(src, k)) out[k] = step(k, src[k]);
  return out;
}

// ---------------------------------------------------------------------------
// The err field

interface ErrorLike {
  message: string;
  stack?: unknown;
  cause?: unknown;
  errors?: unknown;
  name?: unknown;
  constructor?: unknown;
}

const isErrorLike = (v: unknown): v is ErrorLike => typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string';

/** The cause an error names: its `cause`, or what a `cause()` method returns; only when it is error-like. */
function causeOf(e: ErrorLike): ErrorLike | undefined {
  const c = typeof e.cause === 'function' ? (e.cause as (this: ErrorLike) => unknown).call(e) : e.cause;
  return isErrorLike(c) ? c : undefined;
}

function messageWithCauses(e: ErrorLike, seen: Set<ErrorLike>, skipOwn: boolean): string {
  const own = skipOwn ? '' : e.message || '';
  if (seen.has(e)) return `${own}: ...`;
  const cause = causeOf(e);
  if (!cause) return own;
  seen.add(e);
  const called = typeof e.cause === 'function';
  return own + (called ? '' : ': ') + messageWithCauses(cause, seen, called);
}

function stackWithCauses(e: ErrorLike, seen: Set<ErrorLike>): unknown {
  const stack = e.stack || '';
  if (seen.has(e)) return `${stack as string}\ncauses have become circular...`;
  const cause = causeOf(e);
  if (!cause) return stack;
  seen.add(e);
  return `${stack as string}\ncaused by: ${stackWithCauses(cause, seen) as string}`;
}

/**
 * The `err` field's shape: type (the constructor's name), message and stack
 * with every cause appended, the errors of an AggregateError, then the
 * error's other enumerable properties (error-like ones in the same shape,
 * except `cause`, which the message and stack already carry). Anything not
 * error-like is written as it is.
 */
export function serializeError(value: unknown, open: Set<object> = new Set()): unknown {
  if (!isErrorLike(value)) return value;
  open.add(value);
  const out: Record<string, unknown> = {};
  const ctor = value.constructor;
  out['type'] = typeof ctor === 'function' ? ctor.name : value.name;
  out['message'] = messageWithCauses(value, new Set(), false);
  out['stack'] = stackWithCauses(value, new Set());
  if (Array.isArray(value.errors))
    out['aggregateErrors'] = value.errors.map((e: unknown) => (typeof e === 'object' && e !== null && open.has(e) ? undefined : serializeError(e, open)));
  const src = value as unknown as Record<string, unknown>;
  for (const k in src) {
    // Names the shape already has, and names every object inherits (such as __proto__), are not copied.
    if (out[k] !== undefined || k === 'raw' || k in Object.prototype) continue;
    const v = src[k];
    if (isErrorLike(v)) {
      if (k !== 'cause' && !open.has(v)) out[k] = serializeError(v, open);
    } else out[k] = v;
  }
  open.delete(value);
  return out;
}

// ---------------------------------------------------------------------------
// Stringifying one value

/**
 * JSON.stringify's replacer: censors PEM private keys in strings, String
 * objects and byte arrays, and drops a key that holds one. It sees a value
 * after its toJSON ran, so the value as held is checked too (a Buffer's bytes).
 */
function censorKeys(this: unknown, key: string, value: unknown): unknown {
  if (holdsPrivateKey(key)) return undefined;
  if (typeof value === 'string') return holdsPrivateKey(value) ? CENSOR : value;
  if (typeof value === 'object' && value !== null) {
    // JSON writes a String object as String(value) (an own toString included): that text is what is checked and returned.
    if (types.isStringObject(value)) {
      const text = String(value);
      return holdsPrivateKey(text) ? CENSOR : text;
    }
    if (objectHoldsPrivateKey(value)) return CENSOR;
    const raw = (this as Record<string, unknown>)[key];
    if (raw !== value && typeof raw === 'object' && raw !== null && objectHoldsPrivateKey(raw)) return CENSOR;
  }
  return value;
}

/** JSON text for one value, or undefined when JSON has none (undefined, a function, a symbol). */
export function stringify(value: unknown): string | undefined {
  try {
    return JSON.stringify(value, censorKeys);
  } catch {
    try {
      return fallback('', value, []);
    } catch {
      return UNSERIALIZABLE;
    }
  }
}

const itemCount = (n: number): string => (n === 1 ? '1 item' : `${n} items`);

function isTypedArrayWithEntries(v: object): v is ArrayLike<unknown> & ArrayBufferView {
  return ArrayBuffer.isView(v) && !(v instanceof DataView) && (v as unknown as ArrayLike<unknown>).length !== 0;
}

/** The fallback for values JSON.stringify refuses: cycles, BigInts. */
function fallback(key: string, value: unknown, open: object[]): string | undefined {
  if (typeof value === 'object' && value !== null) {
    if (objectHoldsPrivateKey(value)) return CENSORED;
    if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
      value = (value as { toJSON(k: string): unknown }).toJSON(key);
      if (typeof value === 'object' && value !== null && objectHoldsPrivateKey(value)) return CENSORED;
    }
  }
  switch (typeof value) {
    case 'string':
      return holdsPrivateKey(value) ? CENSORED : JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'object':
      return value === null ? 'null' : fallbackObject(value, open);
    default:
      return undefined;
  }
}

function fallbackObject(value: object, open: object[]): string {
  if (open.includes(value)) return '"[Circular]"';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    if (open.length >= MAX_DEPTH) return '"[Array]"';
    open.push(value);
    const parts: string[] = [];
    for (let i = 0; i < Math.min(value.length, MAX_BREADTH); i++) parts.push(fallback(String(i), value[i], open) ?? 'null');
    // The count is one short, as the writer this fallback matches reports it.
    if (value.length - 1 > MAX_BREADTH) parts.push(`"... ${itemCount(value.length - MAX_BREADTH - 1)} not stringified"`);
    open.pop();
    return `[${parts.join(',')}]`;
  }
  let keys = Object.keys(value);
  const total = keys.length;
  if (total === 0) return '{}';
  if (open.length >= MAX_DEPTH) return '"[Object]"';
  const parts: string[] = [];
  let room = Math.min(keys.length, MAX_BREADTH);
  if (isTypedArrayWithEntries(value)) {
    const arr = value as unknown as ArrayLike<unknown>;
    for (let i = 0; i < Math.min(arr.length, MAX_BREADTH); i++) parts.push(`"${i}":${String(arr[i])}`);
    keys = keys.slice(arr.length);
    room -= arr.length;
  } else keys.sort();
  open.push(value);
  const rec = value as Record<string, unknown>;
  for (let i = 0; i < room; i++) {
    const k = keys[i] as string;
    if (holdsPrivateKey(k)) continue;
    const s = fallback(k, rec[k], open);
    if (s !== undefined) parts.push(`${JSON.stringify(k)}:${s}`);
  }
  if (total > MAX_BREADTH) parts.push(`"...":"${itemCount(total - MAX_BREADTH)} not stringified"`);
  open.pop();
  return `{${parts.join(',')}}`;
}
