// The validated, normalized config every other module consumes. Addresses are
// parsed once here, so builders and the rule generator never parse strings.
import type { Policy } from './schema.js';
import type { Cidr } from './net.js';

export type { Policy } from './schema.js';
export type { Cidr } from './net.js';

export interface IngressPort {
  name: string;
  port: number;
  policy: Policy;
  /** mapped mode: the port Envoy listens on and forwards to `port`. */
  mappedPort?: number;
  allowedSans: string[];
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
}

export interface SocketAddress {
  ip: string;
  port: number;
}

/** meshlet's DNS server (issue #9, docs/dns.md). */
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

export interface MeshConfig {
  certs: { ca: string; certChain: string; key: string; expectedSans: string[] };
  ingress: { mode: 'tproxy' | 'mapped' | 'disabled'; default: Policy; ports: IngressPort[] };
  egress: { routes: EgressRoute[]; capture: boolean; exclude: { ports: number[]; cidrs: Cidr[] } };
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
  /** Present only when `dns.enabled`. */
  dns?: DnsConfig;
}

/** Ports Envoy or meshlet listen on inside the pod; no app port may use them. */
export function reservedPorts(c: Pick<MeshConfig, 'proxy' | 'debug'> & { dns?: DnsConfig | undefined }): Map<number, string> {
  const m = new Map<number, string>([
    [c.proxy.inboundPort, 'proxy.inboundPort'],
    [c.proxy.outboundPort, 'proxy.outboundPort'],
    [c.proxy.portlessEgressPort, 'proxy.portlessEgressPort'],
    [c.debug.port, 'debug.address'],
  ]);
  if (c.dns) m.set(c.dns.address.port, 'dns.address');
  return m;
}
