// Rules that span fields, checked on the raw input so they are reported even
// when another field is malformed. Each rule only looks at values that pass
// their own field rule, so no mistake is reported twice.
import type { ConfigError } from './errors.js';
import { isError, parseListen, parseLoopback } from './addresses.js';
import { parseDnsAddress, routeNameKey } from './dns-fields.js';
import { adminSocketPath, DEFAULTS, MAX_SOCKET_PATH, UPSTREAM_SOURCE_V4, UPSTREAM_SOURCE_V6 } from './constants.js';
import { PROXY_PORT_FIELDS, reservedPorts, type ProxyPortField } from './model.js';

type Obj = Record<string, unknown>;

const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.map(obj) : []);
const port = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535 ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const POLICIES = ['mtls', 'tls', 'plaintext'];

/**
 * Loopback addresses an egress route must not take: the iptables rules
 * redirect a route's address (every port of it, for a portless route) to
 * Envoy, so a route on the pod's own loopback would capture all of its
 * localhost TCP, and the upstream sources are where Envoy's hop to the app
 * comes from, which the rules let through.
 */
const RESERVED_LISTEN_IPS = new Map([
  ['127.0.0.1', "the pod's own loopback; a route there would redirect the pod's localhost traffic"],
  [UPSTREAM_SOURCE_V4, "Envoy's source address for connections to the app"],
  [UPSTREAM_SOURCE_V6, "Envoy's IPv6 source address for connections to the app"],
  ['::1', "the pod's own IPv6 loopback"],
]);

/** A proxy port as the config will have it: the default when absent, undefined when invalid. */
function proxyPort(proxy: Obj, field: ProxyPortField): number | undefined {
  return proxy[field] === undefined ? DEFAULTS.proxy[field] : port(proxy[field]);
}

const proxyPorts = (proxy: Obj): Record<ProxyPortField, number | undefined> =>
  Object.fromEntries(PROXY_PORT_FIELDS.map((f) => [f, proxyPort(proxy, f)])) as Record<ProxyPortField, number | undefined>;

/** The debug endpoint's address text (the default when absent) and its port when valid. */
function debugAddress(raw: Obj): { text: string | undefined; port: number | undefined } {
  const v = obj(raw['debug'])['address'];
  const text = v === undefined ? DEFAULTS.debugAddress : str(v);
  const p = text === undefined ? undefined : parseLoopback(text);
  return { text, port: p === undefined || isError(p) ? undefined : p.port };
}

function reserved(raw: Obj): Map<number, string> {
  const debug = debugAddress(raw).port;
  const dns = dnsPort(obj(raw['dns']));
  return reservedPorts({
    proxy: proxyPorts(obj(raw['proxy'])),
    debug: debug === undefined ? undefined : { port: debug },
    dns: dns === undefined ? undefined : { address: { port: dns } },
  });
}

/** The DNS server's port when the feature is on and the address is valid. */
function dnsPort(dns: Obj): number | undefined {
  if (dns['enabled'] !== true) return undefined;
  const s = dns['address'] === undefined ? DEFAULTS.dnsAddress : str(dns['address']);
  const p = s === undefined ? undefined : parseDnsAddress(s);
  return p === undefined || isError(p) ? undefined : p.port;
}

export function crossCheck(input: unknown): ConfigError[] {
  const raw = obj(input);
  const errors: ConfigError[] = [];
  const res = reserved(raw);
  checkProxyPortsDistinct(obj(raw['proxy']), errors);
  checkEndpointPorts(raw, errors);
  checkIngress(obj(raw['ingress']), res, errors, str(obj(raw['tls'])['keyExchange']) ?? 'pq-preferred');
  checkEgress(obj(raw['egress']), res, errors, obj(raw['dns'])['enabled'] === true);
  checkDns(raw, errors);
  checkMetrics(raw, res, errors);
  checkProbes(raw, res, errors);
  checkAdminSocket(obj(raw['proxy']), errors);
  return errors;
}

/** Envoy's admin socket goes next to the xDS socket, and a Unix socket path has a size limit. */
function checkAdminSocket(proxy: Obj, errors: ConfigError[]): void {
  const xds = str(proxy['xdsSocket']);
  if (xds === undefined || xds === '') return;
  const admin = adminSocketPath(xds);
  if (Buffer.byteLength(admin) > MAX_SOCKET_PATH)
    errors.push({
      path: 'proxy.xdsSocket',
      value: xds,
      rule:
        `Envoy's admin socket ${admin} would be ${Buffer.byteLength(admin)} bytes, over the ${MAX_SOCKET_PATH}-byte limit of a Unix socket path; pick a ` +
        `shorter directory`,
    });
}

/**
 * The probe port, like the metrics port, binds every address of the pod and
 * must stay plaintext, so it may not be any other port meshlet, Envoy, an
 * egress route or a listed app port uses. Each check names an app port and
 * the fields its kind needs.
 */
function checkProbes(raw: Obj, res: Map<number, string>, errors: ConfigError[]): void {
  if (raw['probes'] === undefined) return;
  const probes = obj(raw['probes']);
  const p = probes['port'] === undefined ? DEFAULTS.probesPort : port(probes['port']);
  const metrics = port(obj(raw['metrics'])['port']);
  if (p !== undefined) {
    const clash = (owner: string, fix = 'pick another port'): void => {
      errors.push({ path: 'probes.port', value: p, rule: `port is already used by ${owner}; ${fix}` });
    };
    const owner = res.get(p);
    if (owner) clash(owner);
    if (metrics === p) clash('metrics.port');
    list(obj(raw['ingress'])['ports']).forEach((q, i) => {
      if (port(q['port']) === p) clash(`ingress.ports[${i}].port`, 'the probe port is always plaintext; pick another port or remove that entry');
      if (port(q['mappedPort']) === p) clash(`ingress.ports[${i}].mappedPort`);
    });
    list(obj(raw['egress'])['routes']).forEach((r, i) => {
      const text = str(r['listen']);
      const listen = text === undefined ? undefined : parseListen(text);
      if (listen !== undefined && !isError(listen) && listen.port === p) clash(`egress.routes[${i}].listen`);
    });
  }
  const names = new Map<string, number>();
  list(probes['checks']).forEach((c, i) => {
    const at = `probes.checks[${i}]`;
    once(names, str(c['name']), i, `${at}.name`, 'name', 'probes.checks', errors);
    const kind = str(c['kind']);
    if (kind === 'http' && c['path'] === undefined)
      errors.push({ path: `${at}.path`, value: undefined, rule: 'is required for kind "http": the path the kubelet probed, e.g. /healthz' });
    if (kind !== undefined && kind !== 'http' && c['path'] !== undefined)
      errors.push({ path: `${at}.path`, value: c['path'], rule: `only valid with kind "http"; remove it or change the kind` });
    if (kind !== undefined && kind !== 'grpc' && c['service'] !== undefined)
      errors.push({ path: `${at}.service`, value: c['service'], rule: `only valid with kind "grpc"; remove it or change the kind` });
    const appPort = port(c['port']);
    if (appPort === undefined) return;
    const owner = res.get(appPort) ?? (appPort === p ? 'probes.port' : appPort === metrics ? 'metrics.port' : undefined);
    if (owner)
      errors.push({ path: `${at}.port`, value: appPort, rule: `is meshlet's or Envoy's own port (${owner}), not the app's; use the port the app listens on` });
  });
}

/**
 * The metrics listener binds every address of the pod on its port, so no
 * other listener of meshlet, Envoy or an egress route may use that port.
 */
function checkMetrics(raw: Obj, res: Map<number, string>, errors: ConfigError[]): void {
  const p = port(obj(raw['metrics'])['port']);
  if (p === undefined) return;
  const clash = (owner: string): void => {
    errors.push({ path: 'metrics.port', value: p, rule: `port is already used by ${owner}; pick another port` });
  };
  const owner = res.get(p);
  if (owner) clash(owner);
  list(obj(raw['ingress'])['ports']).forEach((q, i) => {
    if (port(q['mappedPort']) === p) clash(`ingress.ports[${i}].mappedPort`);
  });
  list(obj(raw['egress'])['routes']).forEach((r, i) => {
    const text = str(r['listen']);
    const listen = text === undefined ? undefined : parseListen(text);
    if (listen !== undefined && !isError(listen) && listen.port === p) clash(`egress.routes[${i}].listen`);
  });
}

/**
 * The DNS server binds TCP and UDP on loopback, so its port must differ from
 * every other port Envoy or meshlet listens on (Envoy's are on 0.0.0.0 and
 * would take the loopback address too).
 */
function checkDns(raw: Obj, errors: ConfigError[]): void {
  const dns = obj(raw['dns']);
  const p = dnsPort(dns);
  if (p === undefined) return;
  const value = dns['address'] ?? DEFAULTS.dnsAddress;
  const proxy = obj(raw['proxy']);
  for (const field of PROXY_PORT_FIELDS) {
    if (proxyPort(proxy, field) === p) errors.push({ path: 'dns.address', value, rule: `port is reserved for the proxy (proxy.${field}); pick another port` });
  }
  if (debugAddress(raw).port === p) errors.push({ path: 'dns.address', value, rule: 'port is already used by debug.address; pick another port' });
}

/**
 * Route names: each name belongs to one route (compared case-insensitively,
 * without a trailing dot), and names need the DNS server to answer them.
 */
function checkRouteNames(egress: Obj, dnsEnabled: boolean, errors: ConfigError[]): void {
  const seen = new Map<string, string>();
  list(egress['routes']).forEach((r, i) => {
    const names = r['names'];
    if (!Array.isArray(names)) return;
    if (!dnsEnabled && names.length > 0) {
      errors.push({ path: `egress.routes[${i}].names`, value: names, rule: 'needs dns.enabled: true; without the DNS server nothing answers these names' });
    }
    names.forEach((n, j) => {
      const key = routeNameKey(n);
      if (key === undefined) return;
      const at = `egress.routes[${i}].names[${j}]`;
      const first = seen.get(key);
      if (first !== undefined) errors.push({ path: at, value: n, rule: `duplicate name: already used by ${first}; a name resolves to one route` });
      else seen.set(key, at);
    });
  });
}

function checkProxyPortsDistinct(proxy: Obj, errors: ConfigError[]): void {
  const seen = new Map<number, string>();
  for (const key of PROXY_PORT_FIELDS) {
    const p = proxyPort(proxy, key);
    if (p === undefined) continue;
    const other = seen.get(p);
    if (other) errors.push({ path: `proxy.${key}`, value: p, rule: `must differ from ${other}` });
    seen.set(p, `proxy.${key}`);
  }
}

/**
 * meshlet's debug endpoint binds one loopback port. Envoy's proxy listeners
 * bind theirs on every address, so an endpoint on the same port would fail to
 * bind. (Envoy's admin is a Unix socket, so it takes no port.)
 */
function checkEndpointPorts(raw: Obj, errors: ConfigError[]): void {
  const proxy = obj(raw['proxy']);
  const debug = debugAddress(raw);
  if (debug.port === undefined) return;
  const clash = PROXY_PORT_FIELDS.find((f) => proxyPort(proxy, f) === debug.port);
  if (clash) errors.push({ path: 'debug.address', value: debug.text, rule: `port ${debug.port} is already used by proxy.${clash}; pick another port` });
}

function isReserved(p: number, path: string, res: Map<number, string>, errors: ConfigError[]): void {
  const owner = res.get(p);
  if (owner) errors.push({ path, value: p, rule: `port is reserved for the proxy (${owner}); pick another port or change ${owner}` });
}

function once<K>(seen: Map<K, number>, key: K | undefined, i: number, path: string, what: string, listName: string, errors: ConfigError[]): void {
  if (key === undefined) return;
  const first = seen.get(key);
  if (first !== undefined) errors.push({ path, value: key, rule: `duplicate ${what}: already used by ${listName}[${first}]` });
  else seen.set(key, i);
}

function checkIngress(ingress: Obj, res: Map<number, string>, errors: ConfigError[], podKeyExchange: string): void {
  const mode = str(ingress['mode']) ?? 'tproxy';
  const def = str(ingress['default']) ?? 'mtls';
  const names = new Map<string, number>();
  const ports = new Map<number, number>();
  const mapped = new Map<number, number>();
  list(ingress['ports']).forEach((p, i) => {
    const at = `ingress.ports[${i}]`;
    const policy = p['policy'] === undefined ? def : str(p['policy']);
    const appPort = port(p['port']);
    const mappedPort = port(p['mappedPort']);
    once(names, str(p['name']), i, `${at}.name`, 'name', 'ingress.ports', errors);
    once(ports, appPort, i, `${at}.port`, 'port', 'ingress.ports', errors);
    if (appPort !== undefined) isReserved(appPort, `${at}.port`, res, errors);
    if (mappedPort !== undefined) {
      if (mode !== 'mapped')
        errors.push({ path: `${at}.mappedPort`, value: mappedPort, rule: 'only valid with ingress.mode "mapped"; remove it or set the mode' });
      if (policy === 'plaintext')
        errors.push({
          path: `${at}.mappedPort`,
          value: mappedPort,
          rule: 'a plaintext port is not proxied, so it cannot be mapped; remove mappedPort or change the policy',
        });
      once(mapped, mappedPort, i, `${at}.mappedPort`, 'mappedPort', 'ingress.ports', errors);
      isReserved(mappedPort, `${at}.mappedPort`, res, errors);
    } else if (mode === 'mapped' && policy !== 'plaintext' && p['mappedPort'] === undefined && POLICIES.includes(policy ?? '')) {
      errors.push({ path: `${at}.mappedPort`, value: undefined, rule: 'is required in mapped mode: the port Envoy listens on for this app port' });
    }
    if (p['allowedSans'] !== undefined && policy !== 'mtls' && POLICIES.includes(policy ?? '')) {
      errors.push({ path: `${at}.allowedSans`, value: p['allowedSans'], rule: 'needs policy "mtls": only client certificates carry SANs to check' });
    }
    // Under TLS 1.2 a client certificate crosses in clear; mesh clients all speak 1.3.
    if (p['allowTls12'] === true && policy !== 'tls' && POLICIES.includes(policy ?? '')) {
      errors.push({
        path: `${at}.allowTls12`,
        value: true,
        rule:
          `only valid with policy "tls" (this port is ${policy}): mtls is TLS 1.3 only, so client certificates never cross in clear; remove allowTls12 ` +
          `or set policy "tls"`,
      });
    }
    if (p['keyExchange'] !== undefined && policy === 'plaintext') {
      errors.push({
        path: `${at}.keyExchange`,
        value: p['keyExchange'],
        rule: 'a plaintext port has no key exchange; remove keyExchange or set policy "mtls" or "tls"',
      });
    }
    // The post-quantum group exists only in TLS 1.3: a 1.2 client would be refused anyway, so the pair is a contradiction.
    const keyExchange = p['keyExchange'] === undefined ? podKeyExchange : str(p['keyExchange']);
    if (p['allowTls12'] === true && policy === 'tls' && keyExchange === 'pq-required') {
      const from = p['keyExchange'] === undefined ? ' (from tls.keyExchange)' : '';
      errors.push({
        path: `${at}.allowTls12`,
        value: true,
        rule:
          `cannot be combined with keyExchange pq-required${from}: TLS 1.2 has no post-quantum key exchange; remove allowTls12 or set this port's ` +
          `keyExchange to pq-preferred`,
      });
    }
  });
  // A mapped port must not be another entry's app port, or Envoy and the app would both bind it.
  for (const [m, i] of mapped) {
    const j = ports.get(m);
    if (j !== undefined)
      errors.push({
        path: `ingress.ports[${i}].mappedPort`,
        value: m,
        rule: `is the app port of ingress.ports[${j}]; Envoy and the app cannot both listen on it`,
      });
  }
}

function checkEgress(egress: Obj, res: Map<number, string>, errors: ConfigError[], dnsEnabled: boolean): void {
  const names = new Map<string, number>();
  // Per listen address: the route that owns every port (portless), and the route on each port. Maps, so a long list stays linear.
  const byIp = new Map<string, { portless?: number; ports: Map<number, number> }>();
  list(egress['routes']).forEach((r, i) => {
    const at = `egress.routes[${i}]`;
    once(names, str(r['name']), i, `${at}.name`, 'name', 'egress.routes', errors);
    const text = str(r['listen']);
    const listen = text === undefined ? undefined : parseListen(text);
    if (listen === undefined || isError(listen)) return;
    if (RESERVED_LISTEN_IPS.has(listen.ip)) {
      errors.push({
        path: `${at}.listen`,
        value: text,
        rule: `${listen.ip} is reserved: ${RESERVED_LISTEN_IPS.get(listen.ip)}; pick another 127.x.y.z address (for example 127.137.0.1)`,
      });
      return;
    }
    if (listen.port !== undefined) isReserved(listen.port, `${at}.listen`, res, errors);
    // A portless route owns every port of its address.
    let slot = byIp.get(listen.ip);
    if (!slot) byIp.set(listen.ip, (slot = { ports: new Map() }));
    const clash = slot.portless ?? (listen.port === undefined ? slot.ports.values().next().value : slot.ports.get(listen.port));
    if (clash !== undefined)
      errors.push({
        path: `${at}.listen`,
        value: text,
        rule: `overlaps egress.routes[${clash}].listen; a route without a port takes every port of its address`,
      });
    else if (listen.port === undefined) slot.portless = i;
    else slot.ports.set(listen.port, i);
  });
  checkRouteNames(egress, dnsEnabled, errors);
}
