// The generated encoder (src/xds/wire.ts + wire-table.ts) against protobufjs
// reflection over the .proto files: byte-identical for every resource the
// builders make from every shipped and test config, for a value in every field
// of every message type in the table (so a field a builder starts using
// tomorrow is covered today), and for the discovery messages on the stream.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { contrastToRaw } from '../../src/config/contrast.js';
import type { RawConfigInput } from '../../src/config/schema.js';
import { buildResources } from '../../src/xds/builders/index.js';
import { encodeResource, packAny, TYPE, type Json, type JsonObject } from '../../src/xds/protos.js';
import * as reflect from '../../src/xds/reflect.js';
import { codec } from '../../src/xds/service.js';
import { generateWireTable } from '../../src/xds/wire-gen.js';
import { MESSAGES } from '../../src/xds/wire-table.js';
import { canonicalJson } from '../../src/xds/version.js';
import { DISABLED, FAKE_CERTS, FULL, MAPPED, meshConfig } from '../envoy/configs.js';

const repo = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));

const RAW: Record<string, RawConfigInput> = {
  full: FULL,
  mapped: MAPPED,
  disabled: DISABLED,
  capture: { egress: { capture: true } },
  defaults: {},
  'v6 route': { ingress: { mode: 'disabled' }, egress: { routes: [{ name: 'v6', listen: '127.137.0.9', remote: '[2001:db8::10]' }] } },
  // The access logger's JSON format is a google.protobuf.Struct, encoded by hand in wire.ts.
  'access log': { accessLog: true, egress: { capture: true, routes: [{ name: 'r', listen: '127.137.0.3', remote: 'r-svc' }] } },
};

function configs(): [string, ReturnType<typeof meshConfig>][] {
  const out: [string, ReturnType<typeof meshConfig>][] = Object.entries(RAW).map(([k, raw]) => [k, meshConfig(raw)]);
  for (const file of ['config/example.yaml', 'config/example-mapped.yaml']) out.push([file, loadConfigFile(repo(file))]);
  const contrast = contrastToRaw({
    CONTRAST_INGRESS_PROXY_CONFIG: 'web#8080#false##metrics#9090#true',
    CONTRAST_EGRESS_PROXY_CONFIG: 'db#127.137.0.2:5432#db.example#198.18.0.10:5432',
  });
  out.push(['contrast env', meshConfig(contrast.raw)]);
  return out;
}

const resourcesOf = (): [string, JsonObject][] =>
  configs().flatMap(([name, config]) =>
    (['ads', 'static'] as const).flatMap((secrets) => {
      const r = buildResources(config, FAKE_CERTS, { secrets });
      return [...r.listeners, ...r.clusters, ...r.secrets].map((res): [string, JsonObject] => [`${name} (${secrets}) ${JSON.stringify(res['name'])}`, res]);
    }),
  );

describe('generated encoder', () => {
  it('is generated from the current .proto files (src/xds/wire-table.ts is not stale)', () => {
    expect(readFileSync(repo('src/xds/wire-table.ts'), 'utf8')).toBe(generateWireTable());
  });

  it('encodes every resource of every config byte-identically to protobufjs reflection', () => {
    const all = resourcesOf();
    expect(all.length).toBeGreaterThan(50);
    const tls = all.filter(([, r]) => JSON.stringify(r).includes('TlsContext'));
    expect(tls.length).toBeGreaterThan(5);
    // protobufjs writes map entries in the object's key order; the generated encoder sorts them as the canonical JSON's keys come out
    // (integer-like keys first, ascending, as JavaScript orders them; the inbound listener's port map has only those).
    for (const [where, r] of all) expect(Buffer.from(encodeResource(r)).equals(Buffer.from(reflect.encodeResource(canonicalJson(r)))), where).toBe(true);
  });

  it('gives the same bytes whatever order a builder inserted the keys in (maps and Structs included)', () => {
    const reversed = (v: Json): Json =>
      Array.isArray(v)
        ? v.map(reversed)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.keys(v)
                .reverse()
                .map((k) => [k, reversed(v[k] as Json)]),
            )
          : v;
    const all = resourcesOf();
    const withMaps = all.filter(([, r]) => /typed_extension_protocol_options|json_format/.test(JSON.stringify(r)));
    expect(withMaps.length).toBeGreaterThan(0);
    expect(all.filter(([, r]) => JSON.stringify(r).includes('exact_match_map')).length).toBeGreaterThan(0);
    for (const [where, r] of all) {
      const bytes = Buffer.from(encodeResource(r));
      expect(bytes.equals(Buffer.from(encodeResource(canonicalJson(r)))), where).toBe(true);
      expect(bytes.equals(Buffer.from(encodeResource(reversed(r) as JsonObject))), where).toBe(true);
    }
  });

  it('encodes a value in every field of every message type in the table byte-identically', () => {
    const root = reflect.root();
    let fields = 0;
    for (const name of Object.keys(MESSAGES)) {
      const type = root.lookupType(name);
      const json = sample(type, 2);
      if (json === undefined) continue;
      fields += Object.keys(json).length;
      const mine = packAny({ '@type': `type.googleapis.com/${name}`, ...json }, name).value;
      const theirs = reflect.packAny({ '@type': `type.googleapis.com/${name}`, ...json }, name).value;
      expect(Buffer.from(mine).toString('hex'), name).toBe(Buffer.from(theirs).toString('hex'));
    }
    expect(fields).toBeGreaterThan(500);
  });

  it('writes the length of a nested message at every varint size, at each size boundary, as reflection does', () => {
    // A nested message's length is written in the byte reserved before it when it is under 128, and its bytes are shifted
    // once when it needs more (src/xds/wire.ts Writer.ldelim). load_assignment holds only cluster_name here: its
    // length is the name's plus 2 (tag and one length byte) or 3 (two length bytes) or 4.
    const sizes: number[] = [];
    for (const nested of [0, 1, 126, 127, 128, 129, 16_383, 16_384, 16_385, 2_097_151, 2_097_152]) {
      const name = 'n'.repeat(Math.max(0, nested - (nested >= 16_384 + 3 ? 4 : nested >= 128 + 2 ? 3 : 2)));
      const c = {
        '@type': `type.googleapis.com/${TYPE.cluster}`,
        name: 'c',
        // Nested twice, so an outer length is written after an inner one shifted its bytes.
        transport_socket: { name: 't', typed_config: { '@type': 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment', cluster_name: name } },
        load_assignment: nested === 0 ? {} : { cluster_name: name },
      };
      const mine = Buffer.from(encodeResource(c));
      expect(mine.equals(Buffer.from(reflect.encodeResource(c))), `nested message of ${nested} bytes`).toBe(true);
      sizes.push(mine.length);
    }
    expect(sizes[sizes.length - 1]).toBeGreaterThan(2 * 2_097_152);
  });

  it('refuses, naming it, a field or a packed type that is not in the table, as reflection does', () => {
    const bad = { '@type': `type.googleapis.com/${TYPE.cluster}`, name: 'c', no_such_field: 1 };
    expect(() => encodeResource(bad)).toThrow(/envoy.config.cluster.v3.Cluster has no field "no_such_field"/);
    expect(() => reflect.encodeResource(bad)).toThrow(/no field "no_such_field"/);
    const unknownAny = {
      '@type': `type.googleapis.com/${TYPE.listener}`,
      name: 'l',
      listener_filters: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }],
    };
    expect(() => encodeResource(unknownAny)).toThrow(/TlsInspector is not in the generated encoder table/);
    expect(() => encodeResource({ '@type': `type.googleapis.com/${TYPE.cluster}`, name: 'c', type: 'NOPE' })).toThrow(
      /"NOPE" is not a value of envoy.config.cluster.v3.Cluster.DiscoveryType/,
    );
    expect(() => encodeResource({ '@type': `type.googleapis.com/${TYPE.cluster}`, name: 7 })).toThrow(/name: string expected/);
    expect(() => encodeResource({ '@type': `type.googleapis.com/${TYPE.cluster}`, name: 'c', type: 'STATIC', cluster_type: { name: 'x' } })).toThrow(
      /cluster_discovery_type: multiple values/,
    );
    expect(() => reflect.encodeResource({ '@type': `type.googleapis.com/${TYPE.cluster}`, name: 'c', type: 'STATIC', cluster_type: { name: 'x' } })).toThrow(
      /multiple values/,
    );
    expect(() => encodeResource({ '@type': `type.googleapis.com/${TYPE.cluster}`, name: 'c', connect_timeout: '5 seconds' })).toThrow(/must look like "1.5s"/);
  });
});

describe('discovery messages', () => {
  const node = {
    id: 'meshlet~pod',
    cluster: 'meshlet',
    user_agent_name: 'envoy',
    client_features: ['a', 'b'],
    metadata: { fields: { k: { string_value: 'v' } } },
    locality: { zone: 'z' },
  };

  it('decodes requests as reflection does, unknown and unused fields included', () => {
    const requests: [string, Record<string, unknown>][] = [
      [
        TYPE.discoveryRequest,
        {
          version_info: 'v1',
          node,
          resource_names: ['x', 'y'],
          type_url: 'type.googleapis.com/t',
          response_nonce: '3',
          error_detail: { code: 3, message: 'bad', details: [{ type_url: 'u', value: Buffer.from([1, 2]) }] },
        },
      ],
      [TYPE.discoveryRequest, {}],
      [
        TYPE.deltaRequest,
        {
          node,
          type_url: 't',
          resource_names_subscribe: ['a'],
          resource_names_unsubscribe: ['b'],
          initial_resource_versions: { a: '1', b: '2' },
          response_nonce: 'n',
          error_detail: { code: 2, message: 'm' },
        },
      ],
      [TYPE.deltaRequest, { node: { id: 'only-id' } }],
    ];
    for (const [type, value] of requests) {
      const bytes = reflect.codec(type).serialize(value);
      const theirs = reflect.codec<Record<string, unknown>>(type).deserialize(bytes);
      const mine = codec<Record<string, unknown>>(type).deserialize(bytes);
      for (const key of [
        'version_info',
        'resource_names',
        'type_url',
        'response_nonce',
        'resource_names_subscribe',
        'resource_names_unsubscribe',
        'initial_resource_versions',
      ]) {
        expect(mine[key], `${type}.${key}`).toEqual(theirs[key]);
      }
      const n = (o: Record<string, unknown>): unknown =>
        o['node'] ? { id: (o['node'] as Record<string, unknown>)['id'], cluster: (o['node'] as Record<string, unknown>)['cluster'] } : o['node'];
      expect(n(mine)).toEqual(n(theirs));
      const e = (o: Record<string, unknown>): unknown =>
        o['error_detail']
          ? { code: (o['error_detail'] as Record<string, unknown>)['code'], message: (o['error_detail'] as Record<string, unknown>)['message'] }
          : o['error_detail'];
      expect(e(mine)).toEqual(e(theirs));
    }
  });

  it("reads only the node's id and cluster: Envoy's extension list is skipped on the wire, and what follows the node still decodes", () => {
    const extensions = Array.from({ length: 300 }, (_, i) => ({
      name: `envoy.filters.network.f${i}`,
      category: 'envoy.filters.network',
      type_urls: [`type.googleapis.com/x.v3.F${i}`],
      version: { version: { major_number: 1, minor_number: 40 } },
    }));
    const bytes = reflect.codec(TYPE.deltaRequest).serialize({
      node: { id: 'meshlet~pod', cluster: 'c', user_agent_name: 'envoy', extensions, client_features: ['f'], locality: { zone: 'z' } },
      type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
      resource_names_subscribe: ['a', 'b'],
      initial_resource_versions: { a: '1' },
    });
    expect(bytes.length).toBeGreaterThan(20_000);
    const theirs = reflect.codec<{ node: { extensions: unknown[] } }>(TYPE.deltaRequest).deserialize(bytes);
    expect(theirs.node.extensions).toHaveLength(300);
    const mine = codec<Record<string, unknown>>(TYPE.deltaRequest).deserialize(bytes);
    const node = mine['node'] as Record<string, unknown>;
    expect({ id: node['id'], cluster: node['cluster'] }).toEqual({ id: 'meshlet~pod', cluster: 'c' });
    expect({ extensions: node['extensions'], features: node['client_features'], agent: node['user_agent_name'] }).toEqual({
      extensions: [],
      features: [],
      agent: '',
    });
    expect(mine['type_url']).toBe('type.googleapis.com/envoy.config.cluster.v3.Cluster');
    expect(mine['resource_names_subscribe']).toEqual(['a', 'b']);
    expect(mine['initial_resource_versions']).toEqual({ a: '1' });
  });

  it('encodes responses byte-identically to reflection', () => {
    const any = { type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', value: Buffer.from([10, 1, 99]) };
    const responses: [string, Record<string, unknown>][] = [
      [TYPE.discoveryResponse, { version_info: 'v', resources: [any, any], type_url: any.type_url, nonce: '1' }],
      [TYPE.discoveryResponse, { version_info: '', resources: [], type_url: '', nonce: '' }],
      [
        TYPE.deltaResponse,
        {
          system_version_info: 's',
          resources: [{ name: 'a', version: '1', resource: any }],
          type_url: any.type_url,
          removed_resources: ['b', 'c'],
          nonce: '2',
        },
      ],
    ];
    for (const [type, value] of responses) {
      expect(codec(type).serialize(value).toString('hex'), type).toBe(reflect.codec(type).serialize(value).toString('hex'));
    }
  });
});

/**
 * An Envoy-JSON value for `type` that sets every field (oneof members too:
 * the encoders must agree even there), nested messages to `depth` levels.
 */
function sample(type: protobuf.Type, depth: number): JsonObject | undefined {
  const name = type.fullName.slice(1);
  if (name === 'google.protobuf.Struct' || name === 'google.protobuf.Value' || name === 'google.protobuf.ListValue') return undefined;
  const out: JsonObject = {};
  const oneofs = new Set<string>();
  for (const f of type.fieldsArray) {
    f.resolve();
    // Both encoders refuse two members of one oneof; that refusal is checked above.
    if (f.partOf && f.partOf.oneof.length > 1) {
      if (oneofs.has(f.partOf.name)) continue;
      oneofs.add(f.partOf.name);
    }
    const one = (i: number): Json | undefined => fieldSample(f, depth, i);
    const v = one(1);
    if (v === undefined) continue;
    if (f instanceof protobuf.MapField) out[f.name] = { k1: v, k2: one(2) ?? v };
    else if (f.repeated) out[f.name] = [v, one(2) ?? v];
    else out[f.name] = v;
  }
  return out;
}

function fieldSample(f: protobuf.Field, depth: number, i: number): Json | undefined {
  const rt = f.resolvedType;
  if (rt instanceof protobuf.Enum) {
    const names = Object.keys(rt.values);
    return names[i % names.length] ?? null;
  }
  if (rt instanceof protobuf.Type) {
    const n = rt.fullName.slice(1);
    if (n === 'google.protobuf.Any') return depth > 0 ? { '@type': `type.googleapis.com/${TYPE.tcpProxy}`, stat_prefix: `s${i}`, cluster: 'c' } : undefined;
    if (n === 'google.protobuf.Duration') return `${i}.25s`;
    if (n.startsWith('google.protobuf.') && n.endsWith('Value') && n !== 'google.protobuf.Value') {
      const vf = rt.fields['value'];
      return vf ? scalar(vf.type, i) : undefined;
    }
    if (depth <= 0) return undefined;
    return sample(rt, depth - 1) ?? undefined;
  }
  return scalar(f.type, i);
}

function scalar(type: string, i: number): Json | undefined {
  switch (type) {
    case 'string':
      return `v${i}-é`;
    case 'bool':
      return i % 2 === 1;
    case 'bytes':
      return Buffer.from([i, 255, 0]).toString('base64');
    case 'double':
    case 'float':
      return i + 0.5;
    case 'int32':
    case 'sint32':
    case 'sfixed32':
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return i === 2 ? -7 : 300 * i;
    default:
      return 300 * i + 70000;
  }
}
