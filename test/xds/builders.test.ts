// Table tests of the pure builders, feature by feature.
import { describe, expect, it } from 'vitest';
import { buildClusters, buildListeners, buildResources, buildSecrets, CLUSTER, LISTENER, nextChainGenerations, SECRET } from '../../src/xds/builders/index.js';
import { sanMatcher } from '../../src/xds/builders/tls.js';
import { stringify } from 'yaml';
import type { RawConfigInput } from '../../src/config/schema.js';
import { reloadConfig } from '../../src/run/reload.js';
import { snapshotFor } from '../../src/run/snapshot-for.js';
import { TYPE_URL } from '../../src/xds/protos.js';
import { typeOf } from '../../src/xds/snapshot.js';
import type { Json, JsonObject } from '../../src/xds/protos.js';
import { DISABLED, FAKE_CERTS, FULL, MAPPED, meshConfig } from '../envoy/configs.js';

const obj = (v: Json | undefined): JsonObject => v as JsonObject;
const arr = (v: Json | undefined): JsonObject[] => v as JsonObject[];
const named = (list: JsonObject[], name: string): JsonObject => {
  const found = list.find((x) => x['name'] === name);
  if (!found) throw new Error(`no ${name} in ${JSON.stringify(list.map((x) => x['name']))}`);
  return found;
};
const tlsCtx = (chain: JsonObject): JsonObject | undefined => obj(chain['transport_socket'])?.['typed_config'] as JsonObject | undefined;
const proxiedTo = (chain: JsonObject): string => obj(arr(chain['filters']).at(-1)?.['typed_config'])['cluster'] as string;
const full = meshConfig(FULL);

describe('ingress, tproxy mode', () => {
  const l = named(buildListeners(full), LISTENER.inbound);
  const chains = arr(l['filter_chains']);
  const chain = (name: string): JsonObject => named(chains, name);
  const tree = obj(obj(l['filter_chain_matcher'])['matcher_tree']);
  const chainOf = (listener: JsonObject): Record<string, string> => {
    const map = obj(obj(obj(obj(listener['filter_chain_matcher'])['matcher_tree'])['exact_match_map'])['map']);
    return Object.fromEntries(
      Object.entries(map).map(([port, m]) => {
        const action = obj(obj(m)['action']);
        // The action names the chain twice: the extension name, and the StringValue Envoy actually reads.
        expect(obj(action['typed_config'])).toEqual({ '@type': 'type.googleapis.com/google.protobuf.StringValue', value: action['name'] });
        return [port, action['name'] as string];
      }),
    );
  };
  const forPort = (port: number): JsonObject => chain(chainOf(l)[String(port)] ?? `(no chain for ${port})`);

  it('is one transparent listener on both families with original_dst and no tls_inspector', () => {
    expect(l['address']).toEqual({ socket_address: { address: '0.0.0.0', port_value: 15006 } });
    expect(l['additional_addresses']).toEqual([{ address: { socket_address: { address: '::', port_value: 15006 } } }]);
    expect(l['transparent']).toBe(true);
    expect(arr(l['listener_filters']).map((f) => f['name'])).toEqual(['envoy.filters.listener.original_dst']);
  });

  it('picks the chain by destination port: a matcher on the restored destination, no per-chain match', () => {
    expect(obj(tree['input'])['typed_config']).toEqual({
      '@type': 'type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.DestinationPortInput',
    });
    expect(Object.keys(chainOf(l))).toEqual(['5432', '7890', '8080', '8444', '9090', '15001', '15002', '15006', '15020']);
    for (const c of chains) expect(c['filter_chain_match'], JSON.stringify(c['name'])).toBeUndefined();
    // Every name the matcher can pick is a chain of the listener.
    for (const name of Object.values(chainOf(l))) expect(chain(name)['name']).toBe(name);
  });

  it('blackholes every port of the proxy itself (Contrast #1142)', () => {
    const holes = Object.entries(chainOf(l)).filter(([, name]) => proxiedTo(chain(name)) === CLUSTER.blackhole);
    expect(holes.map(([port]) => Number(port))).toEqual([15001, 15002, 15006, 15020]);
    expect(chains.filter((c) => proxiedTo(c) === CLUSTER.blackhole).map((c) => c['name'])).toEqual(['meshlet-inbound-blackhole']);
  });

  it('maps a proxy port to the blackhole even if a config that skipped validation also lists it', () => {
    const odd = { ...full, ingress: { ...full.ingress, ports: [...full.ingress.ports, { ...full.ingress.ports[0]!, name: 'own', port: 15006 }] } };
    expect(chainOf(named(buildListeners(odd), LISTENER.inbound))['15006']).toBe('meshlet-inbound-blackhole');
  });

  it.each([
    ['mtls with allowedSans', 5432, true, ['IP_ADDRESS', 'DNS', 'URI']],
    ['mtls via ingress.default', 9090, true, []],
    ['tls', 8080, false, []],
    ['tls with allowTls12', 8444, false, []],
  ] as const)('%s: port %i requires a client cert: %s', (_label, port, mtls, sanTypes) => {
    const c = forPort(port);
    expect(proxiedTo(c)).toBe(CLUSTER.inboundApp);
    const ctx = obj(tlsCtx(c));
    const common = obj(ctx['common_tls_context']);
    expect(common['tls_certificate_sds_secret_configs']).toEqual([{ name: SECRET.workload, sds_config: { ads: {}, resource_api_version: 'V3' } }]);
    expect(ctx['require_client_certificate'] ?? false).toBe(mtls);
    // TLS 1.3 only (under 1.2 a client certificate would cross in clear), except
    // a tls port that opted in; the hybrid post-quantum group first everywhere.
    expect(common['tls_params']).toEqual({
      tls_minimum_protocol_version: port === 8444 ? 'TLSv1_2' : 'TLSv1_3',
      tls_maximum_protocol_version: 'TLSv1_3',
      ecdh_curves: ['X25519MLKEM768', 'X25519', 'P-256'],
    });
    if (!mtls) expect(Object.keys(common)).toEqual(['tls_params', 'tls_certificate_sds_secret_configs']);
    else if (sanTypes.length === 0) expect(obj(common['validation_context_sds_secret_config'])['name']).toBe(SECRET.meshCa);
    else {
      const combined = obj(common['combined_validation_context']);
      expect(obj(combined['validation_context_sds_secret_config'])['name']).toBe(SECRET.meshCa);
      // Sorted (the chain is shared by every port with these SANs, in any order).
      expect(arr(obj(combined['default_validation_context'])['match_typed_subject_alt_names']).map((m) => m['san_type'])).toEqual(sanTypes);
    }
  });

  it('forwards a plaintext port without TLS if stale rules ever send it here', () => {
    const c = forPort(7890);
    expect(c['name']).toBe('meshlet-inbound-plaintext');
    expect(c['transport_socket']).toBeUndefined();
    expect(proxiedTo(c)).toBe(CLUSTER.inboundApp);
  });

  it('gives ports with the same policy one chain, named by the policy; the order of ports changes nothing', () => {
    const ports = [
      { name: 'a', port: 8001, policy: 'mtls' as const },
      { name: 'b', port: 8002, policy: 'tls' as const },
      { name: 'c', port: 8003, policy: 'mtls' as const, allowedSans: ['b.mesh.test', 'a.mesh.test'] },
      { name: 'd', port: 8004, policy: 'mtls' as const, allowedSans: ['a.mesh.test', 'b.mesh.test', 'a.mesh.test'] },
      { name: 'e', port: 8005, policy: 'mtls' as const, allowedSans: ['a.mesh.test'] },
      { name: 'f', port: 8006, policy: 'tls' as const, allowTls12: true },
      { name: 'g', port: 8007, policy: 'mtls' as const, keyExchange: 'pq-required' as const },
      { name: 'h', port: 8008, policy: 'mtls' as const },
    ];
    const listener = (list: typeof ports): JsonObject => named(buildListeners(meshConfig({ ingress: { ports: list } })), LISTENER.inbound);
    const built = listener(ports);
    const of = chainOf(built);
    expect(of['8001']).toBe('meshlet-inbound-mtls');
    expect(of['8008']).toBe('meshlet-inbound-mtls');
    expect(of['8002']).toBe('meshlet-inbound-tls');
    expect(of['8006']).toBe('meshlet-inbound-tls-tls12');
    expect(of['8007']).toBe('meshlet-inbound-mtls-pq-required');
    // The same SANs in another order, or repeated, are the same chain; other SANs are another.
    expect(of['8003']).toMatch(/^meshlet-inbound-mtls-sans-[0-9a-f]{12}$/);
    expect(of['8004']).toBe(of['8003']);
    expect(of['8005']).toMatch(/^meshlet-inbound-mtls-sans-[0-9a-f]{12}$/);
    expect(of['8005']).not.toBe(of['8003']);
    expect(arr(built['filter_chains']).map((c) => c['name'])).toEqual(
      [
        'meshlet-inbound-blackhole',
        'meshlet-inbound-mtls',
        'meshlet-inbound-mtls-pq-required',
        of['8003'],
        of['8005'],
        'meshlet-inbound-tls',
        'meshlet-inbound-tls-tls12',
      ].sort(),
    );
    expect(JSON.stringify(listener([...ports].reverse()))).toBe(JSON.stringify(built));
  });

  it("moving one port to another policy changes only that port's entry: every chain another port uses stays byte-identical", () => {
    const ports = Array.from({ length: 50 }, (_, i) => ({ name: `p${i}`, port: 20_000 + i, policy: i % 2 === 0 ? ('mtls' as const) : ('tls' as const) }));
    const before = named(buildListeners(meshConfig({ ingress: { ports } })), LISTENER.inbound);
    const edited = ports.map((p, i) => (i === 0 ? { ...p, policy: 'tls' as const } : p));
    const after = named(buildListeners(meshConfig({ ingress: { ports: edited } })), LISTENER.inbound);
    // Envoy updates such a listener in place: chains it already has are kept, with their connections.
    expect(JSON.stringify(after['filter_chains'])).toBe(JSON.stringify(before['filter_chains']));
    expect(JSON.stringify(after['default_filter_chain'])).toBe(JSON.stringify(before['default_filter_chain']));
    const [b, a] = [chainOf(before), chainOf(after)];
    expect(Object.keys(a).filter((k) => a[k] !== b[k])).toEqual(['20000']);
    expect(a['20000']).toBe('meshlet-inbound-tls');
  });

  it.each(['mtls', 'tls', 'plaintext'] as const)('applies ingress.default %s to unlisted ports', (policy) => {
    const d = obj(named(buildListeners(meshConfig({ ingress: { default: policy } })), LISTENER.inbound)['default_filter_chain']);
    expect(d['filter_chain_match']).toBeUndefined();
    expect(proxiedTo(d)).toBe(CLUSTER.inboundApp);
    if (policy === 'plaintext') expect(d['transport_socket']).toBeUndefined();
    else expect(tlsCtx(d)?.['require_client_certificate'] ?? false).toBe(policy === 'mtls');
  });

  it('sends the app connection from 127.0.0.6 / ::6 to the original destination', () => {
    const app = named(buildClusters(full), CLUSTER.inboundApp);
    expect(app['type']).toBe('ORIGINAL_DST');
    expect(app['lb_policy']).toBe('CLUSTER_PROVIDED');
    expect(app['upstream_bind_config']).toEqual({
      source_address: { address: '127.0.0.6', port_value: 0 },
      extra_source_addresses: [{ address: { address: '::6', port_value: 0 } }],
    });
    expect(app['transport_socket']).toBeUndefined();
    expect(named(buildClusters(full), CLUSTER.blackhole)).toMatchObject({ type: 'STATIC', load_assignment: { cluster_name: CLUSTER.blackhole } });
  });
});

describe('ingress, mapped mode', () => {
  const c = meshConfig(MAPPED);
  const listeners = buildListeners(c);
  const clusters = buildClusters(c);

  it('listens on each mapped port, both families, not transparent, and skips plaintext ports', () => {
    expect(listeners.map((l) => l['name'])).toEqual(['meshlet-mapped-web', 'meshlet-mapped-db']);
    const db = named(listeners, 'meshlet-mapped-db');
    expect(db['address']).toEqual({ socket_address: { address: '0.0.0.0', port_value: 15432 } });
    expect(db['additional_addresses']).toEqual([{ address: { socket_address: { address: '::', port_value: 15432 } } }]);
    expect(db['transparent']).toBeUndefined();
    expect(db['listener_filters']).toBeUndefined();
    const chain = arr(db['filter_chains'])[0] as JsonObject;
    expect(tlsCtx(chain)?.['require_client_certificate']).toBe(true);
    expect(proxiedTo(chain)).toBe('meshlet-app-5432');
    expect(tlsCtx(arr(named(listeners, 'meshlet-mapped-web')['filter_chains'])[0] as JsonObject)?.['require_client_certificate']).toBeUndefined();
  });

  it('forwards to the app on loopback from 127.0.0.6, with no inbound blackhole or ORIGINAL_DST cluster', () => {
    expect(clusters.map((x) => x['name'])).toEqual(['meshlet-app-8080', 'meshlet-app-5432']);
    const app = named(clusters, 'meshlet-app-5432');
    expect(app['type']).toBe('STATIC');
    expect(JSON.stringify(app['load_assignment'])).toContain('"address":"127.0.0.1","port_value":5432');
    expect(obj(obj(app['upstream_bind_config'])['source_address'])['address']).toBe('127.0.0.6');
  });
});

describe('ingress disabled', () => {
  it('has no inbound listener or cluster', () => {
    const r = buildResources(meshConfig(DISABLED), FAKE_CERTS);
    expect(r.listeners.map((l) => l['name'])).toEqual(['meshlet-route-emoji']);
    expect(r.clusters.map((x) => x['name'])).toEqual(['meshlet-route-emoji']);
  });
});

describe('egress routes with a port', () => {
  const listeners = buildListeners(full);
  const clusters = buildClusters(full);
  const upstream = (name: string): JsonObject => obj(obj(named(clusters, name)['transport_socket'])['typed_config']);

  it('listens on listenIp:listenPort and proxies to the route cluster', () => {
    const l = named(listeners, 'meshlet-route-emoji');
    expect(l['address']).toEqual({ socket_address: { address: '127.137.0.1', port_value: 8081 } });
    expect(proxiedTo(arr(l['filter_chains'])[0] as JsonObject)).toBe('meshlet-route-emoji');
  });

  it.each([
    ['a DNS name with a port', 'meshlet-route-emoji', 'STRICT_DNS', 'emoji-svc', 8080],
    ['a DNS name, listen port reused', 'meshlet-route-voting', 'STRICT_DNS', 'voting-svc', 8081],
    ['an IPv4 literal', 'meshlet-route-v4ip', 'STATIC', '198.18.0.11', 9443],
    ['an IPv6 literal (portless listen, fixed remote port)', 'meshlet-route-fixed', 'STATIC', '2001:db8::10', 443],
  ])('%s: %s is %s to %s:%i', (_label, name, type, host, port) => {
    const c = named(clusters, name);
    expect(c['type']).toBe(type);
    expect(obj(obj(obj(arr(obj(arr(obj(c['load_assignment'])['endpoints'])[0])['lb_endpoints'])[0])['endpoint'])['address'])).toEqual({
      socket_address: { address: host, port_value: port },
    });
    if (type === 'STRICT_DNS') expect(c['dns_lookup_family']).toBe('V4_PREFERRED');
  });

  it('originates mTLS with the workload cert and mesh CA; SNI and SAN pins only when configured', () => {
    const plain = upstream('meshlet-route-emoji');
    expect(plain['sni']).toBeUndefined();
    expect(obj(plain['common_tls_context'])).toEqual({
      // Envoy's client default caps at TLS 1.2, where both certificates cross the wire in clear: 1.3 only.
      tls_params: { tls_minimum_protocol_version: 'TLSv1_3', tls_maximum_protocol_version: 'TLSv1_3', ecdh_curves: ['X25519MLKEM768', 'X25519', 'P-256'] },
      tls_certificate_sds_secret_configs: [{ name: SECRET.workload, sds_config: { ads: {}, resource_api_version: 'V3' } }],
      validation_context_sds_secret_config: { name: SECRET.meshCa, sds_config: { ads: {}, resource_api_version: 'V3' } },
    });
    const pinned = upstream('meshlet-route-voting');
    expect(pinned['sni']).toBe('voting.mesh.test');
    expect(obj(obj(pinned['common_tls_context'])['combined_validation_context'])['default_validation_context']).toEqual({
      match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'voting.mesh.test' } }],
    });
  });
});

describe('egress routes without a port', () => {
  const l = named(buildListeners(full), LISTENER.portless);
  const chains = arr(l['filter_chains']);

  it('is one listener on 127.0.0.1:portlessEgressPort (where REDIRECT lands) with original_dst', () => {
    expect(l['address']).toEqual({ socket_address: { address: '127.0.0.1', port_value: 15002 } });
    expect(arr(l['listener_filters']).map((f) => f['name'])).toEqual(['envoy.filters.listener.original_dst']);
    expect(l['default_filter_chain']).toBeUndefined();
    expect(chains.map((c) => [c['name'], obj(c['filter_chain_match'])])).toEqual([
      ['meshlet-route-db', { prefix_ranges: [{ address_prefix: '127.137.0.2', prefix_len: 32 }] }],
      ['meshlet-route-ip', { prefix_ranges: [{ address_prefix: '127.137.0.3', prefix_len: 32 }] }],
      ['meshlet-route-fixed', { prefix_ranges: [{ address_prefix: '127.137.0.4', prefix_len: 32 }] }],
    ]);
  });

  it('keeps the dialled port: filter state host + %DOWNSTREAM_LOCAL_PORT%, DNS wait, then the DFP cluster', () => {
    const db = named(chains, 'meshlet-route-db');
    expect(arr(db['filters']).map((f) => f['name'])).toEqual([
      'envoy.filters.network.set_filter_state',
      'envoy.filters.network.sni_dynamic_forward_proxy',
      'envoy.filters.network.tcp_proxy',
    ]);
    const state = arr(obj(arr(db['filters'])[0]?.['typed_config'])['on_new_connection']);
    expect(state.map((s) => [s['object_key'], obj(obj(s['format_string'])['text_format_source'])['inline_string']])).toEqual([
      ['envoy.upstream.dynamic_host', 'db-svc'],
      ['envoy.upstream.dynamic_port', '%DOWNSTREAM_LOCAL_PORT%'],
    ]);
    const cache = obj(arr(db['filters'])[1]?.['typed_config'])['dns_cache_config'];
    const cluster = named(buildClusters(full), 'meshlet-route-db');
    expect(cluster['lb_policy']).toBe('CLUSTER_PROVIDED');
    expect(obj(cluster['cluster_type'])['name']).toBe('envoy.clusters.dynamic_forward_proxy');
    expect(obj(obj(cluster['cluster_type'])['typed_config'])['dns_cache_config']).toEqual(cache);
    expect(named(buildClusters(full), 'meshlet-route-ip')['cluster_type']).toEqual(cluster['cluster_type']);
  });

  it('brackets an IPv6 literal host, since the DNS cache keys hosts as host:port', () => {
    const v6 = buildListeners(
      meshConfig({ ingress: { mode: 'disabled' }, egress: { routes: [{ name: 'v6', listen: '127.137.0.9', remote: '[2001:db8::10]' }] } }),
    );
    expect(JSON.stringify(v6)).toContain(
      '"object_key":"envoy.upstream.dynamic_host","format_string":{"text_format_source":{"inline_string":"[2001:db8::10]"}}',
    );
  });

  it('a portless route with a remote port needs no filter state', () => {
    expect(arr(named(chains, 'meshlet-route-fixed')['filters']).map((f) => f['name'])).toEqual(['envoy.filters.network.tcp_proxy']);
  });

  it('has no portless listener when every route has a port', () => {
    expect(buildListeners(meshConfig(DISABLED)).map((x) => x['name'])).not.toContain(LISTENER.portless);
  });
});

describe('egress capture', () => {
  const l = named(buildListeners(full), LISTENER.outbound);
  const chains = arr(l['filter_chains']);

  it('listens where REDIRECT lands (127.0.0.1 and ::1) with original_dst, mTLS by default', () => {
    expect(l['address']).toEqual({ socket_address: { address: '127.0.0.1', port_value: 15001 } });
    expect(l['additional_addresses']).toEqual([{ address: { socket_address: { address: '::1', port_value: 15001 } } }]);
    expect(proxiedTo(obj(l['default_filter_chain']))).toBe(CLUSTER.outboundMtls);
    const mtls = named(buildClusters(full), CLUSTER.outboundMtls);
    expect(mtls['type']).toBe('ORIGINAL_DST');
    expect(obj(obj(mtls['transport_socket'])['typed_config'])['@type']).toBe(
      'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    );
  });

  it('passes excluded ports and CIDRs through in plaintext', () => {
    const pass = chains.filter((c) => proxiedTo(c) === CLUSTER.passthrough).map((c) => c['filter_chain_match']);
    expect(pass).toEqual([
      { destination_port: 22 },
      { destination_port: 3306 },
      {
        prefix_ranges: [
          { address_prefix: '198.19.0.0', prefix_len: 16 },
          { address_prefix: '2001:db8:1::', prefix_len: 48 },
        ],
      },
    ]);
    const passthrough = named(buildClusters(full), CLUSTER.passthrough);
    expect(passthrough['type']).toBe('ORIGINAL_DST');
    expect(passthrough['transport_socket']).toBeUndefined();
  });

  it('blackholes loopback connections to the proxy ports instead of looping', () => {
    const holes = chains.filter((c) => proxiedTo(c) === CLUSTER.blackhole);
    expect(holes.map((c) => obj(c['filter_chain_match'])['destination_port'])).toEqual([15001, 15002, 15006, 15020]);
    expect(obj(holes[0]?.['filter_chain_match'])['prefix_ranges']).toEqual([
      { address_prefix: '127.0.0.0', prefix_len: 8 },
      { address_prefix: '::1', prefix_len: 128 },
    ]);
  });

  it('has no passthrough cluster without exclusions, and nothing at all without capture', () => {
    expect(buildClusters(meshConfig({ egress: { capture: true } })).map((c) => c['name'])).toEqual([
      CLUSTER.blackhole,
      CLUSTER.inboundApp,
      CLUSTER.outboundMtls,
    ]);
    expect(buildListeners(meshConfig({})).map((x) => x['name'])).toEqual([LISTENER.inbound]);
  });
});

describe('secrets', () => {
  it('carries the workload chain and key, and the mesh CA, under stable names', () => {
    expect(buildSecrets({ caPem: 'CA', chainPem: 'CHAIN', keyPem: 'KEY' })).toEqual([
      {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
        name: 'meshlet-workload',
        tls_certificate: { certificate_chain: { inline_string: 'CHAIN' }, private_key: { inline_string: 'KEY' } },
      },
      {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
        name: 'meshlet-mesh-ca',
        validation_context: { trusted_ca: { inline_string: 'CA' } },
      },
    ]);
  });

  it('static mode references secrets by name only', () => {
    const r = buildResources(full, FAKE_CERTS, { secrets: 'static' });
    expect(JSON.stringify(r)).not.toContain('sds_config');
    expect(JSON.stringify(buildResources(full, FAKE_CERTS))).toContain('"sds_config":{"ads":{},"resource_api_version":"V3"}');
  });
});

describe('SAN matchers', () => {
  it.each([
    ['spiffe://mesh.test/ns/a/sa/b', 'URI'],
    ['urn:example:x', 'URI'],
    ['db.mesh.test', 'DNS'],
    ['*.mesh.test', 'DNS'],
    ['198.18.0.7', 'IP_ADDRESS'],
    ['2001:db8::7', 'IP_ADDRESS'],
    ['ops@mesh.test', 'EMAIL'],
  ])('%s is a %s SAN', (san, type) => {
    expect(sanMatcher(san)).toEqual({ san_type: type, matcher: { exact: san } });
  });
});

describe('inbound chain generations: a port that moves to a stricter policy drains the chain it left', () => {
  type Port = { name: string; port: number; policy?: 'mtls' | 'tls' | 'plaintext'; allowedSans?: readonly string[]; allowTls12?: boolean };
  const cfg = (ports: readonly Port[], def: 'mtls' | 'tls' = 'mtls'): ReturnType<typeof meshConfig> =>
    meshConfig({
      ingress: {
        mode: 'tproxy',
        default: def,
        ports: ports.map(({ allowedSans, ...p }) => ({ ...p, ...(allowedSans ? { allowedSans: [...allowedSans] } : {}) })),
      },
    });
  const gens = (before: ReturnType<typeof cfg>, after: ReturnType<typeof cfg>, start = new Map<string, number>()): Record<string, number> =>
    Object.fromEntries(nextChainGenerations(before, after, start));
  const a = { name: 'a', port: 8001, policy: 'tls' as const };
  const b = { name: 'b', port: 8002, policy: 'tls' as const };

  it.each([
    ['tls → mtls, the tls chain still used by another port', [a, b], [{ ...a, policy: 'mtls' as const }, b], { 'meshlet-inbound-tls': 1 }],
    [
      'mtls → tls (looser): nothing drains',
      [
        { ...a, policy: 'mtls' as const },
        { ...b, policy: 'mtls' as const },
      ],
      [a, { ...b, policy: 'mtls' as const }],
      {},
    ],
    ['tls → mtls, and no port is left on tls: the chain is gone, Envoy drains it by itself', [a], [{ ...a, policy: 'mtls' as const }], {}],
    ['a listed tls port removed (unlisted ports are mtls): its tls chain drains', [a, b], [b], { 'meshlet-inbound-tls': 1 }],
    [
      'mtls SANs narrowed while another port keeps the old list',
      [
        { ...a, policy: 'mtls' as const, allowedSans: ['x', 'y'] },
        { ...b, policy: 'mtls' as const, allowedSans: ['y', 'x'] },
      ],
      [
        { ...a, policy: 'mtls' as const, allowedSans: ['x'] },
        { ...b, policy: 'mtls' as const, allowedSans: ['y', 'x'] },
      ],
      { 'meshlet-inbound-mtls-sans-': 1 },
    ],
    [
      'mtls SANs widened: nothing drains',
      [
        { ...a, policy: 'mtls' as const, allowedSans: ['x'] },
        { ...b, policy: 'mtls' as const, allowedSans: ['x'] },
      ],
      [
        { ...a, policy: 'mtls' as const, allowedSans: ['x', 'y'] },
        { ...b, policy: 'mtls' as const, allowedSans: ['x'] },
      ],
      {},
    ],
    [
      'tls with TLS 1.2 → tls 1.3 only, another port keeps 1.2',
      [
        { ...a, allowTls12: true },
        { ...b, allowTls12: true },
      ],
      [a, { ...b, allowTls12: true }],
      { 'meshlet-inbound-tls-tls12': 1 },
    ],
  ] as const)('%s', (_label, before, after, expected) => {
    const got = gens(cfg([...before]), cfg([...after]));
    if ('meshlet-inbound-mtls-sans-' in expected) {
      // The narrowed port left the shared [x, y] chain, which moves to generation 1.
      expect(Object.keys(got)).toHaveLength(1);
      expect(Object.keys(got)[0]).toMatch(/^meshlet-inbound-mtls-sans-[0-9a-f]{12}$/);
      expect(Object.values(got)).toEqual([1]);
    } else expect(got).toEqual(expected);
  });

  it('a port leaving the default chain for a stricter policy drains the default chain; for a looser one it does not', () => {
    expect(gens(cfg([], 'tls'), cfg([{ ...a, policy: 'mtls' }], 'tls'))).toEqual({ 'meshlet-inbound-default': 1 });
    expect(gens(cfg([], 'mtls'), cfg([a], 'mtls'))).toEqual({});
    expect(gens(cfg([], 'mtls'), cfg([{ ...a, policy: 'mtls' }], 'mtls'))).toEqual({});
  });

  it('generations add up across edits, stay through unrelated edits, and end with their chain', () => {
    const tls2 = cfg([a, b]);
    const first = nextChainGenerations(tls2, cfg([{ ...a, policy: 'mtls' }, b]), new Map());
    const second = nextChainGenerations(cfg([{ ...a, policy: 'mtls' }, b]), cfg([a, b]), first);
    expect(Object.fromEntries(second)).toEqual({ 'meshlet-inbound-tls': 1 });
    const third = nextChainGenerations(cfg([a, b]), cfg([{ ...a, policy: 'mtls' }, b]), second);
    expect(Object.fromEntries(third)).toEqual({ 'meshlet-inbound-tls': 2 });
    expect(Object.fromEntries(nextChainGenerations(cfg([{ ...a, policy: 'mtls' }, b]), cfg([{ ...a, policy: 'mtls' }]), third))).toEqual({});
  });

  it('a reload carries the generations: tightening one of two tls ports renames the tls chain in the served snapshot, a certificate reload keeps it', () => {
    const raw = (first: 'tls' | 'mtls'): RawConfigInput => ({ ingress: { mode: 'tproxy', default: 'mtls', ports: [{ ...a, policy: first }, b] } });
    const config = meshConfig(raw('tls'));
    const start = { config, certs: FAKE_CERTS, snapshot: snapshotFor(config, FAKE_CERTS) };
    const tightened = reloadConfig(stringify(raw('mtls')), 'config.yaml', start);
    if (!tightened.ok) throw new Error(tightened.error);
    const inbound = (d: typeof start): string => JSON.stringify(typeOf(d.snapshot, TYPE_URL.listener).resources.get(LISTENER.inbound)?.json);
    expect(Object.fromEntries(tightened.desired.generations ?? [])).toEqual({ 'meshlet-inbound-tls': 1 });
    expect(inbound(tightened.desired)).toContain('"meshlet-inbound-tls-g1"');
    expect(inbound(tightened.desired)).not.toContain('"meshlet-inbound-tls"');
    // Loosening it again drains nothing more; the generation stays, so the chain's name does not change back.
    const loosened = reloadConfig(stringify(raw('tls')), 'config.yaml', tightened.desired);
    if (!loosened.ok) throw new Error(loosened.error);
    expect(inbound(loosened.desired)).toContain('"meshlet-inbound-tls-g1"');
  });

  it('the listener names a chain by its generation, in the chain list, the matcher and the default chain', () => {
    const l = named(
      buildListeners(
        cfg([a, b]),
        'ads',
        new Map([
          ['meshlet-inbound-tls', 2],
          ['meshlet-inbound-default', 1],
        ]),
      ),
      LISTENER.inbound,
    );
    expect(arr(l['filter_chains']).map((c) => c['name'])).toEqual(['meshlet-inbound-blackhole', 'meshlet-inbound-tls-g2']);
    const map = obj(obj(obj(obj(l['filter_chain_matcher'])['matcher_tree'])['exact_match_map'])['map']);
    expect(obj(obj(map['8001'])['action'])['name']).toBe('meshlet-inbound-tls-g2');
    expect(obj(l['default_filter_chain'])['name']).toBe('meshlet-inbound-default-g1');
    // The tcp_proxy stats follow the chain's name.
    expect(JSON.stringify(arr(l['filter_chains'])[1])).toContain('"stat_prefix":"meshlet-inbound-tls-g2"');
  });
});
