// Field rules come from the zod schema; rules across fields (duplicates,
// reserved ports, mapped-mode rules) run in cross-checks.ts on the raw input,
// so they are reported even when some other field is malformed. A user sees
// every mistake in one pass.
//
// A config is first checked by the validator generated from the schema
// (validate-fast.ts), which needs no zod; only what it does not accept, or
// what the cross-checks refuse, goes to zod (loaded then), so every error
// message is zod's and a valid config never loads it.
import type { z } from 'zod';
import { schemas, type RawConfig } from './schema.js';
import { formatPath, valueAt, type ConfigError, type PathSegment } from './errors.js';
import { must, parseCidrField, parseListen, parseLoopback, parseRemote } from './addresses.js';
import { parseDnsAddress, parseRouteName, parseUpstream } from './dns-fields.js';
import { crossCheck } from './cross-checks.js';
import { validateFast } from './validate-fast.js';
import type { AppProbe, DnsConfig, EgressRoute, IngressPort, MeshConfig } from './model.js';

export type ValidationResult = { ok: true; config: MeshConfig } | { ok: false; errors: ConfigError[] };

export function validateConfig(input: unknown): ValidationResult {
  const cross = crossCheck(input ?? {});
  const quick = validateFast(input ?? {});
  if (quick !== undefined && cross.length === 0) return { ok: true, config: normalize(quick) };
  const parsed = schemas().configSchema.safeParse(input ?? {});
  const errors = parsed.success ? [] : zodErrors(input, parsed.error.issues);
  const seen = new Set(errors.map((e) => e.path));
  // A loop, not push(...spread): a list of 200,000 entries can yield as many errors, more than a call takes arguments.
  for (const e of cross) if (!seen.has(e.path)) errors.push(e);
  if (!parsed.success || errors.length > 0) return { ok: false, errors };
  return { ok: true, config: normalize(parsed.data) };
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

type ZodNode = { _zod?: { def: { type: string; innerType?: ZodNode; element?: ZodNode; shape?: Record<string, ZodNode> } } } | undefined;

/** The keys the schema allows at `path`, to turn "unknown key" into a fix. */
function allowedKeys(path: readonly PathSegment[]): string[] | undefined {
  const unwrap = (n: ZodNode): ZodNode => {
    let cur = n;
    while (cur?._zod && ['default', 'prefault', 'optional'].includes(cur._zod.def.type)) cur = cur._zod.def.innerType;
    return cur;
  };
  let node = schemas().configSchema as unknown as ZodNode;
  for (const seg of path) {
    const def: NonNullable<NonNullable<ZodNode>['_zod']>['def'] | undefined = unwrap(node)?._zod?.def;
    node = typeof seg === 'number' ? def?.element : def?.shape?.[seg];
  }
  const shape = unwrap(node)?._zod?.def.shape;
  return shape ? Object.keys(shape) : undefined;
}

/** Maps a fully validated raw config to the model. Cannot fail. */
function normalize(raw: RawConfig): MeshConfig {
  const ports = raw.ingress.ports.map((p): IngressPort => {
    const out: IngressPort = {
      name: p.name,
      port: p.port,
      policy: p.policy ?? raw.ingress.default,
      allowedSans: p.allowedSans ?? [],
      allowTls12: p.allowTls12 ?? false,
    };
    if (p.keyExchange !== undefined) out.keyExchange = p.keyExchange;
    if (p.mappedPort !== undefined) out.mappedPort = p.mappedPort;
    return out;
  });
  // The metrics port is plaintext from outside unless it is listed: in tproxy
  // mode an unlisted port would be intercepted, and in mapped mode dropped, so
  // it becomes a plaintext port.
  const metricsPort = raw.metrics?.port;
  if (metricsPort !== undefined && raw.ingress.mode !== 'disabled' && raw.ingress.default !== 'plaintext' && !ports.some((p) => p.port === metricsPort)) {
    ports.push({ name: 'meshlet-metrics', port: metricsPort, policy: 'plaintext', allowedSans: [], allowTls12: false });
  }
  // The probe port answers the kubelet, which has no mesh certificate: plaintext, like the metrics port.
  const probePort = raw.probes?.port;
  if (probePort !== undefined && raw.ingress.mode !== 'disabled' && raw.ingress.default !== 'plaintext' && !ports.some((p) => p.port === probePort)) {
    ports.push({ name: 'meshlet-probes', port: probePort, policy: 'plaintext', allowedSans: [], allowTls12: false });
  }
  const routes = raw.egress.routes.map((r): EgressRoute => {
    const listen = must(parseListen(r.listen));
    const remote = must(parseRemote(r.remote));
    const route: EgressRoute = { name: r.name, listenIp: listen.ip, remoteHost: remote.host, expectedSans: r.expectedSans ?? [] };
    if (r.keyExchange !== undefined) route.keyExchange = r.keyExchange;
    if (listen.port !== undefined) route.listenPort = listen.port;
    if (remote.port !== undefined) route.remotePort = remote.port;
    if (r.sni !== undefined) route.sni = r.sni;
    if (r.names !== undefined && r.names.length > 0) route.names = r.names.map((n) => must(parseRouteName(n)));
    return route;
  });
  const config: MeshConfig = {
    certs: { ca: raw.certs.ca, certChain: raw.certs.certChain, key: raw.certs.key, expectedSans: raw.certs.expectedSans ?? [] },
    tls: { keyExchange: raw.tls.keyExchange },
    ingress: { mode: raw.ingress.mode, default: raw.ingress.default, ports },
    egress: {
      routes,
      capture: raw.egress.capture,
      exclude: { ports: raw.egress.exclude.ports, cidrs: raw.egress.exclude.cidrs.map((c) => must(parseCidrField(c))) },
      nonTcp: raw.egress.nonTcp ?? (raw.egress.capture ? 'drop' : 'allow'),
    },
    proxy: {
      uid: raw.proxy.uid,
      gid: raw.proxy.gid,
      inboundPort: raw.proxy.inboundPort,
      outboundPort: raw.proxy.outboundPort,
      portlessEgressPort: raw.proxy.portlessEgressPort,
      xdsSocket: raw.proxy.xdsSocket,
      bootstrapPath: raw.proxy.bootstrapPath,
    },
    debug: must(parseLoopback(raw.debug.address)),
    resolvConf: raw.dns.resolvConf,
    accessLog: raw.accessLog,
  };
  if (metricsPort !== undefined) config.metrics = { port: metricsPort };
  if (raw.probes) config.probes = { port: raw.probes.port, checks: raw.probes.checks.map(normalizeProbe) };
  if (raw.dns.enabled) config.dns = normalizeDns(raw.dns, raw.proxy.uid);
  return config;
}

function normalizeProbe(p: NonNullable<RawConfig['probes']>['checks'][number]): AppProbe {
  const out: AppProbe = { name: p.name, kind: p.kind, port: p.port, timeoutSeconds: p.timeoutSeconds };
  if (p.path !== undefined) out.path = p.path;
  if (p.kind === 'grpc') out.service = p.service ?? '';
  return out;
}

function normalizeDns(d: RawConfig['dns'], proxyUid: number): DnsConfig {
  return {
    address: must(parseDnsAddress(d.address)),
    ttl: d.ttl,
    upstreams: d.upstreams.map((u) => must(parseUpstream(u))),
    resolvConf: d.resolvConf,
    meshletUid: d.meshletUid ?? proxyUid,
  };
}
