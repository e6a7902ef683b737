// protobufjs reflection over the Envoy API .proto files: which files we load,
// and an encoder/decoder built on them. meshlet does not load this at run
// time (parsing the files costs about 14 MiB and 100 ms); it is the source the
// build-time generator (wire-gen.ts) reads, and the reference that tests hold
// the generated encoder (wire.ts) byte-identical to. Builders emit Envoy's
// JSON form (proto3 JSON, as in Envoy's docs and bootstrap files). Unlike
// protobufjs's own Any wrapper, which silently encodes an unknown `@type` as
// an empty Any, packing here throws for a type that was not loaded.
import protobuf from 'protobufjs';
import type { Json, JsonObject } from './protos.js';
const { createRequire } = process.getBuiltinModule('node:module');
const path = process.getBuiltinModule('node:path');

const require = createRequire(import.meta.url);

/** Where the .proto files are; resolved when first loaded, so importing this module touches no file. */
function includeDirs(): string[] {
  const deps = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  return [
    ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d)),
    // google/protobuf/descriptor.proto, which the annotation files extend.
    path.dirname(require.resolve('protobufjs/package.json')),
  ];
}

/** Every file we load; see proto/README.md for why each is here. */
export const PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/set_filter_state/v3/set_filter_state.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/clusters/dynamic_forward_proxy/v3/cluster.proto',
  'envoy/extensions/filters/network/sni_dynamic_forward_proxy/v3/sni_dynamic_forward_proxy.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/matching/common_inputs/network/v3/network_inputs.proto',
] as const;

let cached: protobuf.Root | undefined;

export function root(): protobuf.Root {
  if (cached) return cached;
  const r = new protobuf.Root();
  const dirs = includeDirs();
  r.resolvePath = (_origin: string, target: string): string | null => {
    if (path.isAbsolute(target)) return target;
    for (const dir of dirs) {
      const full = path.join(dir, target);
      try {
        require.resolve(full);
        return full;
      } catch {
        /* try the next include dir */
      }
    }
    return null;
  };
  r.loadSync([...PROTO_FILES], { keepCase: true });
  r.resolveAll();
  cached = r;
  return r;
}

export function lookupType(name: string): protobuf.Type {
  const t = root().lookup(name);
  if (!(t instanceof protobuf.Type)) throw new Error(`protobuf type ${name} is not loaded; add its file to PROTO_FILES in src/xds/reflect.ts`);
  return t;
}

const WRAPPERS = new Set(
  ['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue'].map(
    (n) => `google.protobuf.${n}`,
  ),
);

function parseDuration(s: string, where: string): { seconds: number; nanos: number } {
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(s);
  if (!m) throw new Error(`${where}: duration "${s}" must look like "1.5s"`);
  const sign = m[1] === '-' ? -1 : 1;
  return { seconds: sign * Number(m[2]), nanos: sign * Number((m[3] ?? '').padEnd(9, '0')) };
}

/** Converts Envoy's JSON form into a protobufjs plain object for `type`. */
function fromJson(type: protobuf.Type, json: JsonObject, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    if (key === '@type') continue;
    const field = type.fields[key];
    if (!field) throw new Error(`${where}: ${type.fullName.slice(1)} has no field "${key}"`);
    field.resolve();
    const convert = (v: Json, i?: number): unknown => fieldFromJson(field, v, `${where}.${key}${i === undefined ? '' : `[${i}]`}`);
    if (field.repeated && Array.isArray(value)) out[key] = value.map((v, i) => convert(v, i));
    else if (field.map && value && typeof value === 'object' && !Array.isArray(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, convert(v)]));
    } else out[key] = convert(value);
  }
  return out;
}

function fieldFromJson(field: protobuf.Field, value: Json, where: string): unknown {
  const rt = field.resolvedType;
  // Type.verify accepts only numeric enum values, so map Envoy's JSON names ("STATIC") here.
  if (rt instanceof protobuf.Enum && typeof value === 'string') {
    const n = rt.values[value];
    if (n === undefined) throw new Error(`${where}: "${value}" is not a value of ${rt.fullName.slice(1)}`);
    return n;
  }
  if (!(rt instanceof protobuf.Type)) return value;
  const name = rt.fullName.slice(1);
  if (name === 'google.protobuf.Any') return packAny(value as JsonObject, where);
  if (name === 'google.protobuf.Duration' && typeof value === 'string') return parseDuration(value, where);
  if (WRAPPERS.has(name)) return { value };
  if (name === 'google.protobuf.Struct') return structFromJson(value, where);
  if (name === 'google.protobuf.Value' || name === 'google.protobuf.ListValue') throw new Error(`${where}: ${name} fields are not supported by toMessage`);
  return fromJson(rt, value as JsonObject, where);
}

/** Packs `{ "@type": url, ...fields }` into `{ type_url, value }`, refusing unknown types. */
/**
 * google.protobuf.Value for a JSON value, in protobufjs's object form. The
 * Value fields are named by their numbers: protobufjs ships these well-known
 * types with camelCase names whatever keepCase says.
 */
function valueFromJson(v: Json, where: string): Record<string, unknown> {
  const byId = lookupType('google.protobuf.Value').fieldsById;
  const field = (id: number): string => byId[id]?.name ?? String(id);
  if (v === null) return { [field(1)]: 0 };
  if (typeof v === 'number') return { [field(2)]: v };
  if (typeof v === 'string') return { [field(3)]: v };
  if (typeof v === 'boolean') return { [field(4)]: v };
  if (Array.isArray(v)) return { [field(6)]: { values: v.map((x, i) => valueFromJson(x, `${where}[${i}]`)) } };
  return { [field(5)]: structFromJson(v, where) };
}

/** google.protobuf.Struct (e.g. an access log's json_format) from a JSON object. */
function structFromJson(v: Json, where: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: a Struct must be a JSON object`);
  return { fields: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, valueFromJson(x, `${where}.${k}`)])) };
}

export function packAny(json: JsonObject, where = 'Any'): { type_url: string; value: Uint8Array } {
  const url = json['@type'];
  if (typeof url !== 'string') throw new Error(`${where}: an Any needs "@type"`);
  const type = lookupType(url.slice(url.lastIndexOf('/') + 1));
  return { type_url: url, value: encode(type, json, where) };
}

function encode(type: protobuf.Type, json: JsonObject, where: string): Uint8Array {
  const obj = fromJson(type, json, where);
  const err = type.verify(obj);
  if (err) throw new Error(`${where}: ${err}`);
  return type.encode(type.fromObject(obj)).finish();
}

/** Encodes a resource (Envoy JSON form, with "@type") to bytes. */
export function encodeResource(json: JsonObject): Uint8Array {
  return packAny(json, typeof json['name'] === 'string' ? json['name'] : 'resource').value;
}

const TO_OBJECT: protobuf.IConversionOptions = { json: true, enums: String, longs: String, bytes: String, defaults: false };

/** Decodes an Any back to Envoy's JSON form, nested Anys included, for dumps and tests. */
export function decodeAny(any: { type_url: string; value: Uint8Array }): JsonObject {
  const type = lookupType(any.type_url.slice(any.type_url.lastIndexOf('/') + 1));
  const obj = type.toObject(type.decode(any.value), TO_OBJECT);
  return { '@type': any.type_url, ...obj };
}

const WIRE_OPTIONS: protobuf.IConversionOptions = { enums: String, longs: String, defaults: true, oneofs: true };

/** grpc-js serializers for one message type, in the plain-object form grpc code works with. */
export function codec<T>(typeName: string): { serialize: (value: T) => Buffer; deserialize: (bytes: Buffer) => T } {
  const type = lookupType(typeName);
  return {
    serialize: (value: T) => Buffer.from(type.encode(type.fromObject(value as Record<string, unknown>)).finish()),
    deserialize: (bytes: Buffer) => type.toObject(type.decode(bytes), WIRE_OPTIONS) as T,
  };
}
