// The iptables rules and Envoy's config must agree on a handful of facts:
// where TPROXY and REDIRECT send traffic, which source address Envoy's hop to
// the app uses, where the app's IPv6 DNS goes, where Envoy's admin socket is.
// Each is read here from what each side actually emits (the rule text, the
// listener and cluster JSON, the bootstrap), so a change to one side that the
// other does not follow fails this file.
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { generateRules } from '../../src/iptables/generate.js';
import type { FamilyRules } from '../../src/iptables/types.js';
import { buildResources } from '../../src/xds/builders/index.js';
import { LISTENER } from '../../src/xds/builders/names.js';
import { buildBootstrap } from '../../src/envoy/bootstrap.js';
import { adminSocketPath, DEFAULTS, DNS_V6_ADDRESS, UPSTREAM_SOURCE_V4, UPSTREAM_SOURCE_V6 } from '../../src/config/constants.js';
import { schemas } from '../../src/config/schema.js';
import type { JsonObject } from '../../src/xds/protos.js';
import { config } from '../iptables/fixtures.js';
import { FAKE_CERTS } from '../envoy/configs.js';

const RAW = {
  ingress: { mode: 'tproxy', ports: [{ name: 'web', port: 8080, policy: 'mtls' }] },
  egress: { capture: true, routes: [{ name: 'db', listen: '127.10.0.1', remote: 'db.example:5432' }] },
  dns: { enabled: true },
};
// Non-default ports too: each side must take them from the config, not from a literal of its own.
const MOVED = {
  ...RAW,
  proxy: { inboundPort: 25006, outboundPort: 25001, portlessEgressPort: 25002, xdsSocket: '/run/m/x.sock' },
  dns: { enabled: true, address: '127.0.0.1:25053' },
};

const rulesText = (f: FamilyRules): string => f.tables.flatMap((t) => [...t.chains.flatMap((c) => c.rules), ...t.jumps]).join('\n');
const all = (re: RegExp, text: string): string[] => [...text.matchAll(re)].map((m) => m[1] ?? '');
const port = (l: JsonObject): number => ((l['address'] as JsonObject)['socket_address'] as JsonObject)['port_value'] as number;

describe.each([
  ['defaults', RAW],
  ['moved ports', MOVED],
])('iptables and Envoy agree (%s)', (_name, raw) => {
  const c = config(raw);
  const rules = generateRules(c);
  const r = buildResources(c, FAKE_CERTS);
  const listener = (name: string): JsonObject => {
    const l = r.listeners.find((x) => x['name'] === name);
    if (!l) throw new Error(`no listener ${name}`);
    return l;
  };

  it('TPROXY sends inbound TCP to the transparent inbound listener', () => {
    for (const f of [rules.v4, rules.v6]) expect(new Set(all(/--on-port (\d+)/g, rulesText(f)))).toEqual(new Set([String(port(listener(LISTENER.inbound)))]));
    expect(listener(LISTENER.inbound)['transparent']).toBe(true);
  });

  it('REDIRECT sends captured and portless egress to the outbound and portless listeners', () => {
    const to = new Set(all(/REDIRECT --to-ports (\d+)/g, rulesText(rules.v4)).map(Number));
    expect(to).toEqual(new Set([port(listener(LISTENER.outbound)), port(listener(LISTENER.portless))]));
  });

  it("Envoy's hop to the app leaves from addresses the rules never capture", () => {
    const bind = r.clusters.map((x) => x['upstream_bind_config'] as JsonObject | undefined).filter((b) => b !== undefined);
    expect(bind.length).toBeGreaterThan(0);
    for (const b of bind) {
      const v4 = (b['source_address'] as JsonObject)['address'] as string;
      const v6 = ((b['extra_source_addresses'] as JsonObject[])[0]!['address'] as JsonObject)['address'] as string;
      expect([v4, v6]).toEqual([UPSTREAM_SOURCE_V4, UPSTREAM_SOURCE_V6]);
      // IPv4: any 127/8 source is on lo, which the inbound chain returns on. IPv6: the rules put exactly this address on lo.
      expect(v4.startsWith('127.') && isIP(v4) === 4).toBe(true);
      expect(rules.v6.routing?.loopbackAddress).toBe(`${v6}/128`);
    }
    expect(rulesText(rules.v4)).toContain('-i lo -j RETURN');
    expect(rulesText(rules.v6)).toContain('-i lo -j RETURN');
  });

  it("the app's DNS goes where the DNS server listens", () => {
    expect(all(/--to-destination (\S+)/g, rulesText(rules.v4))).toEqual(expect.arrayContaining([`${c.dns!.address.ip}:${c.dns!.address.port}`]));
    expect(new Set(all(/--to-destination (\S+)/g, rulesText(rules.v6)))).toEqual(new Set([`[${DNS_V6_ADDRESS}]:${c.dns!.address.port}`]));
  });

  it("the rules' loop guard covers every listener port of the proxy", () => {
    const guarded = new Set(
      all(/--dports? ([\d,]+) -j REJECT/g, rulesText(rules.v4))
        .flatMap((p) => p.split(','))
        .map(Number),
    );
    for (const name of [LISTENER.inbound, LISTENER.outbound, LISTENER.portless]) expect(guarded).toContain(port(listener(name)));
  });

  it('the bootstrap puts admin on the socket the rest of meshlet connects to', () => {
    const b = buildBootstrap(c, { nodeId: 'n', cluster: 'c', delta: true });
    expect(JSON.stringify(b['admin'])).toContain(JSON.stringify(adminSocketPath(c.proxy.xdsSocket)));
  });
});

describe('config defaults', () => {
  it('the schema fills in the shared defaults', () => {
    const out = schemas().configSchema.parse({ dns: { enabled: true }, probes: {} });
    expect(out.proxy).toMatchObject({ ...DEFAULTS.proxy });
    expect(out.debug.address).toBe(DEFAULTS.debugAddress);
    expect(out.dns.address).toBe(DEFAULTS.dnsAddress);
    expect(out.probes?.port).toBe(DEFAULTS.probesPort);
  });
});
