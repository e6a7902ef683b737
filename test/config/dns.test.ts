// The `dns` section and route `names`: defaults, normalization,
// and every rule, each reported with its path.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/validate.js';
import { formatError, type ConfigError } from '../../src/config/errors.js';
import { reservedPorts } from '../../src/config/model.js';

function errorsOf(input: unknown): ConfigError[] {
  const r = validateConfig(input);
  if (r.ok) throw new Error('expected the config to be invalid');
  return r.errors;
}

const route = (name: string, listen: string, names?: unknown[]): Record<string, unknown> => ({
  name,
  listen,
  remote: `${name}-svc`,
  ...(names ? { names } : {}),
});
const on = { enabled: true };

describe('dns config', () => {
  it('is off by default, and the model has no dns section then', () => {
    const r = validateConfig({});
    expect(r.ok && r.config.dns).toBe(undefined);
  });

  it('fills defaults when enabled and normalizes addresses and names', () => {
    const r = validateConfig({
      dns: { enabled: true, upstreams: ['198.18.0.53', '198.18.0.54:5353', '[2001:db8::53]', '[2001:db8::54]:5353'] },
      egress: { routes: [route('emoji', '127.137.0.1', ['Emoji-Svc', 'emoji-svc.demo.svc.cluster.local.'])] },
    });
    if (!r.ok) throw new Error(r.errors.map(formatError).join('; '));
    expect(r.config.dns).toEqual({
      address: { ip: '127.0.0.1', port: 15053 },
      ttl: 5,
      upstreams: [
        { ip: '198.18.0.53', port: 53 },
        { ip: '198.18.0.54', port: 5353 },
        { ip: '2001:db8::53', port: 53 },
        { ip: '2001:db8::54', port: 5353 },
      ],
      resolvConf: '/etc/resolv.conf',
      meshletUid: 1337,
    });
    expect(r.config.egress.routes[0]?.names).toEqual(['emoji-svc', 'emoji-svc.demo.svc.cluster.local']);
    expect(reservedPorts(r.config).get(15053)).toBe('dns.address');
  });

  it('meshletUid defaults to proxy.uid, which the image runs meshlet as; root must be asked for', () => {
    const uid = (raw: Record<string, unknown>): number | undefined => {
      const r = validateConfig(raw);
      return r.ok ? r.config.dns?.meshletUid : undefined;
    };
    expect(uid({ dns: on })).toBe(1337);
    expect(uid({ dns: on, proxy: { uid: 2000, gid: 2000 } })).toBe(2000);
    expect(uid({ dns: { enabled: true, meshletUid: 0 } })).toBe(0);
  });

  it('a route without names has no names key, so existing configs normalize as before', () => {
    const r = validateConfig({ egress: { routes: [route('a', '127.137.0.1'), route('b', '127.137.0.2', [])] } });
    expect(r.ok && r.config.egress.routes.map((x) => 'names' in x)).toEqual([false, false]);
  });

  it.each([
    ['address off loopback', { dns: { enabled: true, address: '198.18.0.1:15053' } }, 'dns.address', /IPv4 loopback/],
    ['IPv6 address', { dns: { enabled: true, address: '[::1]:15053' } }, 'dns.address', /IPv4 loopback.*\[::1\]/],
    ['address without port', { dns: { enabled: true, address: '127.0.0.1' } }, 'dns.address', /127\.x\.y\.z:port/],
    ['ttl too long', { dns: { enabled: true, ttl: 86400 } }, 'dns.ttl', /0-3600/],
    ['negative ttl', { dns: { enabled: true, ttl: -1 } }, 'dns.ttl', /0-3600/],
    ['upstream that is a name', { dns: { enabled: true, upstreams: ['kube-dns'] } }, 'dns.upstreams[0]', /must be an IP address/],
    ['upstream port 0', { dns: { enabled: true, upstreams: ['198.18.0.53:0'] } }, 'dns.upstreams[0]', /1-65535/],
    ['negative uid', { dns: { enabled: true, meshletUid: -1 } }, 'dns.meshletUid', /0/],
    ['unknown key', { dns: { enabled: true, servers: [] } }, 'dns.servers', /use one of: enabled, address, ttl, upstreams, resolvConf, meshletUid/],
    ['dns port = outbound port', { dns: { enabled: true, address: '127.0.0.1:15001' } }, 'dns.address', /reserved for the proxy \(proxy.outboundPort\)/],
    ['dns port = moved inbound port', { dns: { enabled: true }, proxy: { inboundPort: 15053 } }, 'dns.address', /proxy.inboundPort/],
    ['dns port = debug port', { dns: { enabled: true }, debug: { address: '127.0.0.1:15053' } }, 'dns.address', /already used by debug.address/],
    ['app port on the dns port', { dns: on, ingress: { ports: [{ name: 'a', port: 15053 }] } }, 'ingress.ports[0].port', /reserved.*dns.address/],
    [
      'route listen port on the dns port',
      { dns: on, egress: { routes: [route('a', '127.137.0.1:15053')] } },
      'egress.routes[0].listen',
      /reserved.*dns.address/,
    ],
    ['names without dns', { egress: { routes: [route('a', '127.137.0.1', ['a-svc'])] } }, 'egress.routes[0].names', /needs dns.enabled: true/],
    [
      'names with dns disabled explicitly',
      { dns: { enabled: false }, egress: { routes: [route('a', '127.137.0.1', ['a-svc'])] } },
      'egress.routes[0].names',
      /needs dns.enabled/,
    ],
    ['name that is an IP', { dns: on, egress: { routes: [route('a', '127.137.0.1', ['198.18.0.1'])] } }, 'egress.routes[0].names[0]', /not an IP address/],
    ['name with a wildcard', { dns: on, egress: { routes: [route('a', '127.137.0.1', ['*.example.test'])] } }, 'egress.routes[0].names[0]', /wildcards/],
    ['name with an underscore', { dns: on, egress: { routes: [route('a', '127.137.0.1', ['bad_name'])] } }, 'egress.routes[0].names[0]', /must be a DNS name/],
    ['empty name', { dns: on, egress: { routes: [route('a', '127.137.0.1', [''])] } }, 'egress.routes[0].names[0]', /must be a DNS name/],
    ['label too long', { dns: on, egress: { routes: [route('a', '127.137.0.1', [`${'a'.repeat(64)}.test`])] } }, 'egress.routes[0].names[0]', /1-63/],
    ['name that is not a string', { dns: on, egress: { routes: [route('a', '127.137.0.1', [42])] } }, 'egress.routes[0].names[0]', /string/],
    [
      'same name twice in a route',
      { dns: on, egress: { routes: [route('a', '127.137.0.1', ['a-svc', 'A-SVC.'])] } },
      'egress.routes[0].names[1]',
      /duplicate name: already used by egress.routes\[0\].names\[0\]/,
    ],
    [
      'same name in two routes',
      { dns: on, egress: { routes: [route('a', '127.137.0.1', ['x.test']), route('b', '127.137.0.2', ['y.test', 'X.Test'])] } },
      'egress.routes[1].names[1]',
      /already used by egress.routes\[0\].names\[0\]/,
    ],
  ])('%s', (_label, input, path, rule) => {
    const errors = errorsOf(input);
    const hit = errors.find((e) => e.path === path);
    expect(hit, `errors were: ${errors.map(formatError).join('; ')}`).toBeDefined();
    expect(hit?.rule).toMatch(rule);
  });

  it('reports name, port and duplicate mistakes together, each once', () => {
    const errors = errorsOf({
      dns: { enabled: true, address: '127.0.0.1:15001', ttl: 99999 },
      egress: { routes: [route('a', '127.137.0.1', ['ok.test', '1.2.3.4']), route('b', '127.137.0.2', ['OK.test'])] },
    });
    expect(errors.map((e) => e.path).sort()).toEqual(['dns.address', 'dns.ttl', 'egress.routes[0].names[1]', 'egress.routes[1].names[0]']);
  });

  it('a disabled dns section is still checked field by field, but reserves no port', () => {
    expect(errorsOf({ dns: { ttl: 'five' } }).map((e) => e.path)).toEqual(['dns.ttl']);
    const r = validateConfig({ dns: { enabled: false, address: '127.0.0.1:15001' } });
    expect(r.ok).toBe(true);
    expect(validateConfig({ dns: { enabled: false }, ingress: { ports: [{ name: 'a', port: 15053 }] } }).ok).toBe(true);
  });
});
