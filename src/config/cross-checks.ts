// Rules that span fields, checked on the raw input so they are reported even
// when another field is malformed. Each rule only looks at values that pass
// their own field rule, so no mistake is reported twice.
import type { ConfigError } from './errors.js';
import { isError, parseListen, parseLoopback } from './addresses.js';

type Obj = Record<string, unknown>;

const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.map(obj) : []);
const port = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535 ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const POLICIES = ['mtls', 'tls', 'plaintext'];

function reserved(raw: Obj): Map<number, string> {
  const proxy = obj(raw['proxy']);
  const m = new Map<number, string>();
  const add = (p: number | undefined, fallback: number, owner: string): void => {
    m.set(p ?? fallback, owner);
  };
  add(port(proxy['inboundPort']), 15006, 'proxy.inboundPort');
  add(port(proxy['outboundPort']), 15001, 'proxy.outboundPort');
  add(port(proxy['portlessEgressPort']), 15002, 'proxy.portlessEgressPort');
  const addr = (v: unknown, fallback: number): number | undefined => {
    const s = str(v);
    if (s === undefined) return v === undefined ? fallback : undefined;
    const p = parseLoopback(s);
    return isError(p) ? undefined : p.port;
  };
  const admin = addr(proxy['adminAddress'], 15000);
  if (admin !== undefined) m.set(admin, 'proxy.adminAddress');
  const debug = addr(obj(raw['debug'])['address'], 15020);
  if (debug !== undefined) m.set(debug, 'debug.address');
  return m;
}

export function crossCheck(input: unknown): ConfigError[] {
  const raw = obj(input);
  const errors: ConfigError[] = [];
  const res = reserved(raw);
  checkProxyPortsDistinct(obj(raw['proxy']), errors);
  checkIngress(obj(raw['ingress']), res, errors);
  checkEgress(obj(raw['egress']), res, errors);
  return errors;
}

function checkProxyPortsDistinct(proxy: Obj, errors: ConfigError[]): void {
  const seen = new Map<number, string>();
  const defaults = { inboundPort: 15006, outboundPort: 15001, portlessEgressPort: 15002 };
  for (const [key, fallback] of Object.entries(defaults)) {
    const p = proxy[key] === undefined ? fallback : port(proxy[key]);
    if (p === undefined) continue;
    const other = seen.get(p);
    if (other) errors.push({ path: `proxy.${key}`, value: p, rule: `must differ from ${other}` });
    seen.set(p, `proxy.${key}`);
  }
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

function checkIngress(ingress: Obj, res: Map<number, string>, errors: ConfigError[]): void {
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
      if (mode !== 'mapped') errors.push({ path: `${at}.mappedPort`, value: mappedPort, rule: 'only valid with ingress.mode "mapped"; remove it or set the mode' });
      if (policy === 'plaintext') errors.push({ path: `${at}.mappedPort`, value: mappedPort, rule: 'a plaintext port is not proxied, so it cannot be mapped; remove mappedPort or change the policy' });
      once(mapped, mappedPort, i, `${at}.mappedPort`, 'mappedPort', 'ingress.ports', errors);
      isReserved(mappedPort, `${at}.mappedPort`, res, errors);
    } else if (mode === 'mapped' && policy !== 'plaintext' && p['mappedPort'] === undefined && POLICIES.includes(policy ?? '')) {
      errors.push({ path: `${at}.mappedPort`, value: undefined, rule: 'is required in mapped mode: the port Envoy listens on for this app port' });
    }
    if (p['allowedSans'] !== undefined && policy !== 'mtls' && POLICIES.includes(policy ?? '')) {
      errors.push({ path: `${at}.allowedSans`, value: p['allowedSans'], rule: 'needs policy "mtls": only client certificates carry SANs to check' });
    }
  });
  // A mapped port must not be another entry's app port, or Envoy and the app would both bind it.
  for (const [m, i] of mapped) {
    const j = ports.get(m);
    if (j !== undefined) errors.push({ path: `ingress.ports[${i}].mappedPort`, value: m, rule: `is the app port of ingress.ports[${j}]; Envoy and the app cannot both listen on it` });
  }
}

function checkEgress(egress: Obj, res: Map<number, string>, errors: ConfigError[]): void {
  const names = new Map<string, number>();
  const listens: { ip: string; port?: number; i: number }[] = [];
  list(egress['routes']).forEach((r, i) => {
    const at = `egress.routes[${i}]`;
    once(names, str(r['name']), i, `${at}.name`, 'name', 'egress.routes', errors);
    const text = str(r['listen']);
    const listen = text === undefined ? undefined : parseListen(text);
    if (listen === undefined || isError(listen)) return;
    if (listen.port !== undefined) isReserved(listen.port, `${at}.listen`, res, errors);
    // A portless route owns every port of its address.
    const clash = listens.find((l) => l.ip === listen.ip && (l.port === undefined || listen.port === undefined || l.port === listen.port));
    if (clash) errors.push({ path: `${at}.listen`, value: text, rule: `overlaps egress.routes[${clash.i}].listen; a route without a port takes every port of its address` });
    else listens.push({ ...listen, i });
  });
}
