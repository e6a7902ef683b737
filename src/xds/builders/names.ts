// Every Envoy resource name meshlet emits. Names derive only from config
// identifiers (port numbers, route names), never from order or content, so an
// unrelated edit never renames (and so never drains) a resource.
import type { EgressRoute, IngressPort } from '../../config/model.js';

export const SECRET = {
  /** The workload certificate chain and key (tls_certificate). */
  workload: 'meshlet-workload',
  /** The mesh CA bundle (validation_context). */
  meshCa: 'meshlet-mesh-ca',
} as const;

export const LISTENER = {
  /** tproxy mode: every redirected inbound connection. */
  inbound: 'meshlet-inbound',
  /** capture mode: every redirected outbound connection. */
  outbound: 'meshlet-outbound',
  /** Every portless egress route, told apart by original destination. */
  portless: 'meshlet-portless',
  mapped: (p: Pick<IngressPort, 'name'>): string => `meshlet-mapped-${p.name}`,
  route: (r: Pick<EgressRoute, 'name'>): string => `meshlet-route-${r.name}`,
} as const;

export const CLUSTER = {
  /** Empty STATIC cluster: connections routed here are closed at once. */
  blackhole: 'meshlet-blackhole',
  /** tproxy mode: the app at the connection's original destination. */
  inboundApp: 'meshlet-inbound-app',
  /** capture mode: the original destination, wrapped in mTLS. */
  outboundMtls: 'meshlet-outbound-mtls',
  /** capture mode: excluded destinations, untouched plaintext. */
  passthrough: 'meshlet-passthrough',
  /** mapped mode: the app port on loopback. */
  mappedApp: (p: Pick<IngressPort, 'port'>): string => `meshlet-app-${p.port}`,
  route: (r: Pick<EgressRoute, 'name'>): string => `meshlet-route-${r.name}`,
  /** The bootstrap's static cluster for the ADS stream. */
  xds: 'meshlet-xds',
} as const;

/** The dynamic-forward-proxy DNS cache shared by portless routes (one config, one name). */
export const DNS_CACHE = 'meshlet-dns';
