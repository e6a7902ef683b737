// The validated, normalized config every other module consumes. Addresses are
// parsed once here, so builders and the rule generator never parse strings.
import type { KeyExchange, Policy, ProbeKind } from './schema.js';
import type { Cidr } from './net.js';

export type { KeyExchange, Policy, ProbeKind } from './schema.js';
export type { Cidr } from './net.js';

export interface IngressPort {
  name: string;
  port: number;
  policy: Policy;
  /** mapped mode: the port Envoy listens on and forwards to `port`. */
  mappedPort?: number;
  allowedSans: string[];
  /** `tls` ports only: TLS 1.2 accepted from outside clients (default: 1.3 only). */
  allowTls12: boolean;
  /** The port's own key exchange; absent: tls.keyExchange (see keyExchangeOf). */
  keyExchange?: KeyExchange;
}

export interface EgressRoute {
  name: string;
  listenIp: string;
  /** Absent: every port on listenIp, kept as dialled. */
  listenPort?: number;
  remoteHost: string;
  /** Absent: the port the app dialled. */
  remotePort?: number;
  sni?: string;
  expectedSans: string[];
  /** Names meshlet's DNS server answers with listenIp (lowercase, no trailing dot). Absent when none. */
  names?: string[];
  /** The route's own key exchange; absent: tls.keyExchange (see keyExchangeOf). */
  keyExchange?: KeyExchange;
}

export interface SocketAddress {
  ip: string;
  port: number;
}

/** meshlet's DNS server (docs/dns.md). */
export interface DnsConfig {
  /** IPv4 loopback; the IPv6 side is [::1] on the same port. */
  address: SocketAddress;
  ttl: number;
  /** Empty: the nameservers of resolvConf. */
  upstreams: SocketAddress[];
  resolvConf: string;
  /** The uid `meshlet run` runs as (default: proxy.uid); exempt from DNS redirection, like proxy.uid. */
  meshletUid: number;
}

/** One app probe served at /app-health/<name>. */
export interface AppProbe {
  name: string;
  kind: ProbeKind;
  /** The app's port, dialled from inside the pod. */
  port: number;
  /** http only. */
  path?: string;
  /** grpc only; '' asks about the whole server. */
  service?: string;
  timeoutSeconds: number;
}

export interface MeshConfig {
  certs: { ca: string; certChain: string; key: string; expectedSans: string[] };
  /** The pod-wide key exchange: ports and routes without their own, unlisted ports, capture. */
  tls: { keyExchange: KeyExchange };
  ingress: { mode: 'tproxy' | 'mapped' | 'disabled'; default: Policy; ports: IngressPort[] };
  egress: {
    routes: EgressRoute[];
    capture: boolean;
    exclude: { ports: number[]; cidrs: Cidr[] };
    /** UDP, ICMP and every other non-TCP protocol leaving the pod: dropped, or let through in clear. */
    nonTcp: 'drop' | 'allow';
  };
  proxy: {
    uid: number;
    gid: number;
    inboundPort: number;
    outboundPort: number;
    portlessEgressPort: number;
    xdsSocket: string;
    bootstrapPath: string;
  };
  debug: SocketAddress;
  /** The read-only public listener (metrics and readiness), when opted in. */
  metrics?: { port: number };
  /** The app-health listener, when a `probes` section is present. */
  probes?: { port: number; checks: AppProbe[] };
  /** Envoy writes one JSON line per connection to stdout. */
  accessLog: boolean;
  /** Present only when `dns.enabled`. */
  dns?: DnsConfig;
  /** The resolv.conf whose nameservers are the pod's resolvers (dns.resolvConf). */
  resolvConf: string;
  /**
   * The pod's resolvers, read from resolvConf when the config is loaded from
   * a file or the environment; the only hosts DNS may reach in clear.
   * Absent (a config validated without reading the file): no resolver.
   */
  resolvers?: SocketAddress[];
}

/** The key exchange a port or route uses: its own, else the pod's. */
export function keyExchangeOf(c: Pick<MeshConfig, 'tls'>, item?: { keyExchange?: KeyExchange | undefined }): KeyExchange {
  return item?.keyExchange ?? c.tls.keyExchange;
}

/** The proxy's own listener ports: the rules send traffic to them, Envoy listens on them. */
export const PROXY_PORT_FIELDS = ['inboundPort', 'outboundPort', 'portlessEgressPort'] as const;
export type ProxyPortField = (typeof PROXY_PORT_FIELDS)[number];

/**
 * What reservedPorts reads. The cross-field checks pass raw input, where a
 * field that failed its own rule is undefined and reserves nothing.
 */
export interface PortOwners {
  proxy: Partial<Record<ProxyPortField, number | undefined>>;
  debug?: { port: number } | undefined;
  dns?: { address: { port: number } } | undefined;
}

/** Ports Envoy or meshlet listen on inside the pod; no app port may use them. */
export function reservedPorts(c: PortOwners): Map<number, string> {
  const m = new Map<number, string>();
  for (const field of PROXY_PORT_FIELDS) {
    const p = c.proxy[field];
    if (p !== undefined) m.set(p, `proxy.${field}`);
  }
  if (c.debug) m.set(c.debug.port, 'debug.address');
  if (c.dns) m.set(c.dns.address.port, 'dns.address');
  return m;
}
