// Contrast drop-in: the CONTRAST_* (and older EDG_*) environment variables,
// read with the grammar of Contrast's sidecar and the same meaning, turned
// into a raw meshlet config. Everything Contrast's sidecar starts with is
// accepted here, with two kinds of exception, each refused with a message
// that names the fix: values Contrast silently wraps or zeroes (ports 0, above
// 65535 or negative), and values Contrast only fails on once Envoy has them
// (duplicate or empty egress names, an empty remote host).
import { isIP } from './net.js';
import type { ConfigError } from './errors.js';
import type { RawConfigInput } from './schema.js';

const VARS = {
  ingress: ['CONTRAST_INGRESS_PROXY_CONFIG', 'EDG_INGRESS_PROXY_CONFIG'],
  egress: ['CONTRAST_EGRESS_PROXY_CONFIG', 'EDG_EGRESS_PROXY_CONFIG'],
  admin: ['CONTRAST_ADMIN_PORT', 'EDG_ADMIN_PORT'],
} as const;

type Env = Readonly<Record<string, string | undefined>>;
type Route = NonNullable<NonNullable<RawConfigInput['egress']>['routes']>[number];
type IngressPortInput = NonNullable<NonNullable<RawConfigInput['ingress']>['ports']>[number];

/** The first variable of the pair that is set, CONTRAST_* before EDG_*. */
function pick(env: Env, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined) return { name, value };
  }
  return undefined;
}

export function hasContrastEnv(env: Env): boolean {
  return Object.values(VARS).some((names) => pick(env, names) !== undefined);
}

/** Go's strconv.ParseBool, exactly. */
export function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/**
 * A port as Go's strconv.Atoi reads it (an optional sign, decimal digits,
 * leading zeros allowed), then range-checked where Contrast casts to 16 bits.
 */
export function parseContrastPort(s: string): number | string {
  if (!/^[+-]?[0-9]+$/.test(s)) return 'must be a decimal number';
  const n = Number(s);
  if (n < 1 || n > 65535) return `must be in 1-65535 (Contrast would silently turn ${s} into port ${wrap16(n)})`;
  return n;
}

/** What Go's uint16(int) conversion makes of n, for the error message. */
function wrap16(n: number): number {
  if (!Number.isSafeInteger(n)) return NaN;
  return ((n % 65536) + 65536) % 65536;
}

/** Splits on "##" and drops empty entries, as Contrast does (leading, trailing or lone "##" are fine). */
function entries(value: string): { entry: string; index: number }[] {
  return value
    .split('##')
    .map((entry, index) => ({ entry, index }))
    .filter((e) => e.entry !== '');
}

const NAME_MAX = 63;

/**
 * Contrast's names are free text (it uses them only as Envoy stat prefixes and
 * resource names). meshlet's must be 1-63 of [A-Za-z0-9_.-], starting and
 * ending alphanumeric, because they end up in Envoy resource names, metrics
 * and logs. Other characters become "-"; an empty result gets `fallback`.
 */
export function safeName(text: string, fallback: string): string {
  const trim = (s: string): string => s.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '');
  const name = trim(trim(text.replace(/[^A-Za-z0-9_.-]/g, '-')).slice(0, NAME_MAX));
  return name === '' ? fallback : name;
}

/** Makes `name` unique among `used` by appending -2, -3, … (kept within 63 characters). */
function unique(name: string, used: Set<string>): string {
  let candidate = name;
  for (let n = 2; used.has(candidate.toLowerCase()); n++) {
    const suffix = `-${n}`;
    candidate = `${name.slice(0, NAME_MAX - suffix.length).replace(/[^A-Za-z0-9]+$/, '')}${suffix}`;
  }
  used.add(candidate.toLowerCase());
  return candidate;
}

interface Parsed<T> {
  value: T;
  errors: ConfigError[];
  warnings: string[];
}

export function parseContrastEgress(varName: string, value: string): Parsed<Route[]> {
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const routes: Route[] = [];
  const list = entries(value);
  if (list.length === 0) warnings.push(`${varName} is set but has no entries, so there are no egress routes (as in Contrast)`);
  const originals = new Map<string, number>();
  const used = new Set<string>();
  for (const { entry, index } of list) {
    const at = `${varName} entry ${index + 1}`;
    const fields = entry.split('#');
    if (fields.length !== 3) {
      errors.push({ path: at, value: entry, rule: 'invalid entry: must be "name#127.x.y.z:port#host:port"' });
      continue;
    }
    const [name = '', listen = '', remote = ''] = fields;
    let ok = true;
    if (name === '') {
      // Contrast accepts it, then fails at start: Envoy needs a non-empty stat prefix.
      errors.push({ path: at, value: entry, rule: 'empty name: give the route a name, as in "name#127.x.y.z:port#host:port"' });
      ok = false;
    } else {
      const before = originals.get(name);
      // Contrast accepts it, then Envoy refuses the duplicate listener at start.
      if (before !== undefined) {
        errors.push({ path: at, value: name, rule: `duplicate name: already used by entry ${before}` });
        ok = false;
      } else originals.set(name, index + 1);
    }
    const listenOut = egressListen(listen, at, errors);
    const remoteOut = egressRemote(remote, at, errors);
    if (!ok || listenOut === undefined || remoteOut === undefined) continue;
    routes.push({ name: unique(safeName(name, `egress-${index + 1}`), used), listen: listenOut, remote: remoteOut });
  }
  return { value: routes, errors, warnings };
}

/** `IPv4:port` in 127.0.0.0/8, as Go's netip.ParseAddrPort reads it. */
function egressListen(listen: string, at: string, errors: ConfigError[]): string | undefined {
  const m = /^(.*):([0-9]+)$/.exec(listen);
  const host = m?.[1] ?? '';
  let ip: string | undefined;
  if (host.startsWith('[') && host.endsWith(']') && isIP(host.slice(1, -1)) === 6) ip = host.slice(1, -1);
  else if (isIP(host) === 4) ip = host;
  if (m === null || ip === undefined) {
    errors.push({ path: at, value: listen, rule: 'invalid listen address: must be "127.x.y.z:port"' });
    return undefined;
  }
  if (isIP(ip) !== 4 || !ip.startsWith('127.')) {
    errors.push({ path: at, value: listen, rule: `listen address ${ip} is not in local CIDR 127.0.0.1/8 (only the pod may reach an egress listener)` });
    return undefined;
  }
  const port = Number(m[2]);
  if (port < 1 || port > 65535) {
    errors.push({ path: at, value: listen, rule: `invalid listen port: must be in 1-65535${port === 0 ? ' (Contrast fails at start on port 0)' : ''}` });
    return undefined;
  }
  return `${ip}:${port}`;
}

/** `host:port` as Go's net.SplitHostPort and strconv.Atoi read it. */
function egressRemote(remote: string, at: string, errors: ConfigError[]): string | undefined {
  const hp = splitHostPortGo(remote);
  if (hp === undefined) {
    errors.push({ path: at, value: remote, rule: 'invalid remote: must be "host:port" (an IPv6 host in brackets)' });
    return undefined;
  }
  if (hp.host === '') {
    errors.push({ path: at, value: remote, rule: 'invalid remote: the host is empty (Contrast fails at start on it)' });
    return undefined;
  }
  const port = parseContrastPort(hp.port);
  if (typeof port === 'string') {
    errors.push({ path: at, value: remote, rule: `invalid remote port: ${port}` });
    return undefined;
  }
  return `${isIP(hp.host) === 6 ? `[${hp.host}]` : hp.host}:${port}`;
}

/** Go's net.SplitHostPort: "host:port", or "[v6]:port"; one colon outside brackets. */
function splitHostPortGo(s: string): { host: string; port: string } | undefined {
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\]:([^:]*)$/.exec(s);
    return m ? { host: m[1] ?? '', port: m[2] ?? '' } : undefined;
  }
  const i = s.lastIndexOf(':');
  if (i < 0 || s.indexOf(':') !== i || s.includes('[') || s.includes(']')) return undefined;
  return { host: s.slice(0, i), port: s.slice(i + 1) };
}

export interface ContrastIngress {
  ingress: NonNullable<RawConfigInput['ingress']>;
  /** Ports whose entry is `#true`: not redirected (the admin exception among them). */
  plaintextPorts: Set<number>;
}

export function parseContrastIngress(varName: string, value: string): Parsed<ContrastIngress> {
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const ports: IngressPortInput[] = [];
  const plaintextPorts = new Set<number>();
  const seenPorts = new Map<number, number>();
  const used = new Set<string>();
  const list = entries(value);
  // DISABLED may stand among other entries (Contrast's harness appends the
  // admin exception to it): ingress is then off, whatever else is listed.
  const disabled = list.some((e) => e.entry === 'DISABLED');
  for (const { entry, index } of list) {
    if (entry === 'DISABLED') continue;
    const at = `${varName} entry ${index + 1}`;
    const fields = entry.split('#');
    if (fields.length !== 3) {
      errors.push({ path: at, value: entry, rule: 'invalid entry: must be "name#port#disableTLS", or "DISABLED"' });
      continue;
    }
    const [name = '', portText = '', disable = ''] = fields;
    const port = parseContrastPort(portText);
    if (typeof port === 'string') errors.push({ path: at, value: portText, rule: `invalid listen port: ${port}` });
    const disableTLS = parseGoBool(disable);
    if (disableTLS === undefined)
      errors.push({ path: at, value: disable, rule: 'invalid disable TLS: must be one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False' });
    if (typeof port === 'string' || disableTLS === undefined) continue;
    const first = seenPorts.get(port);
    if (first !== undefined) {
      // Contrast appends both rules; the first one in the chain decides.
      warnings.push(`${at}: port ${port} is already listed by entry ${first}, which decides (as in Contrast); this entry has no effect`);
      continue;
    }
    seenPorts.set(port, index + 1);
    if (disableTLS) plaintextPorts.add(port);
    ports.push({ name: unique(safeName(name, `port-${port}`), used), port, policy: disableTLS ? 'plaintext' : 'tls' });
  }
  if (disabled) {
    const others = ports.filter((p) => p.policy !== 'plaintext');
    if (others.length > 0)
      warnings.push(
        `${varName} contains DISABLED, so nothing inbound is redirected and the entries for port ${others.map((p) => p.port).join(', ')} have no effect`,
      );
    return { value: { ingress: { mode: 'disabled' }, plaintextPorts }, errors, warnings };
  }
  return { value: { ingress: { mode: 'tproxy', default: 'mtls', ports }, plaintextPorts }, errors, warnings };
}

export function parseContrastAdmin(varName: string, value: string): Parsed<number | undefined> {
  if (value === '') return { value: undefined, errors: [], warnings: [] };
  if (/^[+-]?0+$/.test(value)) return { value: undefined, errors: [], warnings: [] };
  const port = parseContrastPort(value);
  if (typeof port === 'string') return { value: undefined, errors: [{ path: varName, value, rule: `invalid admin port: ${port}` }], warnings: [] };
  return { value: port, errors: [], warnings: [] };
}

/**
 * CONTRAST_ADMIN_PORT opens meshlet's read-only metrics listener on that port
 * (GET /stats/prometheus and /ready), never Envoy's admin, which stays
 * private to the pod. As in Contrast, the port is plaintext from outside only
 * with the ingress exception `name#PORT#true`; without it, an unlisted port
 * needs a mesh client certificate, so it is listed as mtls to keep it so.
 */
export function contrastToRaw(env: Env): { raw: RawConfigInput; errors: ConfigError[]; warnings: string[]; source: string } {
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const used: string[] = [];
  const raw: RawConfigInput = {};

  const admin = pick(env, VARS.admin);
  let adminPort: number | undefined;
  if (admin) {
    used.push(admin.name);
    const r = parseContrastAdmin(admin.name, admin.value);
    errors.push(...r.errors);
    adminPort = r.value;
    if (adminPort !== undefined) raw.metrics = { port: adminPort };
  }
  const ingress = pick(env, VARS.ingress);
  const parsed = ingress ? parseContrastIngress(ingress.name, ingress.value) : undefined;
  if (ingress && parsed) {
    used.push(ingress.name);
    errors.push(...parsed.errors);
    warnings.push(...parsed.warnings);
    raw.ingress = parsed.value.ingress;
  }
  const ports = raw.ingress?.ports;
  if (adminPort !== undefined && raw.ingress?.mode !== 'disabled' && !(ports ?? []).some((p) => p.port === adminPort)) {
    const names = new Set((ports ?? []).map((p) => p.name.toLowerCase()));
    raw.ingress = {
      mode: 'tproxy',
      default: 'mtls',
      ...raw.ingress,
      ports: [...(ports ?? []), { name: unique('admin', names), port: adminPort, policy: 'mtls' }],
    };
  }
  const egress = pick(env, VARS.egress);
  if (egress) {
    used.push(egress.name);
    const r = parseContrastEgress(egress.name, egress.value);
    errors.push(...r.errors);
    warnings.push(...r.warnings);
    raw.egress = { routes: r.value };
  }
  return { raw, errors, warnings, source: `environment (${used.join(', ')})` };
}
