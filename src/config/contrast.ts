// Contrast drop-in: the CONTRAST_* (and older EDG_*) environment variables,
// with Contrast's exact syntax and meaning, turned into a raw meshlet config.
// Inputs Contrast wrongly accepts (ports above 65535, duplicate names, an
// empty egress value) get a clear error here instead.
import { isIP } from 'node:net';
import type { ConfigError } from './errors.js';
import type { RawConfigInput } from './schema.js';

const VARS = {
  ingress: ['CONTRAST_INGRESS_PROXY_CONFIG', 'EDG_INGRESS_PROXY_CONFIG'],
  egress: ['CONTRAST_EGRESS_PROXY_CONFIG', 'EDG_EGRESS_PROXY_CONFIG'],
  admin: ['CONTRAST_ADMIN_PORT', 'EDG_ADMIN_PORT'],
} as const;

type Env = Readonly<Record<string, string | undefined>>;

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

function parseContrastPort(s: string): number | string {
  if (!/^[0-9]+$/.test(s)) return 'must be a decimal number';
  const n = Number(s);
  if (n < 1 || n > 65535) return 'must be in 1-65535 (Contrast would silently wrap it to 16 bits)';
  return n;
}

/** Splits on "##" and drops empty entries, as Contrast does (a trailing "##" is fine). */
function entries(value: string): { entry: string; index: number }[] {
  return value
    .split('##')
    .map((entry, index) => ({ entry, index }))
    .filter((e) => e.entry !== '');
}

interface Parsed<T> {
  value: T;
  errors: ConfigError[];
  warnings: string[];
}

export function parseContrastEgress(varName: string, value: string): Parsed<NonNullable<NonNullable<RawConfigInput['egress']>['routes']>> {
  const errors: ConfigError[] = [];
  const routes: NonNullable<NonNullable<RawConfigInput['egress']>['routes']> = [];
  const list = entries(value);
  if (list.length === 0) {
    errors.push({ path: varName, value, rule: 'is set but has no entries; unset it, or give "name#127.x.y.z:port#host:port" entries joined by "##"' });
  }
  const names = new Map<string, number>();
  for (const { entry, index } of list) {
    const at = `${varName} entry ${index + 1}`;
    const fields = entry.split('#');
    if (fields.length !== 3) {
      errors.push({ path: at, value: entry, rule: 'invalid entry: must be "name#127.x.y.z:port#host:port"' });
      continue;
    }
    const [name = '', listen = '', remote = ''] = fields;
    const before = names.get(name);
    if (before !== undefined) errors.push({ path: at, value: name, rule: `duplicate name: already used by entry ${before}` });
    else names.set(name, index + 1);
    const l = listen.lastIndexOf(':');
    const lip = listen.slice(0, l);
    if (l < 0 || isIP(lip) !== 4) {
      errors.push({ path: at, value: listen, rule: 'invalid listen address: must be "127.x.y.z:port" (IPv4)' });
      continue;
    }
    if (!lip.startsWith('127.')) errors.push({ path: at, value: listen, rule: `listen address ${lip} is not in local CIDR 127.0.0.1/8` });
    const lport = parseContrastPort(listen.slice(l + 1));
    if (typeof lport === 'string') errors.push({ path: at, value: listen, rule: `invalid listen port: ${lport}` });
    const r = remote.lastIndexOf(':');
    if (r <= 0) {
      errors.push({ path: at, value: remote, rule: 'invalid remote: must be "host:port"' });
      continue;
    }
    const rport = parseContrastPort(remote.slice(r + 1));
    if (typeof rport === 'string') errors.push({ path: at, value: remote, rule: `invalid remote port: ${rport}` });
    routes.push({ name, listen, remote });
  }
  return { value: routes, errors, warnings: [] };
}

export function parseContrastIngress(varName: string, value: string, adminPort: number | undefined): Parsed<NonNullable<RawConfigInput['ingress']>> {
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  if (value === 'DISABLED') return { value: { mode: 'disabled' }, errors, warnings };
  const ports: NonNullable<NonNullable<RawConfigInput['ingress']>['ports']> = [];
  const names = new Map<string, number>();
  for (const { entry, index } of entries(value)) {
    const at = `${varName} entry ${index + 1}`;
    const fields = entry.split('#');
    if (fields.length !== 3) {
      errors.push({ path: at, value: entry, rule: 'invalid entry: must be "name#port#disableTLS" (or the whole value "DISABLED")' });
      continue;
    }
    const [name = '', portText = '', disable = ''] = fields;
    const before = names.get(name);
    if (before !== undefined) errors.push({ path: at, value: name, rule: `duplicate name: already used by entry ${before}` });
    else names.set(name, index + 1);
    const port = parseContrastPort(portText);
    if (typeof port === 'string') errors.push({ path: at, value: portText, rule: `invalid listen port: ${port}` });
    const disableTLS = parseGoBool(disable);
    if (disableTLS === undefined) errors.push({ path: at, value: disable, rule: 'invalid disable TLS: must be true or false (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)' });
    if (typeof port === 'string' || disableTLS === undefined) continue;
    if (port === adminPort && disableTLS) {
      // Contrast exposes Envoy's admin on 0.0.0.0 and users open it with this
      // exception. meshlet's Envoy has no admin port (a Unix socket only), so the entry is dropped.
      warnings.push(`${at}: "${entry}" would expose Envoy's admin port; meshlet's Envoy serves admin only on a Unix socket inside the pod (use meshlet dump, or kubectl exec), so this exception is ignored`);
      continue;
    }
    ports.push({ name, port, policy: disableTLS ? 'plaintext' : 'tls' });
  }
  return { value: { mode: 'tproxy', default: 'mtls', ports }, errors, warnings };
}

export function parseContrastAdmin(varName: string, value: string): Parsed<number | undefined> {
  if (value === '' || value === '0') return { value: undefined, errors: [], warnings: [] };
  const port = parseContrastPort(value);
  if (typeof port === 'string') return { value: undefined, errors: [{ path: varName, value, rule: `invalid admin port: ${port}` }], warnings: [] };
  return { value: port, errors: [], warnings: [] };
}

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
  }
  const ingress = pick(env, VARS.ingress);
  if (ingress) {
    used.push(ingress.name);
    const r = parseContrastIngress(ingress.name, ingress.value, adminPort);
    errors.push(...r.errors);
    warnings.push(...r.warnings);
    raw.ingress = r.value;
  }
  const egress = pick(env, VARS.egress);
  if (egress) {
    used.push(egress.name);
    const r = parseContrastEgress(egress.name, egress.value);
    errors.push(...r.errors);
    raw.egress = { routes: r.value };
  }
  return { raw, errors, warnings, source: `environment (${used.join(', ')})` };
}
