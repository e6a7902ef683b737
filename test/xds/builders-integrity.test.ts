// Whole-output properties of the builders: every nested "@type" survives the
// real protobuf encoder, references resolve, output is deterministic and
// names are stable.
import { describe, expect, it, vi } from 'vitest';
import { buildResources, type Resources } from '../../src/xds/builders/index.js';
import { encodeResource, packAny, TYPE, typeUrl, type Json, type JsonObject } from '../../src/xds/protos.js';
import { decodeAny } from '../../src/xds/reflect.js';
import { ACCESS_LOG_FORMAT, stdoutAccessLog } from '../../src/xds/builders/access-log.js';
import { buildSnapshot } from '../../src/xds/snapshot.js';
import type { RawConfigInput } from '../../src/config/schema.js';
import { DISABLED, FAKE_CERTS, FULL, MAPPED, meshConfig } from '../envoy/configs.js';

const CONFIGS = {
  full: FULL,
  mapped: MAPPED,
  disabled: DISABLED,
  capture: { egress: { capture: true } },
  defaults: {},
  accessLog: { ...FULL, accessLog: true, egress: { ...FULL.egress, capture: true } },
  mappedAccessLog: { ...MAPPED, accessLog: true },
} as const;

function walk(v: Json, visit: (o: JsonObject, key: string | undefined) => void, key?: string): void {
  if (Array.isArray(v)) v.forEach((x) => walk(x, visit, key));
  else if (v !== null && typeof v === 'object') {
    visit(v, key);
    for (const [k, x] of Object.entries(v)) walk(x, visit, k);
  }
}

/** Every "@type" with the path of field names leading to it, e.g. "filter_chains.filters.typed_config ← TcpProxy". */
function typesIn(resource: JsonObject): string[] {
  const out: string[] = [];
  walk(resource, (o, key) => {
    if (typeof o['@type'] === 'string') out.push(`${key ?? '(top)'} ${o['@type']}`);
  });
  return out.sort();
}

const nameOf = (r: JsonObject): string => (typeof r['name'] === 'string' ? r['name'] : '(unnamed)');

function all(r: Resources): JsonObject[] {
  return [...r.listeners, ...r.clusters, ...r.secrets];
}

describe.each(Object.entries(CONFIGS))('%s config', (_name, raw) => {
  const resources = buildResources(meshConfig(raw), FAKE_CERTS);

  it('keeps every nested @type through encodeResource/decodeAny', () => {
    for (const r of all(resources)) {
      const decoded = decodeAny({ type_url: r['@type'] as string, value: encodeResource(r) });
      expect(typesIn(decoded), nameOf(r)).toEqual(typesIn(r));
      // An unloaded type would decode as { type_url, value } instead of "@type".
      walk(decoded, (o) => expect(o['type_url'], nameOf(r)).toBeUndefined());
    }
  });

  it('references only clusters and secrets it defines, and defines no unused cluster', () => {
    const clusters = new Set(resources.clusters.map((c) => c['name']));
    const secrets = new Set(resources.secrets.map((s) => s['name']));
    const usedClusters = new Set<Json>();
    walk({ all: all(resources) }, (o, key) => {
      if (typeof o['@type'] === 'string' && o['@type'].endsWith('.TcpProxy')) usedClusters.add(o['cluster'] ?? null);
      if (key?.endsWith('sds_secret_config') || key?.endsWith('sds_secret_configs')) expect(secrets).toContain(o['name']);
    });
    expect([...usedClusters].sort()).toEqual([...clusters].sort());
  });

  it('is deterministic: same input, byte-identical JSON', () => {
    const again = buildResources(meshConfig(structuredClone(raw)), { ...FAKE_CERTS });
    expect(JSON.stringify(again)).toBe(JSON.stringify(resources));
  });

  it('has unique resource names per kind and unique filter chain names per listener', () => {
    for (const list of [resources.listeners, resources.clusters, resources.secrets]) {
      const names = list.map((x) => x['name']);
      expect(new Set(names).size).toBe(names.length);
    }
    for (const l of resources.listeners) {
      const names = (l['filter_chains'] as JsonObject[]).map((c) => c['name']);
      expect(new Set(names).size, nameOf(l)).toBe(names.length);
    }
  });
});

describe('stability', () => {
  it('covers every type meshlet packs', () => {
    const types = new Set(all(buildResources(meshConfig(FULL), FAKE_CERTS)).flatMap((r) => typesIn(r).map((t) => t.split(' ')[1])));
    expect([...types].map((t) => t?.split('.').at(-1)).sort()).toEqual([
      'Cluster',
      'ClusterConfig',
      'Config',
      'DestinationPortInput',
      'DownstreamTlsContext',
      'FilterConfig',
      'Listener',
      'OriginalDst',
      'Secret',
      'StringValue',
      'TcpProxy',
      'UpstreamTlsContext',
    ]);
  });

  it('with accessLog, each listener has exactly one stdout logger (one line per connection), and its JSON format survives the encoder', () => {
    const listeners = buildResources(meshConfig({ ...FULL, accessLog: true, egress: { ...FULL.egress, capture: true } }), FAKE_CERTS).listeners;
    expect(listeners.length).toBeGreaterThan(3);
    for (const l of listeners) {
      const loggers: JsonObject[] = [];
      walk(l, (o) => {
        if (typeof o['@type'] === 'string' && o['@type'].endsWith('.StdoutAccessLog')) loggers.push(o);
      });
      expect(loggers, nameOf(l)).toHaveLength(1);
      expect(l['access_log'], nameOf(l)).toHaveLength(1);
    }
    // google.protobuf.Struct: every key and string value of the format comes back unchanged.
    const decoded = decodeAny({ type_url: typeUrl(TYPE.stdoutAccessLog), value: packAny(stdoutAccessLog()['typed_config'] as JsonObject).value });
    const fields = ((decoded['log_format'] as JsonObject)['json_format'] as JsonObject)['fields'] as Record<string, JsonObject>;
    expect(Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, Object.values(v)[0] ?? null]))).toEqual(ACCESS_LOG_FORMAT);
    // Off by default: not one logger.
    expect(JSON.stringify(buildResources(meshConfig(FULL), FAKE_CERTS).listeners)).not.toContain('access_log');
  });

  it('a certificate rotation changes the secrets only', () => {
    const a = buildResources(meshConfig(FULL), FAKE_CERTS);
    const b = buildResources(meshConfig(FULL), { caPem: 'CA2', chainPem: 'CHAIN2', keyPem: 'KEY2' });
    expect(b.listeners).toEqual(a.listeners);
    expect(b.clusters).toEqual(a.clusters);
    expect(b.secrets.map((s) => s['name'])).toEqual(a.secrets.map((s) => s['name']));
    expect(b.secrets).not.toEqual(a.secrets);
  });

  it('editing one route leaves every other resource byte-identical', () => {
    const edited = structuredClone(FULL);
    const route = edited.egress?.routes?.[0];
    if (!route) throw new Error('FULL has routes');
    route.remote = 'emoji-svc-v2:8080';
    const a = buildResources(meshConfig(FULL), FAKE_CERTS);
    const b = buildResources(meshConfig(edited), FAKE_CERTS);
    const diff = (x: JsonObject[], y: JsonObject[]): Json[] => x.filter((r, i) => JSON.stringify(r) !== JSON.stringify(y[i])).map((r) => r['name'] ?? null);
    expect(diff(a.listeners, b.listeners)).toEqual([]);
    expect(diff(a.clusters, b.clusters)).toEqual(['meshlet-route-emoji']);
  });
});

describe('reuse across rebuilds (builders/memo.ts)', () => {
  const routes = (remote: string): RawConfigInput => ({
    ...FULL,
    egress: {
      ...FULL.egress,
      routes: [...(FULL.egress?.routes ?? []).filter((r) => r.listen?.includes(':')), { name: 'extra', listen: '127.0.0.9:7000', remote }],
    },
  });
  const find = (list: JsonObject[], name: string): JsonObject => {
    const found = list.find((x) => x['name'] === name);
    if (!found) throw new Error(`no ${name}`);
    return found;
  };

  it('hands back the same frozen listener and cluster for an unchanged route, and new ones for a changed route or pod-wide setting', () => {
    const a = buildResources(meshConfig(routes('198.18.0.50:7000')), FAKE_CERTS);
    const b = buildResources(meshConfig(routes('198.18.0.51:7000')), FAKE_CERTS);
    const other = a.listeners.find((l) => typeof l['name'] === 'string' && l['name'].startsWith('meshlet-route-') && l['name'] !== 'meshlet-route-extra');
    expect(other).toBeDefined();
    const name = other!['name'] as string;
    expect(find(b.listeners, name)).toBe(other);
    expect(find(b.clusters, name)).toBe(find(a.clusters, name));
    expect(Object.isFrozen(other)).toBe(true);
    expect(() => ((other!['filter_chains'] as JsonObject[])[0]!['name'] = 'changed')).toThrow(TypeError);
    // The edited route: a new cluster (its remote changed); its listener depends on the route alone, and changed with it.
    expect(find(b.clusters, 'meshlet-route-extra')).not.toBe(find(a.clusters, 'meshlet-route-extra'));
    expect(JSON.stringify(find(b.clusters, 'meshlet-route-extra'))).toContain('198.18.0.51');
    // The secret source and a pod-wide setting the cluster reads (the key exchange) both give new clusters.
    const stat = buildResources(meshConfig(routes('198.18.0.51:7000')), FAKE_CERTS, { secrets: 'static' });
    expect(find(stat.clusters, name)).not.toBe(find(b.clusters, name));
    expect(JSON.stringify(find(stat.clusters, name))).not.toContain('sds_config');
    const strict = buildResources(
      meshConfig({ ...routes('198.18.0.51:7000'), ingress: { mode: 'disabled' }, tls: { keyExchange: 'pq-required' } }),
      FAKE_CERTS,
    );
    expect(find(strict.clusters, name)).not.toBe(find(b.clusters, name));
    expect(JSON.stringify(find(strict.clusters, name))).not.toContain('"X25519"');
  });

  it('a snapshot of reused objects reuses their encoded resources without serialising them again, and the bytes equal a fresh encoding', () => {
    const first = buildSnapshot(buildResources(meshConfig(routes('198.18.0.50:7000')), FAKE_CERTS));
    const resources = buildResources(meshConfig(routes('198.18.0.50:7000')), FAKE_CERTS);
    const reused = [...resources.listeners, ...resources.clusters].filter((r) => Object.isFrozen(r));
    expect(reused.length).toBeGreaterThan(2);
    const serialised = new Set<unknown>();
    const stringify = JSON.stringify.bind(JSON);
    const spy = vi.spyOn(JSON, 'stringify').mockImplementation((v: unknown, ...rest: unknown[]) => {
      serialised.add(v);
      return stringify(v, ...(rest as [never]));
    });
    let again: ReturnType<typeof buildSnapshot>;
    try {
      again = buildSnapshot(resources);
    } finally {
      spy.mockRestore();
    }
    for (const r of reused) expect(serialised.has(r), JSON.stringify(r['name'])).toBe(false);
    for (const [url, t] of Object.entries(again.types)) {
      for (const [n, r] of t.resources) {
        expect(r, n).toBe(first.types[url]?.resources.get(n));
        expect(Buffer.from(r.any.value).equals(Buffer.from(encodeResource(structuredClone(r.json)))), n).toBe(true);
      }
    }
  });
});
