// Outbound rules in nat OUTPUT: portless egress routes (always) and capture of
// all outbound TCP (RFC step 3, `egress.capture`). REDIRECT keeps the original
// destination in conntrack, where Envoy's original_dst listener filter reads
// it through SO_ORIGINAL_DST.
import type { MeshConfig, SocketAddress } from '../config/model.js';
import { canonicalCidr } from './addr.js';
import { CHAINS } from './constants.js';
import { dportMatch, portGroups } from './multiport.js';
import type { Family, TableSpec } from './types.js';
const { isIP } = process.getBuiltinModule('node:net');

const OUT = CHAINS.outbound;

export function outboundTable(c: MeshConfig, family: Family): TableSpec | undefined {
  // Portless routes listen on 127/8, so they exist for IPv4 only.
  const portless = family === 4 ? c.egress.routes.filter((r) => r.listenPort === undefined) : [];
  if (!c.egress.capture && portless.length === 0) return undefined;

  const rules = [
    // The proxy's own connections are never captured, or they would loop.
    `-A ${OUT} -m owner --uid-owner ${c.proxy.uid} -j RETURN`,
  ];
  // Before the loopback exemption: these addresses live on lo.
  for (const r of portless) rules.push(`-A ${OUT} -d ${r.listenIp}/32 -p tcp -j REDIRECT --to-ports ${c.proxy.portlessEgressPort}`);
  if (c.egress.capture) {
    const loopback = family === 4 ? '127.0.0.0/8' : '::1/128';
    rules.push(`-A ${OUT} -o lo -j RETURN`, `-A ${OUT} -d ${loopback} -j RETURN`);
    // DNS over TCP only to the pod's resolvers; port 53 anywhere else is
    // captured like any other port (with DNS capture on, MESHLET_DNS has
    // already sent the app's port 53 to meshlet's server).
    for (const r of resolversOf(c, family)) rules.push(`-A ${OUT} -d ${hostCidr(r.ip, family)} -p tcp -m tcp --dport ${r.port} -j RETURN`);
    for (const g of portGroups(c.egress.exclude.ports)) rules.push(`-A ${OUT} -p tcp ${dportMatch(g)} -j RETURN`);
    const cidrs = [...new Set(c.egress.exclude.cidrs.filter((x) => x.family === family).map(canonicalCidr))];
    for (const cidr of cidrs) rules.push(`-A ${OUT} -d ${cidr} -j RETURN`);
    rules.push(`-A ${OUT} -p tcp -j REDIRECT --to-ports ${c.proxy.outboundPort}`);
  }
  return { table: 'nat', chains: [{ name: OUT, rules }], jumps: [`-A OUTPUT -p tcp -j ${OUT}`] };
}

/** The pod's resolvers of one family, in resolv.conf order. */
export function resolversOf(c: MeshConfig, family: Family): SocketAddress[] {
  return (c.resolvers ?? []).filter((r) => isIP(r.ip) === family);
}

export function hostCidr(ip: string, family: Family): string {
  return canonicalCidr({ family, text: ip, address: ip, prefix: family === 4 ? 32 : 128 });
}
