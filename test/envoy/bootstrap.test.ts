// The bootstrap's shape and its byte-stable rendering.
import { describe, expect, it } from 'vitest';
import { buildBootstrap, renderBootstrap } from '../../src/envoy/bootstrap.js';
import { buildStaticBootstrap } from '../../src/envoy/static-bootstrap.js';
import { canonicalJson as canonical } from '../../src/xds/version.js';
import { buildResources } from '../../src/xds/builders/index.js';
import type { JsonObject } from '../../src/xds/protos.js';
import { FAKE_CERTS, FULL, meshConfig } from './configs.js';

const config = meshConfig({ ...FULL, proxy: { xdsSocket: '/run/meshlet/xds.sock' } });

describe('buildBootstrap (ADS)', () => {
  const b = buildBootstrap(config, { nodeId: 'pod-a', cluster: 'ns-a' });

  it('names the node and puts admin on a 0600 Unix socket in the proxy-owned envoy/ directory, never on TCP', () => {
    expect(b['node']).toEqual({ id: 'pod-a', cluster: 'ns-a' });
    expect(b['admin']).toEqual({ address: { pipe: { path: '/run/meshlet/envoy/admin.sock', mode: 0o600 } } });
  });

  it('takes listeners and clusters from delta ADS over the Unix socket, HTTP/2, and retries a failed connect within 10 ms', () => {
    expect(b['dynamic_resources']).toEqual({
      ads_config: {
        api_type: 'DELTA_GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: 'meshlet-xds', retry_policy: { retry_back_off: { base_interval: '0.010s', max_interval: '1s' } } } }],
        set_node_on_first_message_only: true,
      },
      lds_config: { ads: {}, resource_api_version: 'V3' },
      cds_config: { ads: {}, resource_api_version: 'V3' },
    });
    const xds = ((b['static_resources'] as JsonObject)['clusters'] as JsonObject[])[0] as JsonObject;
    expect(xds['name']).toBe('meshlet-xds');
    expect(JSON.stringify(xds['load_assignment'])).toContain('{"pipe":{"path":"/run/meshlet/xds.sock"}}');
    expect(JSON.stringify(xds['typed_extension_protocol_options'])).toContain('"explicit_http_config":{"http2_protocol_options":{}}');
  });

  it('uses state-of-the-world ADS when delta is false', () => {
    const sotw = buildBootstrap(config, { nodeId: 'pod-a', cluster: 'ns-a', delta: false });
    expect(((sotw['dynamic_resources'] as JsonObject)['ads_config'] as JsonObject)['api_type']).toBe('GRPC');
  });
});

describe('buildStaticBootstrap', () => {
  it('inlines every resource, untyped, with secrets referenced by name', () => {
    const s = buildStaticBootstrap(config, FAKE_CERTS);
    const r = buildResources(config, FAKE_CERTS, { secrets: 'static' });
    const statics = s['static_resources'] as Record<string, JsonObject[]>;
    for (const kind of ['listeners', 'clusters', 'secrets'] as const) {
      expect(statics[kind]?.map((x) => x['name'])).toEqual(r[kind].map((x) => x['name']));
      for (const x of statics[kind] ?? []) expect(x['@type']).toBeUndefined();
    }
    expect(s['dynamic_resources']).toBeUndefined();
    expect(JSON.stringify(s)).not.toContain('sds_config');
  });
});

describe('renderBootstrap', () => {
  it('is byte-stable whatever the key order, and ends with a newline', () => {
    const b = buildBootstrap(config, { nodeId: 'pod-a', cluster: 'ns-a' });
    const reversed = JSON.parse(
      JSON.stringify(b, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v)),
    ) as JsonObject;
    expect(JSON.stringify(reversed)).not.toBe(JSON.stringify(b));
    expect(renderBootstrap(reversed)).toBe(renderBootstrap(b));
    expect(renderBootstrap(b).endsWith('}\n')).toBe(true);
    expect(renderBootstrap(buildStaticBootstrap(config, FAKE_CERTS))).toBe(renderBootstrap(buildStaticBootstrap(config, { ...FAKE_CERTS })));
  });

  it('sorts keys but keeps array order', () => {
    expect(canonical({ b: [3, 1, { z: 1, a: 2 }], a: null })).toEqual({ a: null, b: [3, 1, { a: 2, z: 1 }] });
    expect(Object.keys(canonical({ b: 1, '@type': 'x', a: 2 }) as JsonObject)).toEqual(['@type', 'a', 'b']);
  });
});
