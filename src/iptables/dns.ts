// DNS capture (docs/dns.md): the pod's outbound DNS, UDP and TCP
// port 53, is DNATed to meshlet's DNS server, except DNS from the proxy uid
// (Envoy resolves route remotes through the real resolvers; answering it
// with route addresses would make Envoy dial itself) and from meshlet's own
// uid (its forwarded queries; redirecting them would loop).
//
// nat only decides on a flow's first packet; later packets follow the
// conntrack entry. A UDP query meshlet forwards can have the very 5-tuple of
// an app query that was DNATed a moment ago (same ephemeral source port,
// same resolver), and would then be DNATed back to meshlet despite the uid
// exemption. So, in raw (before conntrack), the exempt uids' DNS and the
// replies from port 53 go to their own conntrack zone, where they can never
// match the app's entries. The app's queries never leave the pod, so every
// reply from port 53 that arrives is one to an exempt uid. TCP needs no zone:
// a new SYN on an old entry re-creates it, and nat decides afresh.
import type { MeshConfig } from '../config/model.js';
import { CHAINS, DNS_CT_ZONE, DNS_PORT } from './constants.js';
import { DNS_V6_ADDRESS } from '../config/constants.js';
import type { Family, TableSpec } from './types.js';

/** The uids whose DNS is never redirected, in rule order. */
export function dnsExemptUids(c: MeshConfig): number[] {
  return c.dns ? [...new Set([c.proxy.uid, c.dns.meshletUid])] : [];
}

export function dnsNatChain(c: MeshConfig, family: Family): { chain: { name: string; rules: string[] }; jumps: string[] } | undefined {
  if (!c.dns) return undefined;
  const name = CHAINS.dns;
  const target = family === 4 ? `${c.dns.address.ip}:${c.dns.address.port}` : `[${DNS_V6_ADDRESS}]:${c.dns.address.port}`;
  const rules = [
    ...dnsExemptUids(c).map((uid) => `-A ${name} -m owner --uid-owner ${uid} -j RETURN`),
    `-A ${name} -p udp -j DNAT --to-destination ${target}`,
    `-A ${name} -p tcp -j DNAT --to-destination ${target}`,
  ];
  return {
    chain: { name, rules },
    jumps: [`-A OUTPUT -p udp -m udp --dport ${DNS_PORT} -j ${name}`, `-A OUTPUT -p tcp -m tcp --dport ${DNS_PORT} -j ${name}`],
  };
}

export function dnsRawTable(c: MeshConfig): TableSpec | undefined {
  if (!c.dns) return undefined;
  const zone = CHAINS.dnsZone;
  const reply = CHAINS.dnsReply;
  return {
    table: 'raw',
    chains: [
      { name: zone, rules: dnsExemptUids(c).map((uid) => `-A ${zone} -m owner --uid-owner ${uid} -j CT --zone ${DNS_CT_ZONE}`) },
      { name: reply, rules: [`-A ${reply} -j CT --zone ${DNS_CT_ZONE}`] },
    ],
    jumps: [`-A PREROUTING -p udp -m udp --sport ${DNS_PORT} -j ${reply}`, `-A OUTPUT -p udp -m udp --dport ${DNS_PORT} -j ${zone}`],
  };
}
