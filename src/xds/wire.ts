// Protobuf wire encoding without a protobuf library: Envoy's JSON form is
// written straight to bytes from the generated field table (wire-table.ts).
// It follows protobufjs's reflection encoder byte for byte (fields in number
// order, every field the JSON sets written even at its default, repeated
// scalars packed, nested messages length-prefixed), which a test holds it to
// for every resource the builders make. A type or field outside the table is
// an error naming it, never silently dropped.
import { ENUMS, MESSAGES } from './wire-table.js';

type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

interface Field {
  readonly name: string;
  readonly id: number;
  /** Scalar name, or the full name of a message or enum. */
  readonly type: string;
  readonly kind: 'scalar' | 'message' | 'enum';
  readonly repeated: boolean;
  readonly packed: boolean;
  /** Key type of a map field. */
  readonly mapKey: string | undefined;
  /** The oneof this field is a member of. */
  readonly oneof: string | undefined;
}

interface MessageInfo {
  readonly name: string;
  readonly fields: readonly Field[];
  readonly byName: ReadonlyMap<string, Field>;
  readonly byId: ReadonlyMap<number, Field>;
}

const messages = new Map<string, MessageInfo>();
const enums = new Map<string, ReadonlyMap<string, number>>();

/** A message's fields, parsed from the table on first use. */
export function messageInfo(name: string): MessageInfo | undefined {
  const cached = messages.get(name);
  if (cached) return cached;
  const spec = MESSAGES[name];
  if (spec === undefined) return undefined;
  const fields =
    spec === ''
      ? []
      : spec.split(';').map((f): Field => {
          const [fname = '', id = '', type = '', ...flags] = f.split(' ');
          const kind = MESSAGES[type] !== undefined ? 'message' : ENUMS[type] !== undefined ? 'enum' : 'scalar';
          const flag = (prefix: string): string | undefined => flags.find((x) => x.startsWith(prefix))?.slice(prefix.length);
          return {
            name: fname,
            id: Number(id),
            type,
            kind,
            repeated: flags.includes('r') || flags.includes('rp'),
            packed: flags.includes('rp'),
            mapKey: flag('k='),
            oneof: flag('o='),
          };
        });
  const info: MessageInfo = { name, fields, byName: new Map(fields.map((f) => [f.name, f])), byId: new Map(fields.map((f) => [f.id, f])) };
  messages.set(name, info);
  return info;
}

function enumValues(name: string): ReadonlyMap<string, number> {
  let e = enums.get(name);
  if (!e) {
    e = new Map(
      (ENUMS[name] ?? '').split(',').map((kv) => {
        const i = kv.lastIndexOf('=');
        return [kv.slice(0, i), Number(kv.slice(i + 1))] as const;
      }),
    );
    enums.set(name, e);
  }
  return e;
}

// ---------------------------------------------------------------------------
// Writer: one growing buffer; a nested message is written in place after one
// byte kept for its length. Under 128 bytes (most of them) the length fits that
// byte; a longer one shifts the message's bytes once, by the length's extra
// bytes. (Inserting the whole prefix after every nested message, as before,
// copied each resource's bytes once per level of nesting: encoding the 2,005
// resources of 1,000 ports + 1,000 routes took 4-17% longer.)

export class Writer {
  private buf = Buffer.allocUnsafe(1024);
  pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  tag(id: number, wireType: number): void {
    this.uint32(((id << 3) | wireType) >>> 0);
  }

  uint32(v: number): void {
    this.ensure(5);
    while (v > 127) {
      this.buf[this.pos++] = (v & 127) | 128;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }

  int32(v: number): void {
    if (v < 0) this.varint64(BigInt(v));
    else this.uint32(v);
  }

  varint64(v: bigint): void {
    let u = BigInt.asUintN(64, v);
    this.ensure(10);
    while (u > 127n) {
      this.buf[this.pos++] = Number(u & 127n) | 128;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  fixed64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.pos);
    this.pos += 8;
  }

  float(v: number): void {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.pos);
    this.pos += 4;
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.uint32(b.length);
    this.raw(b);
  }

  /** Bytes already encoded, as they are. */
  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  string(s: string): void {
    const n = Buffer.byteLength(s);
    this.uint32(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** Starts a length-delimited value; pass the result to ldelim. */
  fork(): number {
    this.ensure(1);
    return this.pos++;
  }

  ldelim(start: number): void {
    const len = this.pos - start - 1;
    if (len < 128) {
      this.buf[start] = len;
      return;
    }
    let n = 1;
    for (let v = len; v > 127; v >>>= 7) n++;
    this.ensure(n - 1);
    this.buf.copy(this.buf, start + n, start + 1, this.pos);
    const end = this.pos + n - 1;
    this.pos = start;
    this.uint32(len);
    this.pos = end;
  }

  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

// ---------------------------------------------------------------------------
// Encoding Envoy's JSON form.

const WRAPPERS = new Set(
  ['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue'].map(
    (n) => `google.protobuf.${n}`,
  ),
);
const LONGS = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const WIRE_TYPE: Readonly<Record<string, number>> = {
  double: 1,
  float: 5,
  int32: 0,
  uint32: 0,
  sint32: 0,
  fixed32: 5,
  sfixed32: 5,
  int64: 0,
  uint64: 0,
  sint64: 0,
  fixed64: 1,
  sfixed64: 1,
  bool: 0,
  string: 2,
  bytes: 2,
};

/** Encodes `json` (Envoy's JSON form; "@type" is ignored) as message `typeName`. */
export function encodeJson(typeName: string, json: { readonly [k: string]: JsonValue }, where: string): Buffer {
  const w = new Writer();
  writeMessage(w, requireMessage(typeName, where), json, where);
  return w.finish();
}

function requireMessage(typeName: string, where: string): MessageInfo {
  const info = messageInfo(typeName);
  if (!info)
    throw new Error(
      `${where}: protobuf type ${typeName} is not in the generated encoder table; add its file to PROTO_FILES in src/xds/reflect.ts and run npm run build`,
    );
  return info;
}

function writeMessage(w: Writer, info: MessageInfo, json: { readonly [k: string]: JsonValue }, where: string): void {
  const present: Field[] = [];
  let oneofs: Set<string> | undefined;
  for (const key of Object.keys(json)) {
    if (key === '@type') continue;
    const field = info.byName.get(key);
    if (!field) throw new Error(`${where}: ${info.name} has no field "${key}"`);
    if (field.oneof !== undefined && json[key] !== null) {
      oneofs ??= new Set();
      if (oneofs.has(field.oneof)) throw new Error(`${where}.${field.oneof}: multiple values`);
      oneofs.add(field.oneof);
    }
    present.push(field);
  }
  present.sort((a, b) => a.id - b.id);
  for (const field of present) writeField(w, field, json[field.name] as JsonValue, `${where}.${field.name}`);
}

function writeField(w: Writer, field: Field, value: JsonValue, where: string): void {
  if (value === null) {
    if (field.kind === 'message' && !field.repeated && !WRAPPERS.has(field.type)) throw new Error(`${where}: null is not a ${field.type}`);
    return;
  }
  if (field.mapKey !== undefined) {
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where}: object expected`);
    if (field.mapKey !== 'string') throw new Error(`${where}: map keys of type ${field.mapKey} are not supported`);
    const entry: Field = { ...field, id: 2, repeated: false, mapKey: undefined, oneof: undefined };
    // A value object that several keys share (the inbound port matcher maps 1,000 ports to a few chains) is encoded once.
    const shared = new Map<JsonValue, Buffer>();
    for (const k of mapKeyOrder(Object.keys(value))) {
      const v = value[k] as JsonValue;
      w.tag(field.id, 2);
      const start = w.fork();
      w.tag(1, 2);
      w.string(k);
      if (isObject(v)) {
        let b = shared.get(v);
        if (!b) {
          const sub = new Writer();
          writeSingle(sub, entry, v, `${where}.${k}`);
          shared.set(v, (b = sub.finish()));
        }
        w.raw(b);
      } else writeSingle(w, entry, v, `${where}.${k}`);
      w.ldelim(start);
    }
    return;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) throw new Error(`${where}: array expected`);
    if (value.length === 0) return;
    if (field.packed) {
      w.tag(field.id, 2);
      const start = w.fork();
      value.forEach((v, i) => writeScalar(w, field, v, `${where}[${i}]`));
      w.ldelim(start);
    } else value.forEach((v, i) => writeSingle(w, field, v, `${where}[${i}]`));
    return;
  }
  writeSingle(w, field, value, where);
}

/** One value with its tag. */
function writeSingle(w: Writer, field: Field, value: JsonValue, where: string): void {
  if (field.kind !== 'message') {
    if (value === null) return;
    w.tag(field.id, field.kind === 'enum' ? 0 : (WIRE_TYPE[field.type] ?? 0));
    writeScalar(w, field, value, where);
    return;
  }
  w.tag(field.id, 2);
  const start = w.fork();
  writeNested(w, field.type, value, where);
  w.ldelim(start);
}

/** The body of a nested message, with the JSON forms of the well-known types. */
function writeNested(w: Writer, type: string, value: JsonValue, where: string): void {
  if (type === 'google.protobuf.Any') {
    if (!isObject(value)) throw new Error(`${where}: object expected`);
    const url = value['@type'];
    if (typeof url !== 'string') throw new Error(`${where}: an Any needs "@type"`);
    const inner = requireMessage(url.slice(url.lastIndexOf('/') + 1), where);
    w.tag(1, 2);
    w.string(url);
    w.tag(2, 2);
    const start = w.fork();
    writeMessage(w, inner, value, where);
    w.ldelim(start);
    return;
  }
  if (type === 'google.protobuf.Duration' && typeof value === 'string') {
    const d = parseDuration(value, where);
    w.tag(1, 0);
    w.varint64(BigInt(d.seconds));
    w.tag(2, 0);
    w.int32(d.nanos);
    return;
  }
  if (WRAPPERS.has(type)) {
    const info = requireMessage(type, where);
    const f = info.byId.get(1);
    if (!f) throw new Error(`${where}: ${type} has no value field`);
    if (value === null) return;
    w.tag(1, WIRE_TYPE[f.type] ?? 0);
    writeScalar(w, f, value, where);
    return;
  }
  if (type === 'google.protobuf.Struct') {
    if (!isObject(value)) throw new Error(`${where}: a Struct must be a JSON object`);
    writeStruct(w, value, where);
    return;
  }
  if (type === 'google.protobuf.Value' || type === 'google.protobuf.ListValue') throw new Error(`${where}: ${type} fields are not supported`);
  if (!isObject(value)) throw new Error(`${where}: object expected`);
  writeMessage(w, requireMessage(type, where), value, where);
}

/**
 * The order map entries are written in, so that the bytes (and so the version
 * Envoy compares) do not depend on the order a builder inserted the keys:
 * integer-like keys ascending by value, then the rest sorted. That is the
 * order JavaScript itself gives an object's keys once the rest are sorted, so
 * protobufjs (the reference the tests compare with) writes the same bytes.
 */
function mapKeyOrder(keys: string[]): string[] {
  const isIndex = (k: string): boolean => /^(?:0|[1-9]\d{0,9})$/.test(k) && Number(k) < 4294967295;
  const index = keys.filter(isIndex).sort((a, b) => Number(a) - Number(b));
  return [...index, ...keys.filter((k) => !isIndex(k)).sort()];
}

/** Struct { map<string, Value> fields = 1 }: each entry is key 1, Value 2. */
function writeStruct(w: Writer, value: { readonly [k: string]: JsonValue }, where: string): void {
  // Sorted by key (plain string order; Envoy's Structs here have no integer-like keys).
  for (const k of Object.keys(value).sort()) {
    const v = value[k] as JsonValue;
    w.tag(1, 2);
    const entry = w.fork();
    w.tag(1, 2);
    w.string(k);
    w.tag(2, 2);
    const inner = w.fork();
    writeValue(w, v, `${where}.${k}`);
    w.ldelim(inner);
    w.ldelim(entry);
  }
}

/** The body of a google.protobuf.Value: null 1, number 2, string 3, bool 4, struct 5, list 6. */
function writeValue(w: Writer, v: JsonValue, where: string): void {
  if (v === null) {
    w.tag(1, 0);
    w.int32(0);
  } else if (typeof v === 'number') {
    w.tag(2, 1);
    w.double(v);
  } else if (typeof v === 'string') {
    w.tag(3, 2);
    w.string(v);
  } else if (typeof v === 'boolean') {
    w.tag(4, 0);
    w.uint32(v ? 1 : 0);
  } else {
    const list = Array.isArray(v);
    w.tag(list ? 6 : 5, 2);
    const start = w.fork();
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        w.tag(1, 2);
        const item = w.fork();
        writeValue(w, x, `${where}[${i}]`);
        w.ldelim(item);
      });
    } else writeStruct(w, v, where);
    w.ldelim(start);
  }
}

function writeScalar(w: Writer, field: Field, value: JsonValue, where: string): void {
  if (field.kind === 'enum') {
    const values = enumValues(field.type);
    let n: number | undefined;
    if (typeof value === 'string') {
      n = values.get(value);
      if (n === undefined) throw new Error(`${where}: "${value}" is not a value of ${field.type}`);
    } else if (typeof value === 'number' && [...values.values()].includes(value)) n = value;
    else throw new Error(`${where}: enum value expected`);
    w.int32(n);
    return;
  }
  const t = field.type;
  if (t === 'string') {
    if (typeof value !== 'string') throw new Error(`${where}: string expected`);
    return w.string(value);
  }
  if (t === 'bool') {
    if (typeof value !== 'boolean') throw new Error(`${where}: boolean expected`);
    return w.uint32(value ? 1 : 0);
  }
  if (t === 'bytes') {
    if (typeof value === 'string') return w.bytes(Buffer.from(value, 'base64'));
    if (value instanceof Uint8Array) return w.bytes(value);
    throw new Error(`${where}: buffer expected`);
  }
  if (typeof value !== 'number') throw new Error(`${where}: number expected`);
  if (t === 'double') return w.double(value);
  if (t === 'float') return w.float(value);
  if (!Number.isInteger(value)) throw new Error(`${where}: integer expected`);
  if (LONGS.has(t)) {
    const big = BigInt(value);
    if (t === 'sint64') return w.varint64((big << 1n) ^ (big >> 63n));
    if (t === 'fixed64' || t === 'sfixed64') return w.fixed64(big);
    return w.varint64(big);
  }
  switch (t) {
    case 'int32':
      return w.int32(value | 0);
    case 'uint32':
      return w.uint32(value >>> 0);
    case 'sint32':
      return w.uint32((((value | 0) << 1) ^ ((value | 0) >> 31)) >>> 0);
    case 'fixed32':
    case 'sfixed32':
      return w.fixed32(value);
    default:
      throw new Error(`${where}: scalar type ${t} is not supported`);
  }
}

function isObject(v: JsonValue): v is { [k: string]: JsonValue } {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function parseDuration(s: string, where: string): { seconds: number; nanos: number } {
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(s);
  if (!m) throw new Error(`${where}: duration "${s}" must look like "1.5s"`);
  const sign = m[1] === '-' ? -1 : 1;
  return { seconds: sign * Number(m[2]), nanos: sign * Number((m[3] ?? '').padEnd(9, '0')) };
}

// ---------------------------------------------------------------------------
// Decoding, for what Envoy sends us (discovery requests): every field of the
// table is read, unknown ones skipped; fields not on the wire get their
// defaults, as protobufjs's toObject({ defaults: true }) gives them, with
// enums as names and 64-bit integers as decimal strings.
//
// Except in the Node message: meshlet reads only its id (and cluster). Envoy's
// first request carries its whole extension list there, about 60 KB, and
// decoding it into objects took about 6 ms on Envoy's path to its first
// response (interpreted, as meshlet runs without the optimizing compilers).
// Its other fields are skipped on the wire and get their defaults.
//
// Also, in the requests, what meshlet never reads and a peer could fill with
// millions of tiny elements (each an object on our heap: 2 bytes on the wire
// for an empty Any, over 200 on the heap): a NACK's Status keeps its code and
// message without `details`, and resource locators (xdstp://, which meshlet
// does not serve) are skipped.
const DECODE_ONLY: ReadonlyMap<string, ReadonlySet<number>> = new Map([
  ['envoy.config.core.v3.Node', new Set([1, 2])],
  ['google.rpc.Status', new Set([1, 2])],
  ['envoy.service.discovery.v3.DiscoveryRequest', new Set([1, 2, 3, 4, 5, 6])],
  ['envoy.service.discovery.v3.DeltaDiscoveryRequest', new Set([1, 2, 3, 4, 5, 6, 7])],
]);

/** Thrown when a message holds more repeated elements and map entries than its decoder allows. */
export class TooManyElements extends Error {}

/** Repeated elements and map entries the current decode may still make (decodeMessage's maxElements). */
let elementsLeft = Number.POSITIVE_INFINITY;

function spendElement(): void {
  elementsLeft -= 1;
  if (elementsLeft < 0) throw new TooManyElements('too many repeated elements or map entries');
}

export class Reader {
  pos = 0;
  constructor(
    private readonly buf: Buffer,
    readonly end = buf.length,
  ) {}

  uint32(): number {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++] as number;
      v += (b & 127) * 2 ** shift;
      if (b < 128) return v >>> 0;
    }
    // Longer varints (negative int32): the low 32 bits are what counts.
    this.skipVarintTail();
    return v >>> 0;
  }

  varint64(): bigint {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++] as number;
      v |= BigInt(b & 127) << shift;
      if (b < 128) return BigInt.asUintN(64, v);
    }
    throw new Error('varint too long');
  }

  private skipVarintTail(): void {
    while (this.pos < this.end && ((this.buf[this.pos++] as number) & 128) !== 0);
  }

  bytes(): Buffer {
    const n = this.uint32();
    if (this.pos + n > this.end) throw new Error('truncated length-delimited field');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint64();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.bytes();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new Error('truncated field');
  }
}

type Decoded = Record<string, unknown>;

/**
 * Decodes `bytes` as message `typeName` into a plain object (see above). With
 * `maxElements`, a message holding more repeated elements and map entries
 * than that (counted through every nested message) throws TooManyElements:
 * the bytes on the wire are bounded, but a short element costs far more on
 * the heap than on the wire.
 */
export function decodeMessage(typeName: string, bytes: Buffer, maxElements = Number.POSITIVE_INFINITY): Decoded {
  elementsLeft = maxElements;
  try {
    return readMessage(requireMessage(typeName, typeName), new Reader(bytes), bytes, bytes.length);
  } finally {
    elementsLeft = Number.POSITIVE_INFINITY;
  }
}

function readMessage(info: MessageInfo, r: Reader, buf: Buffer, end: number): Decoded {
  const out: Decoded = {};
  const only = DECODE_ONLY.get(info.name);
  while (r.pos < end) {
    const tag = r.uint32();
    const id = tag >>> 3;
    const wireType = tag & 7;
    const field = only && !only.has(id) ? undefined : info.byId.get(id);
    if (!field) {
      r.skip(wireType);
      continue;
    }
    if (field.mapKey !== undefined) {
      spendElement();
      const entry = r.bytes();
      const er = new Reader(entry);
      let key = '';
      let val: unknown = defaultOf({ ...field, repeated: false, mapKey: undefined, oneof: undefined });
      while (er.pos < entry.length) {
        const t = er.uint32();
        if (t >>> 3 === 1) key = String(readValue({ ...field, type: field.mapKey, kind: 'scalar' }, er, entry, t & 7));
        else if (t >>> 3 === 2) val = readValue(field, er, entry, t & 7);
        else er.skip(t & 7);
      }
      ((out[field.name] ??= {}) as Decoded)[key] = val;
    } else if (field.repeated) {
      const list = (out[field.name] ??= []) as unknown[];
      if (wireType === 2 && field.kind !== 'message' && field.type !== 'string' && field.type !== 'bytes') {
        const sub = r.bytes();
        const sr = new Reader(sub);
        while (sr.pos < sub.length) {
          spendElement();
          list.push(readValue(field, sr, sub, WIRE_TYPE[field.type] ?? 0));
        }
      } else {
        spendElement();
        list.push(readValue(field, r, buf, wireType));
      }
    } else out[field.name] = readValue(field, r, buf, wireType);
  }
  for (const f of info.fields) if (!(f.name in out)) out[f.name] = defaultOf(f);
  return out;
}

function readValue(field: Field, r: Reader, buf: Buffer, wireType: number): unknown {
  if (field.kind === 'message') {
    const b = r.bytes();
    if (field.type === 'google.protobuf.Any') {
      const any = readMessage(requireMessage(field.type, field.name), new Reader(b), b, b.length);
      return { type_url: any['type_url'], value: any['value'] };
    }
    return readMessage(requireMessage(field.type, field.name), new Reader(b), b, b.length);
  }
  if (field.kind === 'enum') {
    const n = r.uint32() | 0;
    for (const [k, v] of enumValues(field.type)) if (v === n) return k;
    return n;
  }
  switch (field.type) {
    case 'string':
      return r.bytes().toString('utf8');
    case 'bytes':
      return Buffer.from(r.bytes());
    case 'bool':
      return r.varint64() !== 0n;
    case 'int32':
      return r.uint32() | 0;
    case 'uint32':
      return r.uint32();
    case 'sint32': {
      const v = r.uint32();
      return (v >>> 1) ^ -(v & 1);
    }
    case 'int64':
    case 'sfixed64':
      return String(BigInt.asIntN(64, wireType === 1 ? fixed64(r, buf) : r.varint64()));
    case 'uint64':
    case 'fixed64':
      return String(wireType === 1 ? fixed64(r, buf) : r.varint64());
    case 'sint64': {
      const v = r.varint64();
      return String((v >> 1n) ^ -(v & 1n));
    }
    case 'fixed32':
      return fixed32(r, buf) >>> 0;
    case 'sfixed32':
      return fixed32(r, buf) | 0;
    case 'float': {
      const v = buf.readFloatLE(r.pos);
      r.pos += 4;
      return v;
    }
    case 'double': {
      const v = buf.readDoubleLE(r.pos);
      r.pos += 8;
      return v;
    }
    default:
      r.skip(wireType);
      return undefined;
  }
}

function fixed32(r: Reader, buf: Buffer): number {
  const v = buf.readUInt32LE(r.pos);
  r.pos += 4;
  return v;
}

function fixed64(r: Reader, buf: Buffer): bigint {
  const v = buf.readBigUInt64LE(r.pos);
  r.pos += 8;
  return v;
}

function defaultOf(f: Field): unknown {
  if (f.mapKey !== undefined) return {};
  if (f.repeated) return [];
  if (f.kind === 'message') return null;
  if (f.kind === 'enum') return [...enumValues(f.type).keys()][0] ?? 0;
  if (f.type === 'string') return '';
  if (f.type === 'bool') return false;
  if (f.type === 'bytes') return Buffer.alloc(0);
  if (LONGS.has(f.type)) return '0';
  return 0;
}

// ---------------------------------------------------------------------------
// Discovery responses carry resources already encoded (Any with bytes).

interface AnyBytesLike {
  type_url: string;
  value: Uint8Array;
}

/** Encodes a plain object whose fields are scalars, nested plain objects, or Anys as { type_url, value: bytes }. */
export function encodePlain(typeName: string, obj: object): Buffer {
  const w = new Writer();
  writePlain(w, requireMessage(typeName, typeName), obj as Record<string, unknown>);
  return w.finish();
}

function writePlain(w: Writer, info: MessageInfo, obj: Record<string, unknown>): void {
  for (const field of info.fields) {
    const value = obj[field.name];
    if (value === undefined || value === null) continue;
    if (field.repeated && field.mapKey === undefined) {
      if (!Array.isArray(value) || value.length === 0) continue;
      if (field.kind === 'message') for (const v of value) writePlainNested(w, field, v as Record<string, unknown>);
      else writeField(w, field, value as JsonValue, field.name);
    } else if (field.kind === 'message' && field.mapKey === undefined) writePlainNested(w, field, value as Record<string, unknown>);
    else writeField(w, field, value as JsonValue, field.name);
  }
}

function writePlainNested(w: Writer, field: Field, value: Record<string, unknown>): void {
  w.tag(field.id, 2);
  const start = w.fork();
  if (field.type === 'google.protobuf.Any') {
    const any = value as unknown as AnyBytesLike;
    w.tag(1, 2);
    w.string(any.type_url);
    w.tag(2, 2);
    w.bytes(any.value);
  } else writePlain(w, requireMessage(field.type, field.name), value);
  w.ldelim(start);
}
