import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { validateConfig } from '../../src/config/validate.js';
import { loadConfig, loadConfigText } from '../../src/config/load.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigInvalidError, formatError, type ConfigError } from '../../src/config/errors.js';
import { renderJsonSchema } from '../../src/config/write-json-schema.js';

function errorsOf(input: unknown): ConfigError[] {
  const r = validateConfig(input);
  if (r.ok) throw new Error('expected the config to be invalid');
  return r.errors;
}

function paths(input: unknown): string[] {
  return errorsOf(input).map((e) => e.path);
}

describe('config validation', () => {
  it('accepts an empty file and fills Contrast-compatible defaults', () => {
    const r = validateConfig({});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.certs).toEqual({
      ca: '/contrast/tls-config/mesh-ca.pem',
      certChain: '/contrast/tls-config/certChain.pem',
      key: '/contrast/tls-config/key.pem',
      expectedSans: [],
    });
    expect(r.config.ingress).toEqual({ mode: 'tproxy', default: 'mtls', ports: [] });
    expect(r.config.proxy.xdsSocket).toBe('/var/run/meshlet/xds.sock');
    expect(r.config.proxy.uid).toBe(1337);
  });

  it('accepts the deprecated proxy.adminAddress with a warning, opens no TCP admin, and frees its port', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'meshlet-cfg-'));
    try {
      const file = path.join(dir, 'config.yaml');
      writeFileSync(file, 'proxy:\n  adminAddress: 127.0.0.1:15000\ningress:\n  ports: [{ name: a, port: 15000 }]\n');
      const { config, warnings } = loadConfig(file, {});
      expect(warnings.join()).toMatch(/proxy\.adminAddress is ignored.*envoy\/admin\.sock/);
      expect(config.ingress.ports[0]?.port).toBe(15000);
      expect(JSON.stringify(config.proxy)).not.toContain('15000');
      // Without the field, no deprecation (a temp dir on its own mount also warns that the file is on a volume).
      writeFileSync(file, 'ingress:\n  mode: tproxy\n');
      expect(loadConfig(file, {}).warnings.filter((w) => w.includes('adminAddress'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts the shipped examples and normalizes addresses', () => {
    const c = loadConfigText(readFileSync('config/example.yaml', 'utf8'), 'example.yaml');
    expect(c.egress.routes).toContainEqual({ name: 'db', listenIp: '127.137.0.3', remoteHost: 'db-svc', expectedSans: [] });
    expect(c.egress.routes).toContainEqual({
      name: 'emoji',
      listenIp: '127.137.0.1',
      listenPort: 8081,
      remoteHost: 'emoji-svc',
      remotePort: 8080,
      expectedSans: [],
    });
    expect(c.egress.exclude.cidrs.map((x) => x.text)).toEqual(['198.19.0.0/16', '2001:db8:ff::/48']);
    expect(c.ingress.ports.find((p) => p.port === 8443)?.allowedSans).toEqual(['ops-console']);
    expect(c.egress.routes.find((r) => r.name === 'api')?.names).toEqual(['api.example.test', 'api-svc']);
    expect(c.dns).toEqual({ address: { ip: '127.0.0.1', port: 15053 }, ttl: 5, upstreams: [], resolvConf: '/etc/resolv.conf', meshletUid: 1337 });
    const m = loadConfigText(readFileSync('config/example-mapped.yaml', 'utf8'), 'example-mapped.yaml');
    expect(m.ingress.ports.map((p) => [p.port, p.mappedPort ?? null, p.policy])).toEqual([
      [8080, 9080, 'tls'],
      [8081, 9081, 'mtls'],
      [7890, null, 'plaintext'],
    ]);
  });

  it.each([
    ['port above 65535', { ingress: { ports: [{ name: 'a', port: 70000 }] } }, 'ingress.ports[0].port', /1-65535/],
    ['port 0', { ingress: { ports: [{ name: 'a', port: 0 }] } }, 'ingress.ports[0].port', /1-65535/],
    ['non-integer port', { ingress: { ports: [{ name: 'a', port: 80.5 }] } }, 'ingress.ports[0].port', /integer/],
    ['listen outside 127/8', { egress: { routes: [{ name: 'a', listen: '198.18.0.1:80', remote: 'x:1' }] } }, 'egress.routes[0].listen', /127\.0\.0\.0\/8/],
    ['IPv6 listen', { egress: { routes: [{ name: 'a', listen: '[::1]:80', remote: 'x:1' }] } }, 'egress.routes[0].listen', /127\.0\.0\.0\/8/],
    ['listen port 99999', { egress: { routes: [{ name: 'a', listen: '127.0.0.9:99999', remote: 'x:1' }] } }, 'egress.routes[0].listen', /1-65535/],
    ['bad remote host', { egress: { routes: [{ name: 'a', listen: '127.0.0.9:80', remote: 'bad_host!:1' }] } }, 'egress.routes[0].remote', /DNS name or an IP/],
    [
      'duplicate ingress name',
      {
        ingress: {
          ports: [
            { name: 'a', port: 1 },
            { name: 'a', port: 2 },
          ],
        },
      },
      'ingress.ports[1].name',
      /duplicate name/,
    ],
    [
      'duplicate egress name',
      {
        egress: {
          routes: [
            { name: 'a', listen: '127.0.0.9:1', remote: 'x:1' },
            { name: 'a', listen: '127.0.0.9:2', remote: 'x:1' },
          ],
        },
      },
      'egress.routes[1].name',
      /duplicate name/,
    ],
    [
      'ingress port twice',
      {
        ingress: {
          ports: [
            { name: 'a', port: 80 },
            { name: 'b', port: 80 },
          ],
        },
      },
      'ingress.ports[1].port',
      /duplicate port/,
    ],
    ['reserved inbound port', { ingress: { ports: [{ name: 'a', port: 15006 }] } }, 'ingress.ports[0].port', /reserved.*inboundPort/],
    [
      'reserved egress listen port',
      { egress: { routes: [{ name: 'a', listen: '127.0.0.9:15001', remote: 'x:1' }] } },
      'egress.routes[0].listen',
      /reserved.*outboundPort/,
    ],
    ['invalid CIDR', { egress: { exclude: { cidrs: ['198.18.0.0/40'] } } }, 'egress.exclude.cidrs[0]', /prefix length/],
    ['CIDR that is no address', { egress: { exclude: { cidrs: ['nope/8'] } } }, 'egress.exclude.cidrs[0]', /not an IPv4 or IPv6/],
    [
      'plaintext port mapped',
      { ingress: { mode: 'mapped', ports: [{ name: 'a', port: 80, mappedPort: 90, policy: 'plaintext' }] } },
      'ingress.ports[0].mappedPort',
      /plaintext port .* cannot be mapped/,
    ],
    [
      'mapped port outside mapped mode',
      { ingress: { ports: [{ name: 'a', port: 80, mappedPort: 90 }] } },
      'ingress.ports[0].mappedPort',
      /only valid with ingress.mode "mapped"/,
    ],
    [
      'mapped mode without mappedPort',
      { ingress: { mode: 'mapped', ports: [{ name: 'a', port: 80 }] } },
      'ingress.ports[0].mappedPort',
      /required in mapped mode/,
    ],
    [
      'mapped port that is an app port',
      {
        ingress: {
          mode: 'mapped',
          ports: [
            { name: 'a', port: 80, mappedPort: 81 },
            { name: 'b', port: 81, mappedPort: 82 },
          ],
        },
      },
      'ingress.ports[0].mappedPort',
      /app port of ingress.ports\[1\]/,
    ],
    [
      'allowedSans on a tls port',
      { ingress: { ports: [{ name: 'a', port: 80, policy: 'tls', allowedSans: ['x'] }] } },
      'ingress.ports[0].allowedSans',
      /needs policy "mtls"/,
    ],
    [
      'overlapping portless route',
      {
        egress: {
          routes: [
            { name: 'a', listen: '127.0.0.9', remote: 'x' },
            { name: 'b', listen: '127.0.0.9:80', remote: 'y:1' },
          ],
        },
      },
      'egress.routes[1].listen',
      /overlaps egress.routes\[0\]/,
    ],
    [
      'unknown top-level key',
      { ingres: {} },
      'ingres',
      /unknown key; remove it or use one of: version, certs, ingress, egress, dns, proxy, metrics, probes, accessLog, debug, tls/,
    ],
    [
      'unknown nested key',
      { ingress: { ports: [{ name: 'a', port: 80, polcy: 'tls' }] } },
      'ingress.ports[0].polcy',
      /use one of: name, port, policy, mappedPort, allowedSans/,
    ],
    ['bad enum', { ingress: { mode: 'transparent' } }, 'ingress.mode', /one of "tproxy", "mapped", "disabled"/],
    ['admin off loopback', { proxy: { adminAddress: '0.0.0.0:15000' } }, 'proxy.adminAddress', /loopback/],
    ['admin socket path too long', { proxy: { xdsSocket: `/${'d'.repeat(100)}/xds.sock` } }, 'proxy.xdsSocket', /admin socket .*over the 107-byte limit/],
    ['debug off loopback', { debug: { address: '198.18.0.1:15020' } }, 'debug.address', /loopback/],
    ['proxy ports equal', { proxy: { inboundPort: 15001 } }, 'proxy.outboundPort', /must differ from proxy.inboundPort/],
    ['missing name', { ingress: { ports: [{ port: 80 }] } }, 'ingress.ports[0].name', /is required/],
  ])('%s', (_label, input, path, rule) => {
    const errors = errorsOf(input);
    const hit = errors.find((e) => e.path === path);
    expect(hit, `errors were: ${errors.map(formatError).join('; ')}`).toBeDefined();
    expect(hit?.rule).toMatch(rule);
  });

  it('reports every mistake, structural and semantic, each with path, value and rule', () => {
    const errors = errorsOf({
      ingress: {
        ports: [
          { name: 'web', port: 70000, policy: 'tls' },
          { name: 'web', port: 15006 },
        ],
      },
      egress: { routes: [{ name: 'emoji', listen: '198.18.0.1:8081', remote: 'emoji-svc:8080' }], captur: true },
    });
    expect(errors.map((e) => e.path).sort()).toEqual([
      'egress.captur',
      'egress.routes[0].listen',
      'ingress.ports[0].port',
      'ingress.ports[1].name',
      'ingress.ports[1].port',
    ]);
    const port = errors.find((e) => e.path === 'ingress.ports[0].port');
    expect(port?.value).toBe(70000);
    expect(formatError(port!)).toBe('ingress.ports[0].port: must be in 1-65535 (got 70000)');
  });

  it('does not report a malformed value twice', () => {
    expect(
      paths({
        ingress: {
          ports: [
            { name: 'a', port: 99999 },
            { name: 'b', port: 99999 },
          ],
        },
      }),
    ).toEqual(['ingress.ports[0].port', 'ingress.ports[1].port']);
  });

  it('turns YAML syntax errors into positioned errors', () => {
    expect(() => loadConfigText('ingress:\n  mode: [tproxy\n', 'bad.yaml')).toThrow(ConfigInvalidError);
    try {
      loadConfigText('a: 1\na: 2\n', 'dup.yaml');
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigInvalidError).errors[0]?.path).toMatch(/^line 2/);
    }
  });

  it('ships a JSON Schema that matches the zod schema', () => {
    expect(readFileSync('config/meshlet.schema.json', 'utf8')).toBe(renderJsonSchema());
    const schema = JSON.parse(renderJsonSchema()) as { properties: Record<string, { additionalProperties?: boolean }>; additionalProperties: boolean };
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toEqual(['version', 'certs', 'ingress', 'egress', 'dns', 'proxy', 'metrics', 'probes', 'accessLog', 'debug', 'tls']);
  });
});
