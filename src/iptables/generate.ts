// The pure generator: validated config -> rules for each IP family. No I/O;
// the same config always yields the same rules, which the golden files pin.
import type { MeshConfig } from '../config/model.js';
import { CHAINS, ICMPV6_LINK_TYPES, MARK_HEX, ROUTE_TABLE, RULE_PRIORITY } from './constants.js';
import { UPSTREAM_SOURCE_V6 } from '../config/constants.js';
import { dnsNatChain, dnsRawTable } from './dns.js';
import { mappedInputRules, tproxyTable } from './inbound.js';
import { hostCidr, outboundTable, resolversOf } from './outbound.js';
import type { ChainSpec, Family, FamilyRules, GeneratedRules, TableSpec } from './types.js';

export function generateRules(c: MeshConfig): GeneratedRules {
  return { v4: familyRules(c, 4), v6: familyRules(c, 6) };
}

export function familyRules(c: MeshConfig, family: Family): FamilyRules {
  const raw = dnsRawTable(c);
  const mangle = c.ingress.mode === 'tproxy' ? tproxyTable(c, family) : undefined;
  const nat = natTable(c, family);
  const filter = filterTable(c, family, mangle !== undefined);
  const tables = [raw, mangle, nat, filter].filter((t): t is TableSpec => t !== undefined);
  const out: FamilyRules = { family, tables };
  if (mangle) {
    out.routing = { family, mark: MARK_HEX, table: ROUTE_TABLE, priority: RULE_PRIORITY };
    if (family === 6) out.routing.loopbackAddress = `${UPSTREAM_SOURCE_V6}/128`;
  }
  return out;
}

/**
 * DNS capture first, so the app's port 53 reaches meshlet's server wherever
 * it was addressed; then outbound capture and portless routes.
 */
function natTable(c: MeshConfig, family: Family): TableSpec | undefined {
  const outbound = outboundTable(c, family);
  const dns = dnsNatChain(c, family);
  if (!dns) return outbound;
  return {
    table: 'nat',
    chains: [dns.chain, ...(outbound?.chains ?? [])],
    jumps: [...dns.jumps, ...(outbound?.jumps ?? [])],
  };
}

function filterTable(c: MeshConfig, family: Family, tproxy: boolean): TableSpec | undefined {
  const chains: ChainSpec[] = [];
  const jumps: string[] = [];
  const mapped = c.ingress.mode === 'mapped' ? mappedInputRules(c) : undefined;
  if (mapped) {
    chains.push({ name: mapped.chain, rules: mapped.rules });
    jumps.push(mapped.jump);
  }
  const guard = loopGuard(c, family, tproxy);
  if (guard) {
    chains.push(guard);
    jumps.push(`-A OUTPUT -p tcp -j ${guard.name}`);
  }
  const egress = nonTcpEgress(c, family);
  if (egress) {
    chains.push(egress);
    jumps.push(`-A OUTPUT ! -p tcp -j ${egress.name}`);
  }
  return chains.length === 0 ? undefined : { table: 'filter', chains, jumps };
}

/**
 * The proxy may never dial one of its own original-destination listeners on a
 * local address. Envoy blackholes connections aimed at those ports (Contrast
 * bug #1142); this makes the kernel refuse the next hop too, so a missing
 * blackhole ends in a reset instead of a loop.
 */
function loopGuard(c: MeshConfig, family: Family, tproxy: boolean): ChainSpec | undefined {
  const ports: number[] = [];
  if (tproxy) ports.push(c.proxy.inboundPort);
  if (c.egress.capture) ports.push(c.proxy.outboundPort);
  if (family === 4 && c.egress.routes.some((r) => r.listenPort === undefined)) ports.push(c.proxy.portlessEgressPort);
  if (ports.length === 0) return undefined;
  const name = CHAINS.loopGuard;
  const dports = ports.length === 1 ? `-m tcp --dport ${ports[0]}` : `-m multiport --dports ${ports.join(',')}`;
  return {
    name,
    rules: [`-A ${name} -p tcp -m owner --uid-owner ${c.proxy.uid} -m addrtype --dst-type LOCAL ${dports} -j REJECT --reject-with tcp-reset`],
  };
}

/**
 * `egress.nonTcp: drop`: the mesh carries TCP only, so UDP, ICMP and the rest
 * would leave the pod in clear. What still passes is what the pod cannot do
 * without: loopback, the proxy uid (the one trust boundary), DNS to the
 * resolvers, ICMP errors about existing flows (path MTU discovery) and, for
 * IPv6, neighbour discovery and MLD reports.
 */
function nonTcpEgress(c: MeshConfig, family: Family): ChainSpec | undefined {
  if (c.egress.nonTcp !== 'drop') return undefined;
  const name = CHAINS.egress;
  // A packet DNATed to loopback (the app's DNS to meshlet's server) still
  // shows its original output interface here, so loopback is matched by
  // destination as well as by interface.
  const loopback = family === 4 ? '127.0.0.0/8' : '::1/128';
  const rules = [
    `-A ${name} -o lo -j RETURN`,
    `-A ${name} -d ${loopback} -j RETURN`,
    `-A ${name} -m owner --uid-owner ${c.proxy.uid} -j RETURN`,
    `-A ${name} -m conntrack --ctstate RELATED -j RETURN`,
  ];
  for (const r of resolversOf(c, family)) rules.push(`-A ${name} -d ${hostCidr(r.ip, family)} -p udp -m udp --dport ${r.port} -j RETURN`);
  if (family === 6) for (const t of ICMPV6_LINK_TYPES) rules.push(`-A ${name} -p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j RETURN`);
  rules.push(`-A ${name} -j DROP`);
  return { name, rules };
}
