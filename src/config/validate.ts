// Structural checks come from the zod schema; semantic checks (duplicates,
// reserved ports, address ranges) run here. Both feed one error list, so a
// user sees every mistake in one pass.
import { isIP } from 'node:net';
import type { z } from 'zod';
import { configSchema, type RawConfig } from './schema.js';
import { formatPath, valueAt, type ConfigError, type PathSegment } from './errors.js';
import { isDnsName, isIn127, parseCidr, parsePort, splitHostPort, type Cidr } from './net.js';
import { reservedPorts, type EgressRoute, type IngressPort, type MeshConfig, type SocketAddress } from './model.js';

export type ValidationResult = { ok: true; config: MeshConfig } | { ok: false; errors: ConfigError[] };

export function validateConfig(input: unknown): ValidationResult {
  const parsed = configSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const errors = zodErrors(input, parsed.error.issues);
    // Still report the semantic mistakes: drop the structurally bad values
    // (optional ones fall back to defaults) and check what remains.
    const repaired = configSchema.safeParse(withoutPaths(input, parsed.error.issues));
    if (repaired.success) {
      const seen = new Set(errors.map((e) => e.path));
      const semantic: ConfigError[] = [];
      normalize(repaired.data, semantic);
      errors.push(...semantic.filter((e) => !seen.has(e.path)));
    }
    return { ok: false, errors };
  }
  const errors: ConfigError[] = [];
  const config = normalize(parsed.data, errors);
  return errors.length === 0 ? { ok: true, config } : { ok: false, errors };
}

function withoutPaths(input: unknown, issues: readonly z.core.$ZodIssue[]): unknown {
  const copy: unknown = structuredClone(input ?? {});
  for (const issue of issues) {
    const path = issue.path as PathSegment[];
    const targets = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...path, k]) : [path];
    for (const t of targets) {
      const parent = valueAt(copy, t.slice(0, -1));
      const last = t[t.length - 1];
      if (parent && typeof parent === 'object' && last !== undefined) delete (parent as Record<PathSegment, unknown>)[last];
    }
  }
  return copy;
}

function zodErrors(input: unknown, issues: readonly z.core.$ZodIssue[]): ConfigError[] {
  const out: ConfigError[] = [];
  for (const issue of issues) {
    const path = issue.path as PathSegment[];
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeys(path);
      for (const key of issue.keys) {
        out.push({
          path: formatPath([...path, key]),
          value: valueAt(input, [...path, key]),
          rule: `unknown key; remove it${allowed ? ` or use one of: ${allowed.join(', ')}` : ''}`,
        });
      }
      continue;
    }
    const value = valueAt(input, path);
    const rule = issue.code === 'invalid_type' && value === undefined ? `is required (${issue.expected})` : ruleText(issue);
    out.push({ path: formatPath(path), value, rule });
  }
  return out;
}

function ruleText(issue: z.core.$ZodIssue): string {
  if ((issue.code === 'too_big' || issue.code === 'too_small') && issue.origin === 'number') {
    return issue.message.startsWith('must') ? issue.message : issue.message.replace(/^Too (big|small): expected number to be /, 'must be ');
  }
  if (issue.code === 'invalid_value') return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  if (issue.code === 'invalid_type') return `must be ${issue.expected === 'int' ? 'an integer' : `a ${issue.expected}`}`;
  return issue.message;
}

/** The keys the schema allows at `path`, to turn "unknown key" into a fix. */
function allowedKeys(path: readonly PathSegment[]): string[] | undefined {
  let node: unknown = configSchema;
  const unwrap = (n: unknown): unknown => {
    let cur = n as { _zod?: { def: { type: string; innerType?: unknown; element?: unknown } } };
    while (cur?._zod && ['default', 'prefault', 'optional'].includes(cur._zod.def.type)) cur = cur._zod.def.innerType as typeof cur;
    return cur;
  };
  for (const seg of path) {
    const n = unwrap(node) as { _zod: { def: { type: string; element?: unknown; shape?: Record<string, unknown> } } };
    if (typeof seg === 'number') node = n._zod.def.element;
    else node = n._zod.def.shape?.[seg];
    if (!node) return undefined;
  }
  const obj = unwrap(node) as { _zod: { def: { shape?: Record<string, unknown> } } };
  return obj._zod.def.shape ? Object.keys(obj._zod.def.shape) : undefined;
}

function loopbackAddress(value: string, path: string, errors: ConfigError[]): SocketAddress | null {
  const hp = splitHostPort(value);
  const port = typeof hp === 'string' || hp.port === undefined ? undefined : parsePort(hp.port);
  if (typeof hp === 'string' || port === undefined || isIP(hp.host) === 0) {
    errors.push({ path, value, rule: 'must be "ip:port" (for example 127.0.0.1:15020)' });
    return null;
  }
  if (!(isIn127(hp.host) || hp.host === '::1')) {
    errors.push({ path, value, rule: 'must be a loopback address (127.0.0.0/8 or ::1); meshlet never exposes admin or debug endpoints' });
    return null;
  }
  return { ip: hp.host, port };
}

function normalize(raw: RawConfig, errors: ConfigError[]): MeshConfig {
  const admin = loopbackAddress(raw.proxy.adminAddress, 'proxy.adminAddress', errors) ?? { ip: '127.0.0.1', port: 15000 };
  const debug = loopbackAddress(raw.debug.address, 'debug.address', errors) ?? { ip: '127.0.0.1', port: 15020 };
  const reserved = reservedPorts({ proxy: { ...raw.proxy, admin }, debug });
  checkProxyPortsDistinct(raw, errors);

  const ports = normalizeIngress(raw, reserved, errors);
  const routes = normalizeEgress(raw, reserved, errors);
  const cidrs: Cidr[] = [];
  raw.egress.exclude.cidrs.forEach((c, i) => {
    const parsed = parseCidr(c);
    if (typeof parsed === 'string') errors.push({ path: `egress.exclude.cidrs[${i}]`, value: c, rule: `must be a CIDR like 198.18.0.0/15 or 2001:db8::/32: ${parsed}` });
    else cidrs.push(parsed);
  });
  return {
    certs: { ca: raw.certs.ca, certChain: raw.certs.certChain, key: raw.certs.key, expectedSans: raw.certs.expectedSans ?? [] },
    ingress: { mode: raw.ingress.mode, default: raw.ingress.default, ports },
    egress: { routes, capture: raw.egress.capture, exclude: { ports: raw.egress.exclude.ports, cidrs } },
    proxy: {
      uid: raw.proxy.uid,
      gid: raw.proxy.gid,
      admin,
      inboundPort: raw.proxy.inboundPort,
      outboundPort: raw.proxy.outboundPort,
      portlessEgressPort: raw.proxy.portlessEgressPort,
      xdsSocket: raw.proxy.xdsSocket,
      bootstrapPath: raw.proxy.bootstrapPath,
    },
    debug,
  };
}

function checkProxyPortsDistinct(raw: RawConfig, errors: ConfigError[]): void {
  const seen = new Map<number, string>();
  for (const key of ['inboundPort', 'outboundPort', 'portlessEgressPort'] as const) {
    const p = raw.proxy[key];
    const other = seen.get(p);
    if (other) errors.push({ path: `proxy.${key}`, value: p, rule: `must differ from ${other}` });
    seen.set(p, `proxy.${key}`);
  }
}

function checkReserved(port: number, path: string, reserved: Map<number, string>, errors: ConfigError[]): void {
  const owner = reserved.get(port);
  if (owner) errors.push({ path, value: port, rule: `port is reserved for the proxy (${owner}); pick another port or change ${owner}` });
}

function normalizeIngress(raw: RawConfig, reserved: Map<number, string>, errors: ConfigError[]): IngressPort[] {
  const names = new Map<string, number>();
  const ports = new Map<number, number>();
  const mapped = new Map<number, number>();
  return raw.ingress.ports.map((p, i) => {
    const at = `ingress.ports[${i}]`;
    const policy = p.policy ?? raw.ingress.default;
    firstUse(names, p.name, i, `${at}.name`, 'ingress.ports', 'name', errors);
    firstUse(ports, p.port, i, `${at}.port`, 'ingress.ports', 'port', errors);
    checkReserved(p.port, `${at}.port`, reserved, errors);
    if (p.mappedPort !== undefined) {
      if (raw.ingress.mode !== 'mapped') errors.push({ path: `${at}.mappedPort`, value: p.mappedPort, rule: 'only valid with ingress.mode "mapped"; remove it or set the mode' });
      if (policy === 'plaintext') errors.push({ path: `${at}.mappedPort`, value: p.mappedPort, rule: 'a plaintext port is not proxied, so it cannot be mapped; remove mappedPort or change the policy' });
      firstUse(mapped, p.mappedPort, i, `${at}.mappedPort`, 'ingress.ports', 'mappedPort', errors);
      checkReserved(p.mappedPort, `${at}.mappedPort`, reserved, errors);
    } else if (raw.ingress.mode === 'mapped' && policy !== 'plaintext') {
      errors.push({ path: `${at}.mappedPort`, value: undefined, rule: 'is required in mapped mode: the port Envoy listens on for this app port' });
    }
    if (p.allowedSans && policy !== 'mtls') errors.push({ path: `${at}.allowedSans`, value: p.allowedSans, rule: 'needs policy "mtls": only client certificates carry SANs to check' });
    const out: IngressPort = { name: p.name, port: p.port, policy, allowedSans: p.allowedSans ?? [] };
    if (p.mappedPort !== undefined) out.mappedPort = p.mappedPort;
    return out;
  });
}

function firstUse<K>(seen: Map<K, number>, key: K, i: number, path: string, list: string, what: string, errors: ConfigError[]): void {
  const first = seen.get(key);
  if (first !== undefined) errors.push({ path, value: key, rule: `duplicate ${what}: already used by ${list}[${first}]` });
  else seen.set(key, i);
}

function normalizeEgress(raw: RawConfig, reserved: Map<number, string>, errors: ConfigError[]): EgressRoute[] {
  const names = new Map<string, number>();
  const listens = new Map<string, number>();
  const routes: EgressRoute[] = [];
  raw.egress.routes.forEach((r, i) => {
    const at = `egress.routes[${i}]`;
    firstUse(names, r.name, i, `${at}.name`, 'egress.routes', 'name', errors);
    const listen = parseListen(r.listen, `${at}.listen`, reserved, errors);
    const remote = parseRemote(r.remote, `${at}.remote`, errors);
    if (!listen || !remote) return;
    // A portless route owns every port of its address.
    const key = `${listen.ip}:${listen.port ?? '*'}`;
    const clash = [...listens.entries()].find(([k]) => k === key || (k.startsWith(`${listen.ip}:`) && (k.endsWith(':*') || listen.port === undefined)));
    if (clash) errors.push({ path: `${at}.listen`, value: r.listen, rule: `overlaps egress.routes[${clash[1]}].listen; a route without a port takes every port of its address` });
    else listens.set(key, i);
    const route: EgressRoute = { name: r.name, listenIp: listen.ip, remoteHost: remote.host, expectedSans: r.expectedSans ?? [] };
    if (listen.port !== undefined) route.listenPort = listen.port;
    if (remote.port !== undefined) route.remotePort = remote.port;
    if (r.sni !== undefined) route.sni = r.sni;
    routes.push(route);
  });
  return routes;
}

function parseListen(value: string, path: string, reserved: Map<number, string>, errors: ConfigError[]): { ip: string; port?: number } | null {
  const hp = splitHostPort(value);
  if (typeof hp === 'string') {
    errors.push({ path, value, rule: `must be "127.x.y.z:port" or "127.x.y.z": ${hp}` });
    return null;
  }
  if (!isIn127(hp.host)) {
    errors.push({ path, value, rule: 'listen address must be an IPv4 address in 127.0.0.0/8, so only the pod can reach it' });
    return null;
  }
  if (hp.port === undefined) return { ip: hp.host };
  const port = parsePort(hp.port);
  if (port === undefined) {
    errors.push({ path, value, rule: 'port must be in 1-65535' });
    return null;
  }
  checkReserved(port, path, reserved, errors);
  return { ip: hp.host, port };
}

function parseRemote(value: string, path: string, errors: ConfigError[]): { host: string; port?: number } | null {
  const hp = splitHostPort(value);
  if (typeof hp === 'string') {
    errors.push({ path, value, rule: `must be "host:port" or "host": ${hp}` });
    return null;
  }
  if (isIP(hp.host) === 0 && !isDnsName(hp.host)) {
    errors.push({ path, value, rule: 'host must be a DNS name or an IP address' });
    return null;
  }
  if (hp.port === undefined) return { host: hp.host };
  const port = parsePort(hp.port);
  if (port === undefined) {
    errors.push({ path, value, rule: 'port must be in 1-65535' });
    return null;
  }
  return { host: hp.host, port };
}

export { formatPath };
