// Every TLS context meshlet builds names its key exchange groups, so the
// post-quantum group never depends on Envoy's defaults. The walk covers the
// whole output (listeners, clusters, the static bootstrap), so a TLS context
// added later without groups fails here.
import { describe, expect, it } from 'vitest';
import { describeConfig } from '../../src/config/describe.js';
import { validateConfig } from '../../src/config/validate.js';
import type { RawConfigInput } from '../../src/config/schema.js';
import { buildStaticBootstrap } from '../../src/envoy/static-bootstrap.js';
import { buildResources } from '../../src/xds/builders/index.js';
import { TYPE, typeUrl, type Json, type JsonObject } from '../../src/xds/protos.js';
import { DISABLED, FAKE_CERTS, FULL, MAPPED, meshConfig } from '../envoy/configs.js';

const PREFERRED = ['X25519MLKEM768', 'X25519', 'P-256'];
const REQUIRED = ['X25519MLKEM768'];

interface Ctx {
  /** Where in the output: resource name > chain name. */
  at: string;
  kind: 'downstream' | 'upstream';
  curves: unknown;
  minVersion: unknown;
}

/** Every object that is a TLS context, anywhere in `root`, and every transport socket that is not TLS. */
function walk(root: Json, at: string, out: { contexts: Ctx[]; otherSockets: string[] }): void {
  if (Array.isArray(root)) {
    for (const v of root) walk(v, at, out);
    return;
  }
  if (root === null || typeof root !== 'object') return;
  const o = root;
  // Resources and chains name the path; a transport socket's own name would not tell them apart.
  const name = typeof o['name'] === 'string' ? o['name'] : undefined;
  const here = name !== undefined && !name.startsWith('envoy.transport_sockets.') ? `${at} > ${name}` : at;
  const socket = o['transport_socket'] as JsonObject | undefined;
  if (socket && socket['name'] !== 'envoy.transport_sockets.tls') out.otherSockets.push(`${here}: ${JSON.stringify(socket['name'])}`);
  if ('common_tls_context' in o) {
    const type = o['@type'];
    const kind = type === typeUrl(TYPE.downstreamTls) ? 'downstream' : type === typeUrl(TYPE.upstreamTls) ? 'upstream' : undefined;
    if (kind === undefined) throw new Error(`${here}: a TLS context of unexpected type ${JSON.stringify(type)}`);
    const params = (o['common_tls_context'] as JsonObject)['tls_params'] as JsonObject | undefined;
    out.contexts.push({ at: here, kind, curves: params?.['ecdh_curves'], minVersion: params?.['tls_minimum_protocol_version'] });
  }
  for (const v of Object.values(o)) walk(v, here, out);
}

function contexts(raw: RawConfigInput): Ctx[] {
  const c = meshConfig(raw);
  const r = buildResources(c, FAKE_CERTS);
  const out = { contexts: [] as Ctx[], otherSockets: [] as string[] };
  walk([...r.listeners, ...r.clusters] as Json, 'xds', out);
  const fromStatic = { contexts: [] as Ctx[], otherSockets: [] as string[] };
  walk(buildStaticBootstrap(c, FAKE_CERTS), 'static', fromStatic);
  // The static bootstrap carries the same contexts (plus none of its own).
  expect(fromStatic.contexts.map((x) => x.curves)).toEqual(out.contexts.map((x) => x.curves));
  expect([...out.otherSockets, ...fromStatic.otherSockets]).toEqual([]);
  return out.contexts;
}

const STRICT: RawConfigInput = {
  ...FULL,
  tls: { keyExchange: 'pq-required' },
  ingress: {
    ...FULL.ingress,
    // allowTls12 cannot be strict (TLS 1.2 has no post-quantum group), so that port keeps the fallback.
    ports: (FULL.ingress?.ports ?? []).map((p) => (p.allowTls12 ? { ...p, keyExchange: 'pq-preferred' as const } : p)),
  },
};

describe('key exchange groups on every TLS context', () => {
  it.each([
    // downstream: web, db, grpc, legacy, the default chain; upstream: 6 routes and capture.
    ['every feature (tproxy, routes with and without ports, capture)', FULL, 5, 7],
    ['mapped ingress', MAPPED, 2, 0],
    ['disabled ingress with a route', DISABLED, 0, 1],
    ['the defaults (unlisted ports are mtls)', {}, 1, 0],
    ['ingress.default tls, capture on', { ingress: { default: 'tls' }, egress: { capture: true } }, 1, 1],
  ] as const)('%s: X25519MLKEM768 first, then X25519 and P-256', (_label, raw, down, up) => {
    const all = contexts(raw);
    expect(all.filter((x) => x.kind === 'downstream')).toHaveLength(down);
    expect(all.filter((x) => x.kind === 'upstream')).toHaveLength(up);
    for (const x of all) expect(x.curves, x.at).toEqual(PREFERRED);
  });

  it('tls.keyExchange pq-required: the hybrid group only on every context, except where a port or route keeps the fallback', () => {
    const raw: RawConfigInput = {
      ...STRICT,
      egress: {
        ...STRICT.egress,
        routes: (STRICT.egress?.routes ?? []).map((r) => (r.name === 'voting' ? { ...r, keyExchange: 'pq-preferred' as const } : r)),
      },
    };
    const all = contexts(raw);
    expect(all).toHaveLength(12);
    const relaxed = all.filter((x) => JSON.stringify(x.curves) !== JSON.stringify(REQUIRED));
    expect(relaxed.map((x) => [x.at.replace(/^.* > /, ''), x.curves])).toEqual([
      ['meshlet-inbound-tls-tls12', PREFERRED],
      ['meshlet-route-voting', PREFERRED],
    ]);
    // The capture cluster and the default chain follow the pod-wide setting.
    expect(all.find((x) => x.at.endsWith('meshlet-inbound-default'))?.curves).toEqual(REQUIRED);
    expect(all.find((x) => x.at.includes('outbound'))?.curves).toEqual(REQUIRED);
  });

  it('a port or a route can be strict while the pod keeps the fallback', () => {
    const all = contexts({
      ingress: {
        mode: 'mapped',
        ports: [
          { name: 'api', port: 8080, mappedPort: 18080, policy: 'tls', keyExchange: 'pq-required' },
          { name: 'db', port: 5432, mappedPort: 15432 },
        ],
      },
      egress: {
        routes: [
          { name: 'a', listen: '127.137.0.1:80', remote: 'a-svc:80', keyExchange: 'pq-required' },
          { name: 'b', listen: '127.137.0.2:80', remote: 'b-svc:80' },
        ],
      },
    });
    expect(all.map((x) => [x.at.replace(/^.* > /, ''), x.curves])).toEqual([
      ['meshlet-mapped-api', REQUIRED],
      ['meshlet-mapped-db', PREFERRED],
      ['meshlet-route-a', REQUIRED],
      ['meshlet-route-b', PREFERRED],
    ]);
  });
});

describe('key exchange config rules', () => {
  it('pq-required with allowTls12 is refused, naming where pq-required came from', () => {
    const fromPod = validateConfig({ tls: { keyExchange: 'pq-required' }, ingress: { ports: [{ name: 'old', port: 8443, policy: 'tls', allowTls12: true }] } });
    expect(fromPod.ok).toBe(false);
    if (!fromPod.ok)
      expect(fromPod.errors).toEqual([
        {
          path: 'ingress.ports[0].allowTls12',
          value: true,
          rule: expect.stringMatching(/^cannot be combined with keyExchange pq-required \(from tls\.keyExchange\): TLS 1\.2 has no post-quantum/) as string,
        },
      ]);
    const onPort = validateConfig({ ingress: { ports: [{ name: 'old', port: 8443, policy: 'tls', allowTls12: true, keyExchange: 'pq-required' }] } });
    expect(onPort.ok).toBe(false);
    if (!onPort.ok) expect(onPort.errors.map((e) => e.path)).toEqual(['ingress.ports[0].allowTls12']);
    // The control: the same port with the fallback is accepted under a strict pod.
    expect(
      validateConfig({
        tls: { keyExchange: 'pq-required' },
        ingress: { ports: [{ name: 'old', port: 8443, policy: 'tls', allowTls12: true, keyExchange: 'pq-preferred' }] },
      }).ok,
    ).toBe(true);
  });

  it('keyExchange on a plaintext port is refused; an unknown value names the choices', () => {
    const r = validateConfig({ ingress: { ports: [{ name: 'm', port: 9102, policy: 'plaintext', keyExchange: 'pq-required' }] } });
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.errors).toEqual([
        { path: 'ingress.ports[0].keyExchange', value: 'pq-required', rule: expect.stringContaining('a plaintext port has no key exchange') as string },
      ]);
    const bad = validateConfig({ tls: { keyExchange: 'classic' } });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors).toEqual([{ path: 'tls.keyExchange', value: 'classic', rule: 'must be one of "pq-preferred", "pq-required"' }]);
  });

  it('meshlet check names the key exchange of every TLS port, every route and capture', () => {
    const text = describeConfig(meshConfig(STRICT));
    const strict = 'key exchange pq-required';
    const fallback = 'key exchange pq-preferred';
    expect(text[0]).toBe(
      'tls: key exchange pq-required = X25519MLKEM768 (hybrid post-quantum) only, classic refused (tls.keyExchange; a port or route may set its own)',
    );
    const line = (start: string): string => text.find((l) => l.trimStart().startsWith(start)) ?? `no line starting with ${start}`;
    for (const p of ['port 8080', 'port 5432', 'port 9090', 'any other port']) expect(line(p)).toContain(strict);
    expect(line('port 8444')).toContain(fallback);
    expect(line('port 7890')).not.toContain('key exchange');
    for (const r of ['emoji:', 'voting:', 'db:', 'ip:', 'fixed:', 'v4ip:']) expect(line(r)).toContain(strict);
    expect(line('egress capture: on')).toContain(strict);
  });
});
