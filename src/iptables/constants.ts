// Names and numbers meshlet owns in the pod's network namespace. Everything
// meshlet installs is recognisable by these, so cleanup and the readiness
// check never touch anything else.

/** Every chain meshlet creates starts with this; nothing else may. */
export const CHAIN_PREFIX = 'MESHLET_';

export const CHAINS = {
  /** mangle PREROUTING: inbound TCP, TPROXY'd to the proxy (tproxy mode). */
  inbound: 'MESHLET_INBOUND',
  /** mangle: marks packets of existing flows and lets them through. */
  divert: 'MESHLET_DIVERT',
  /** filter INPUT: drops direct connections to app ports (mapped mode). */
  input: 'MESHLET_INPUT',
  /** filter OUTPUT: the proxy may never dial its own listeners (Contrast bug #1142). */
  loopGuard: 'MESHLET_LOOPGUARD',
  /** nat OUTPUT: outbound capture and portless egress routes. */
  outbound: 'MESHLET_OUTBOUND',
  /** filter OUTPUT: non-TCP traffic leaving the pod (egress.nonTcp: drop). */
  egress: 'MESHLET_EGRESS',
  /** nat OUTPUT: the app's DNS (UDP and TCP 53) to meshlet's DNS server. */
  dns: 'MESHLET_DNS',
  /** raw OUTPUT: DNS from the exempt uids gets its own conntrack zone. */
  dnsZone: 'MESHLET_DNS_ZONE',
  /** raw PREROUTING: replies from port 53 join that zone. */
  dnsReply: 'MESHLET_DNS_REPLY',
} as const;

/**
 * Packet mark for TPROXY'd and diverted packets, the fwmark `ip rule` and the
 * route table it selects. 0x4d4c is "ML"; Istio uses 0x539/133, so both can
 * coexist in one namespace.
 */
export const MARK = 0x4d4c;
export const MARK_HEX = '0x4d4c';
export const MARK_MASK = '0xffffffff';
export const ROUTE_TABLE = 19788;
/** Below main (32766), so the rule is consulted before the main table. */
export const RULE_PRIORITY = 19788;

/** DNS to the pod's resolvers is never captured (RFC step 3: DNS must keep working). */
export const DNS_PORT = 53;

/** IPv6 neighbour discovery and MLD reports: without them the link itself stops working. */
export const ICMPV6_LINK_TYPES = [133, 135, 136, 143] as const;

/**
 * Conntrack zone of the exempt uids' DNS (0x4d4c, like the mark). Keeps
 * meshlet's forwarded queries apart from the app's redirected ones, which
 * may share a 5-tuple (src/iptables/dns.ts).
 */
export const DNS_CT_ZONE = 19788;

/** Kernel limit of the multiport match (xt_multiport XT_MULTI_PORTS). */
export const MULTIPORT_MAX = 15;
