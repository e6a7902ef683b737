import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { parseGoBool } from '../../src/config/contrast.js';
import { ConfigInvalidError, formatError } from '../../src/config/errors.js';

function fromEnv(env: Record<string, string>) {
  return loadConfig(undefined, env);
}

function errorsFromEnv(env: Record<string, string>): string[] {
  try {
    fromEnv(env);
  } catch (err) {
    if (err instanceof ConfigInvalidError) return err.errors.map(formatError);
    throw err;
  }
  throw new Error('expected an invalid config');
}

const EMOJIVOTO_EGRESS = 'emoji#127.137.0.1:8081#emoji-svc:8080##voting#127.137.0.2:8081#voting-svc:8080';

describe('Contrast drop-in environment', () => {
  it('parses the documented emojivoto egress value', () => {
    const { config, source } = fromEnv({ CONTRAST_EGRESS_PROXY_CONFIG: EMOJIVOTO_EGRESS });
    expect(source).toBe('environment (CONTRAST_EGRESS_PROXY_CONFIG)');
    expect(config.egress.routes).toEqual([
      { name: 'emoji', listenIp: '127.137.0.1', listenPort: 8081, remoteHost: 'emoji-svc', remotePort: 8080, expectedSans: [] },
      { name: 'voting', listenIp: '127.137.0.2', listenPort: 8081, remoteHost: 'voting-svc', remotePort: 8080, expectedSans: [] },
    ]);
    // Unset ingress means mTLS on every port, as in Contrast.
    expect(config.ingress).toEqual({ mode: 'tproxy', default: 'mtls', ports: [] });
  });

  it('skips empty entries, so a trailing ## is fine', () => {
    const { config } = fromEnv({ CONTRAST_EGRESS_PROXY_CONFIG: `${EMOJIVOTO_EGRESS}##` });
    expect(config.egress.routes.map((r) => r.name)).toEqual(['emoji', 'voting']);
  });

  it.each([
    ['web#8080#false', { name: 'web', port: 8080, policy: 'tls' }],
    ['metrics#7890#true', { name: 'metrics', port: 7890, policy: 'plaintext' }],
  ])('ingress %s', (value, port) => {
    const { config } = fromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: value });
    expect(config.ingress).toEqual({ mode: 'tproxy', default: 'mtls', ports: [{ ...port, allowedSans: [], allowTls12: false }] });
  });

  it('ingress DISABLED installs nothing inbound', () => {
    expect(fromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: 'DISABLED' }).config.ingress.mode).toBe('disabled');
  });

  it('an empty ingress value means mTLS on every port', () => {
    expect(fromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: '' }).config.ingress).toEqual({ mode: 'tproxy', default: 'mtls', ports: [] });
  });

  it.each(['1', 't', 'T', 'TRUE', 'true', 'True'])('disableTLS %s is true (plaintext)', (b) => {
    expect(parseGoBool(b)).toBe(true);
    expect(fromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: `m#7890#${b}` }).config.ingress.ports[0]?.policy).toBe('plaintext');
  });

  it.each(['0', 'f', 'F', 'FALSE', 'false', 'False'])('disableTLS %s is false (TLS, no client cert)', (b) => {
    expect(parseGoBool(b)).toBe(false);
    expect(fromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: `w#8080#${b}` }).config.ingress.ports[0]?.policy).toBe('tls');
  });

  it.each(['yes', 'TRue', 'tRUE', 'on', '', ' true'])('disableTLS %j is refused like strconv.ParseBool refuses it', (b) => {
    expect(parseGoBool(b)).toBeUndefined();
    expect(errorsFromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: `w#8080#${b}` }).join('\n')).toMatch(/invalid disable TLS/);
  });

  it('reads the older EDG_* names, and CONTRAST_* wins over them', () => {
    expect(fromEnv({ EDG_INGRESS_PROXY_CONFIG: 'web#8080#false' }).config.ingress.ports[0]?.port).toBe(8080);
    expect(fromEnv({ EDG_EGRESS_PROXY_CONFIG: EMOJIVOTO_EGRESS }).config.egress.routes).toHaveLength(2);
    expect(fromEnv({ EDG_ADMIN_PORT: '9901' }).config.metrics).toEqual({ port: 9901 });
    const both = fromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: 'a#81#false', EDG_INGRESS_PROXY_CONFIG: 'b#82#false' });
    expect(both.config.ingress.ports.map((p) => p.port)).toEqual([81]);
  });

  it('CONTRAST_ADMIN_PORT opens the read-only metrics port; the admin exception makes it plaintext; Envoy admin stays private', () => {
    const { config } = fromEnv({ CONTRAST_ADMIN_PORT: '9901', CONTRAST_INGRESS_PROXY_CONFIG: 'admin#9901#true##web#8080#false' });
    expect(config.metrics).toEqual({ port: 9901 });
    expect(config.ingress.ports.map((p) => [p.name, p.port, p.policy])).toEqual([
      ['admin', 9901, 'plaintext'],
      ['web', 8080, 'tls'],
    ]);
    // Without the exception the port stays behind mTLS, as an unlisted port is in Contrast.
    const closed = fromEnv({ CONTRAST_ADMIN_PORT: '9901' }).config;
    expect(closed.metrics).toEqual({ port: 9901 });
    expect(closed.ingress.ports.map((p) => [p.name, p.port, p.policy])).toEqual([['admin', 9901, 'mtls']]);
    expect(fromEnv({ CONTRAST_ADMIN_PORT: '0' }).config.metrics).toBeUndefined();
    expect(fromEnv({ CONTRAST_ADMIN_PORT: '' }).config.metrics).toBeUndefined();
  });

  it.each([
    [
      'a port above 65535 (Contrast wraps it)',
      { CONTRAST_EGRESS_PROXY_CONFIG: 'emoji#127.137.0.1:70000#emoji-svc:8080' },
      /entry 1: invalid listen port: must be in 1-65535/,
    ],
    ['a remote port above 65535', { CONTRAST_EGRESS_PROXY_CONFIG: 'emoji#127.137.0.1:8081#emoji-svc:65536' }, /invalid remote port: must be in 1-65535/],
    ['an ingress port above 65535', { CONTRAST_INGRESS_PROXY_CONFIG: 'web#65536#false' }, /invalid listen port: must be in 1-65535/],
    [
      'duplicate egress names',
      { CONTRAST_EGRESS_PROXY_CONFIG: 'a#127.137.0.1:8081#x:1##a#127.137.0.2:8081#y:1' },
      /entry 2: duplicate name: already used by entry 1/,
    ],
    [
      'a listen address outside 127/8',
      { CONTRAST_EGRESS_PROXY_CONFIG: 'a#198.18.0.1:8081#x:1' },
      /listen address 198\.18\.0\.1 is not in local CIDR 127\.0\.0\.1\/8/,
    ],
    ['an IPv6 listen address', { CONTRAST_EGRESS_PROXY_CONFIG: 'a#[::1]:8081#x:1' }, /listen address ::1 is not in local CIDR 127\.0\.0\.1\/8/],
    ['an entry with two fields', { CONTRAST_EGRESS_PROXY_CONFIG: 'a#127.0.0.9:1' }, /invalid entry/],
    ['an ingress entry with four fields', { CONTRAST_INGRESS_PROXY_CONFIG: 'a#1#true#x' }, /invalid entry/],
    ['a bad admin port', { CONTRAST_ADMIN_PORT: 'nine' }, /CONTRAST_ADMIN_PORT: invalid admin port/],
  ])('refuses %s with a clear error', (_label, env, re) => {
    expect(errorsFromEnv(env).join('\n')).toMatch(re);
  });

  it('reports all Contrast mistakes at once', () => {
    const errors = errorsFromEnv({ CONTRAST_EGRESS_PROXY_CONFIG: 'a#127.0.0.9:70000#x:1##a#198.18.0.1:1#y:2', CONTRAST_INGRESS_PROXY_CONFIG: 'w#1#maybe' });
    expect(errors).toHaveLength(4);
  });
});

describe('no config at all', () => {
  it('means what a Contrast pod without mesh annotations means: mTLS on every inbound port, no egress', () => {
    // Contrast only sets a variable for a non-empty annotation, so emojivoto's
    // emoji and voting pods have none; /etc/meshlet/config.yaml does not exist here.
    const { config, source, warnings, file } = loadConfig(undefined, {});
    expect(source).toMatch(/^defaults \(no --config/);
    expect(file).toBeUndefined();
    expect(config.ingress).toEqual({ mode: 'tproxy', default: 'mtls', ports: [] });
    expect(config.egress.routes).toEqual([]);
    expect(warnings.join()).toMatch(/mTLS on every inbound port/);
  });
});

// Every row of Contrast's parser behaviour (its config.go, read with Go's
// semantics): what Contrast's sidecar starts with, meshlet accepts with the
// same meaning; what it refuses (or only fails on once Envoy has it), meshlet
// refuses with a message that names the fix.
describe("Contrast's grammar, case by case", () => {
  const ports = (env: Record<string, string>): [string, number, string][] => fromEnv(env).config.ingress.ports.map((p) => [p.name, p.port, p.policy]);
  const routes = (value: string): [string, string, number | undefined, string, number | undefined][] =>
    fromEnv({ CONTRAST_EGRESS_PROXY_CONFIG: value }).config.egress.routes.map((r) => [r.name, r.listenIp, r.listenPort, r.remoteHost, r.remotePort]);

  it.each([
    [
      'E1 emojivoto web',
      EMOJIVOTO_EGRESS,
      [
        ['emoji', '127.137.0.1', 8081, 'emoji-svc', 8080],
        ['voting', '127.137.0.2', 8081, 'voting-svc', 8080],
      ],
    ],
    ['E2 vote-bot', 'web#127.137.0.3:8081#web-svc:443', [['web', '127.137.0.3', 8081, 'web-svc', 443]]],
    ['E3 mysql client', 'mysql-backend#127.137.0.1:3306#mysql-backend:3306', [['mysql-backend', '127.137.0.1', 3306, 'mysql-backend', 3306]]],
    ['E5 trailing ##', 'emoji#127.137.0.1:8081#emoji-svc:8080##', [['emoji', '127.137.0.1', 8081, 'emoji-svc', 8080]]],
    ['E5 leading ##', '##emoji#127.137.0.1:8081#emoji-svc:8080', [['emoji', '127.137.0.1', 8081, 'emoji-svc', 8080]]],
    [
      'E5 ## in the middle, twice',
      'a#127.0.0.2:1#x:1####b#127.0.0.3:1#y:1',
      [
        ['a', '127.0.0.2', 1, 'x', 1],
        ['b', '127.0.0.3', 1, 'y', 1],
      ],
    ],
    ['E6 lone ##', '##', []],
    ['E6 empty value', '', []],
    ['E18 a signed remote port (strconv.Atoi)', 'emoji#127.137.0.1:8081#emoji-svc:+8080', [['emoji', '127.137.0.1', 8081, 'emoji-svc', 8080]]],
    ['leading zeros in ports', 'emoji#127.137.0.1:08081#emoji-svc:008080', [['emoji', '127.137.0.1', 8081, 'emoji-svc', 8080]]],
    ['E19 an IPv4 literal remote', 'db#127.137.0.9:5432#198.18.0.5:5432', [['db', '127.137.0.9', 5432, '198.18.0.5', 5432]]],
    ['an IPv6 literal remote', 'db#127.137.0.9:5432#[2001:db8::5]:5432', [['db', '127.137.0.9', 5432, '2001:db8::5', 5432]]],
    ['a free-text name', 'my db (primary)#127.137.0.9:5432#db:5432', [['my-db--primary', '127.137.0.9', 5432, 'db', 5432]]],
    [
      'names that normalise alike stay distinct',
      'a b#127.0.0.2:1#x:1##a_b#127.0.0.3:1#y:1##a/b#127.0.0.4:1#z:1',
      [
        ['a-b', '127.0.0.2', 1, 'x', 1],
        ['a_b', '127.0.0.3', 1, 'y', 1],
        ['a-b-2', '127.0.0.4', 1, 'z', 1],
      ],
    ],
    ['a name of only symbols', '***#127.0.0.2:1#x:1', [['egress-1', '127.0.0.2', 1, 'x', 1]]],
  ])('egress %s', (_label, value, want) => {
    expect(routes(value)).toEqual(want);
  });

  it('warns about an egress value with no entries, and means no routes', () => {
    expect(fromEnv({ CONTRAST_EGRESS_PROXY_CONFIG: '##' }).warnings.join()).toMatch(/no entries, so there are no egress routes/);
  });

  it.each([
    ['E7 two fields', 'emoji#127.137.0.1:8081', /entry 1: invalid entry: .*\(got "emoji#127\.137\.0\.1:8081"\)/],
    ['E7 four fields', 'a#b#c#d', /invalid entry/],
    ['E8 a name as listen address', 'emoji#localhost:8081#emoji-svc:8080', /invalid listen address/],
    ['E9 no listen port', 'emoji#127.137.0.1#emoji-svc:8080', /invalid listen address/],
    ['E10 outside 127/8', 'emoji#10.0.0.1:8081#emoji-svc:8080', /listen address 10\.0\.0\.1 is not in local CIDR 127\.0\.0\.1\/8/],
    ['E11 IPv6 loopback', 'emoji#[::1]:8081#emoji-svc:8080', /listen address ::1 is not in local CIDR/],
    ['E12 listen port above 65535', 'emoji#127.137.0.1:70000#emoji-svc:8080', /invalid listen port: must be in 1-65535/],
    [
      'E13 listen port 0 (Contrast fails at start)',
      'emoji#127.137.0.1:0#emoji-svc:8080',
      /invalid listen port: must be in 1-65535 \(Contrast fails at start on port 0\)/,
    ],
    ['E14 no remote port', 'emoji#127.137.0.1:8081#emoji-svc', /invalid remote: must be "host:port"/],
    ['E15 a named remote port', 'emoji#127.137.0.1:8081#emoji-svc:http', /invalid remote port: must be a decimal number/],
    ['E16 an empty remote port', 'emoji#127.137.0.1:8081#emoji-svc:', /invalid remote port/],
    [
      'E17 remote port above 65535 (Contrast wraps it)',
      'emoji#127.137.0.1:8081#emoji-svc:70000',
      /invalid remote port: must be in 1-65535 \(Contrast would silently turn 70000 into port 4464\)/,
    ],
    ['E18 a negative remote port (Contrast wraps it)', 'emoji#127.137.0.1:8081#emoji-svc:-1', /Contrast would silently turn -1 into port 65535/],
    ['remote port 0', 'emoji#127.137.0.1:8081#emoji-svc:0', /invalid remote port: must be in 1-65535/],
    [
      'E20 a duplicate name (Envoy refuses it at start)',
      'a#127.0.0.2:1#x:1##a#127.0.0.3:1#y:1',
      /entry 2: duplicate name: already used by entry 1 \(got "a"\)/,
    ],
    ['E21 an empty name (Contrast fails at start)', '#127.137.0.1:8081#emoji-svc:8080', /empty name/],
    ['E22 an empty remote host (Contrast fails at start)', 'emoji#127.137.0.1:8081#:8080', /the host is empty/],
    ['a remote with two colons', 'emoji#127.137.0.1:8081#a:b:8080', /invalid remote/],
  ])('egress %s is refused', (_label, value, re) => {
    expect(errorsFromEnv({ CONTRAST_EGRESS_PROXY_CONFIG: value }).join('\n')).toMatch(re);
  });

  it.each([
    ['I1 empty', '', []],
    ['I2 web', 'web#8080#false', [['web', 8080, 'tls']]],
    [
      'I3 two entries',
      'web#8080#false##metrics#7890#true',
      [
        ['web', 8080, 'tls'],
        ['metrics', 7890, 'plaintext'],
      ],
    ],
    ['I4 leading ## (the e2e value for emoji and voting)', '##admin#9901#true', [['admin', 9901, 'plaintext']]],
    ['trailing ##', 'web#8080#false##', [['web', 8080, 'tls']]],
    ['lone ##', '##', []],
    ['I11 a signed port', 'web#+8080#false', [['web', 8080, 'tls']]],
    ['leading zeros', 'web#08080#false', [['web', 8080, 'tls']]],
    ['I12 an empty name', '#8080#false', [['port-8080', 8080, 'tls']]],
    ['a free-text name', 'my web#8080#false', [['my-web', 8080, 'tls']]],
    ['a name longer than 63 characters', `${'x'.repeat(70)}#8080#false`, [['x'.repeat(63), 8080, 'tls']]],
    [
      'I13 duplicate names',
      'a#81#false##a#82#true',
      [
        ['a', 81, 'tls'],
        ['a-2', 82, 'plaintext'],
      ],
    ],
    ['I13 duplicate ports: the first entry decides, as the first rule does', 'a#81#false##b#81#true', [['a', 81, 'tls']]],
  ])('ingress %s', (_label, value, want) => {
    expect(ports({ CONTRAST_INGRESS_PROXY_CONFIG: value })).toEqual(want);
    expect(fromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: value }).config.ingress.mode).toBe('tproxy');
  });

  it('warns that a second entry for a port has no effect', () => {
    expect(fromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: 'a#81#false##b#81#true' }).warnings.join()).toMatch(/entry 2: port 81 is already listed by entry 1/);
  });

  it.each([
    ['I5 alone', 'DISABLED'],
    ['I6 with the admin exception (the e2e value for vote-bot)', 'DISABLED##admin#9901#true'],
    ['after another entry', 'admin#9901#true##DISABLED'],
    ['with ## around it', '##DISABLED##'],
  ])('DISABLED %s turns ingress off', (_label, value) => {
    const { config } = fromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: value, CONTRAST_ADMIN_PORT: '9901' });
    expect(config.ingress).toEqual({ mode: 'disabled', default: 'mtls', ports: [] });
    // Admin still works: nothing inbound is redirected, so the metrics port is reachable as it is.
    expect(config.metrics).toEqual({ port: 9901 });
  });

  it('DISABLED with another entry warns that the entry has no effect, and still checks its syntax', () => {
    expect(fromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: 'DISABLED##web#8080#false' }).warnings.join()).toMatch(
      /DISABLED, so nothing inbound is redirected and the entries for port 8080 have no effect/,
    );
    expect(errorsFromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: 'DISABLED##web#x#false' }).join()).toMatch(/invalid listen port/);
  });

  it.each([
    ['I8 yes', 'web#8080#yes', /entry 1: invalid disable TLS: .*\(got "yes"\)/],
    ['I8 TRue', 'web#8080#TRue', /invalid disable TLS/],
    ['I8 " true"', 'web#8080# true', /invalid disable TLS/],
    ['I8 empty', 'web#8080#', /invalid disable TLS/],
    ['I9 two fields', 'web#8080', /invalid entry: must be "name#port#disableTLS", or "DISABLED"/],
    ['I9 four fields', 'web#8080#false#x', /invalid entry/],
    ['I10 a named port', 'web#http#false', /invalid listen port: must be a decimal number/],
    ['I11 port above 65535 (Contrast wraps it)', 'web#70000#false', /Contrast would silently turn 70000 into port 4464/],
    ['I11 a negative port (Contrast wraps it)', 'web#-1#false', /Contrast would silently turn -1 into port 65535/],
    ['I11 port 0', 'web#0#false', /invalid listen port: must be in 1-65535/],
    ['a lower-case disabled', 'disabled', /invalid entry/],
    ["an ingress port on the proxy's own port", 'x#15006#false', /port is reserved for the proxy/],
  ])('ingress %s is refused', (_label, value, re) => {
    expect(errorsFromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: value }).join('\n')).toMatch(re);
  });

  it.each([
    ['A1 empty', '', undefined],
    ['A2 zero', '0', undefined],
    ['A2 zero, padded', '00', undefined],
    ['A3', '9901', 9901],
    ['a signed port', '+9901', 9901],
  ])('admin %s', (_label, value, port) => {
    expect(fromEnv({ CONTRAST_ADMIN_PORT: value }).config.metrics?.port).toBe(port);
  });

  it.each([
    ['A4 not a number', 'abc', /CONTRAST_ADMIN_PORT: invalid admin port: must be a decimal number \(got "abc"\)/],
    ['A5 above 65535', '70000', /invalid admin port: must be in 1-65535/],
    ['A5 negative', '-1', /invalid admin port/],
    ["the proxy's own port", '15006', /metrics\.port: port is already used by proxy\.inboundPort; pick another port \(got 15006\)/],
    ['the port of an egress listener', '8081', /metrics\.port: port is already used by egress\.routes\[0\]\.listen; pick another port \(got 8081\)/],
  ])('admin %s is refused', (_label, value, re) => {
    expect(errorsFromEnv({ CONTRAST_ADMIN_PORT: value, CONTRAST_EGRESS_PROXY_CONFIG: 'e#127.0.0.9:8081#x:1' }).join('\n')).toMatch(re);
  });

  it.each(['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False'])('every ParseBool spelling is accepted: %s', (b) => {
    const want = ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(b) ? 'plaintext' : 'tls';
    expect(ports({ CONTRAST_INGRESS_PROXY_CONFIG: `x#81#${b}` })).toEqual([['x', 81, want]]);
  });
});

describe('metrics.port in a config file', () => {
  it('is exempt from interception unless ingress.ports lists it', async () => {
    const { validateConfig } = await import('../../src/config/validate.js');
    const r = validateConfig({ metrics: { port: 9102 } });
    expect(r.ok && r.config.ingress.ports).toEqual([{ name: 'meshlet-metrics', port: 9102, policy: 'plaintext', allowedSans: [], allowTls12: false }]);
    expect(r.ok && r.config.metrics).toEqual({ port: 9102 });
    const listed = validateConfig({ metrics: { port: 9102 }, ingress: { ports: [{ name: 'm', port: 9102, policy: 'mtls' }] } });
    expect(listed.ok && listed.config.ingress.ports.map((p) => p.policy)).toEqual(['mtls']);
    const bad = validateConfig({ metrics: { port: 15020 } });
    expect(bad.ok ? [] : bad.errors.map(formatError)).toEqual(['metrics.port: port is already used by debug.address; pick another port (got 15020)']);
  });
});
