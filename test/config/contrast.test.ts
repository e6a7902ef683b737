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
    expect(config.ingress).toEqual({ mode: 'tproxy', default: 'mtls', ports: [{ ...port, allowedSans: [] }] });
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
    expect(fromEnv({ EDG_ADMIN_PORT: '9901' }).source).toContain('EDG_ADMIN_PORT');
    const both = fromEnv({ CONTRAST_INGRESS_PROXY_CONFIG: 'a#81#false', EDG_INGRESS_PROXY_CONFIG: 'b#82#false' });
    expect(both.config.ingress.ports.map((p) => p.port)).toEqual([81]);
  });

  it('never opens Envoy admin on TCP, and drops the admin exception with a warning', () => {
    const { config, warnings } = fromEnv({ CONTRAST_ADMIN_PORT: '9901', CONTRAST_INGRESS_PROXY_CONFIG: 'admin#9901#true##web#8080#false' });
    expect(config.ingress.ports.map((p) => p.name)).toEqual(['web']);
    expect(warnings.join()).toMatch(/admin port.*only on a Unix socket/);
  });

  it.each([
    ['a port above 65535 (Contrast wraps it)', { CONTRAST_EGRESS_PROXY_CONFIG: 'emoji#127.137.0.1:70000#emoji-svc:8080' }, /entry 1: invalid listen port: must be in 1-65535 \(Contrast would silently wrap/],
    ['a remote port above 65535', { CONTRAST_EGRESS_PROXY_CONFIG: 'emoji#127.137.0.1:8081#emoji-svc:65536' }, /invalid remote port: must be in 1-65535/],
    ['an ingress port above 65535', { CONTRAST_INGRESS_PROXY_CONFIG: 'web#65536#false' }, /invalid listen port: must be in 1-65535/],
    ['duplicate egress names', { CONTRAST_EGRESS_PROXY_CONFIG: 'a#127.137.0.1:8081#x:1##a#127.137.0.2:8081#y:1' }, /entry 2: duplicate name: already used by entry 1/],
    ['duplicate ingress names', { CONTRAST_INGRESS_PROXY_CONFIG: 'a#81#false##a#82#true' }, /entry 2: duplicate name/],
    ['an empty egress value', { CONTRAST_EGRESS_PROXY_CONFIG: '' }, /CONTRAST_EGRESS_PROXY_CONFIG: is set but has no entries; unset it/],
    ['an egress value of only separators', { CONTRAST_EGRESS_PROXY_CONFIG: '####' }, /is set but has no entries/],
    ['a listen address outside 127/8', { CONTRAST_EGRESS_PROXY_CONFIG: 'a#198.18.0.1:8081#x:1' }, /listen address 198\.18\.0\.1 is not in local CIDR 127\.0\.0\.1\/8/],
    ['an IPv6 listen address', { CONTRAST_EGRESS_PROXY_CONFIG: 'a#[::1]:8081#x:1' }, /invalid listen address/],
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
