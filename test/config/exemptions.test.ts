// One list of every plaintext path, computed from the config: what `meshlet
// check` prints, what /xds serves and what the README's security section
// names all come from exemptions().
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeConfig } from '../../src/config/describe.js';
import { exemptions } from '../../src/config/exemptions.js';
import { validConfigWithResolvers } from '../helpers/config.js';
import { validateConfig } from '../../src/config/validate.js';
import type { MeshConfig } from '../../src/config/model.js';

const config = (raw: unknown): MeshConfig => validConfigWithResolvers(raw, 'nameserver 198.18.0.53\nnameserver 2001:db8::53\n');

/** Between them, every kind of exemption. */
const CONFIGS = {
  capture: config({
    ingress: { ports: [{ name: 'metrics', port: 7890, policy: 'plaintext' }] },
    egress: { capture: true, exclude: { ports: [443], cidrs: ['198.19.0.0/16'] } },
  }),
  plain: config({
    ingress: { mode: 'tproxy', default: 'plaintext', ports: [{ name: 'api', port: 8443, policy: 'mtls' }] },
    egress: { routes: [{ name: 'db', listen: '127.137.0.2', remote: 'db-svc' }] },
  }),
  dns: config({ ingress: { mode: 'disabled' }, egress: { capture: true, nonTcp: 'allow' }, dns: { enabled: true } }),
};

describe('exemptions', () => {
  it('names the proxy uid as a trust boundary, the resolvers and the non-TCP policy in every config', () => {
    for (const c of Object.values(CONFIGS)) {
      const list = exemptions(c);
      expect(list[0]).toMatchObject({ direction: 'outbound', field: 'proxy.uid', traffic: 'uid 1337, every protocol and destination' });
      expect(list.some((e) => e.field.startsWith('egress.nonTcp'))).toBe(true);
      expect(list.some((e) => e.traffic.includes('198.18.0.53:53') && e.traffic.includes('[2001:db8::53]:53'))).toBe(true);
    }
  });

  it('lists plaintext ports, unlisted ports under default plaintext, exclusions and capture off', () => {
    const traffic = (c: MeshConfig): string[] => exemptions(c).map((e) => e.traffic);
    expect(traffic(CONFIGS.capture)).toEqual(expect.arrayContaining(['TCP port 7890 (metrics)', 'TCP to port 443, any host', 'TCP to 198.19.0.0/16']));
    expect(traffic(CONFIGS.plain)).toEqual(
      expect.arrayContaining([
        'every TCP port not listed (all but 8443)',
        'every TCP connection except to the egress routes (127.137.0.2)',
        'UDP, ICMP and every other non-TCP protocol, any host',
      ]),
    );
    expect(traffic(CONFIGS.dns)).toEqual(expect.arrayContaining(['every TCP port']));
    expect(traffic(CONFIGS.dns).find((t) => t.startsWith('DNS'))).toMatch(/redirected to meshlet's DNS server 127\.0\.0\.1:15053/);
  });

  it('meshlet check prints every one of them', () => {
    for (const c of Object.values(CONFIGS)) {
      const text = describeConfig(c).join('\n');
      for (const e of exemptions(c)) expect(text).toContain(`${e.traffic} [${e.field}]`);
    }
  });

  it("the README's security section names the field of every kind", () => {
    const readme = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
    const security = readme.slice(readme.indexOf('## Security'), readme.indexOf('## Benchmarks'));
    const fields = new Set(Object.values(CONFIGS).flatMap((c) => exemptions(c).map((e) => e.field.split(/[ :(]/)[0] ?? '')));
    fields.delete('built');
    for (const f of fields) expect(security, f).toContain(`\`${f.replace(/\[\d+\]/, '')}`);
  });

  it('mapped mode says what happens to an unlisted port', () => {
    const closed = config({ ingress: { mode: 'mapped', ports: [{ name: 'web', port: 8080, mappedPort: 18080 }] } });
    expect(describeConfig(closed).join('\n')).toContain('any other port: dropped (ingress.default mtls: mapped mode has no Envoy listener for it');
    const open = config({ ingress: { mode: 'mapped', default: 'plaintext', ports: [{ name: 'web', port: 8080, mappedPort: 18080, policy: 'tls' }] } });
    expect(exemptions(open).map((e) => e.traffic)).toContain('every TCP port not listed (all but 8080)');
  });

  it('allowTls12 is refused on mtls ports, with the reason', () => {
    const r = validateConfig({ ingress: { ports: [{ name: 'api', port: 8443, policy: 'mtls', allowTls12: true }] } });
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.errors).toEqual([
        { path: 'ingress.ports[0].allowTls12', value: true, rule: expect.stringContaining('only valid with policy "tls" (this port is mtls)') as string },
      ]);
  });
});
