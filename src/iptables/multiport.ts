// `-m multiport` accepts at most 15 ports per rule (the kernel's XT_MULTI_PORTS), so long
// port lists become several rules.
import { MULTIPORT_MAX } from './constants.js';

/** Sorted, de-duplicated ports in groups of at most 15. */
export function portGroups(ports: readonly number[]): number[][] {
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  const out: number[][] = [];
  for (let i = 0; i < sorted.length; i += MULTIPORT_MAX) out.push(sorted.slice(i, i + MULTIPORT_MAX));
  return out;
}

/** The match for one group, in iptables-save spelling. */
export function dportMatch(group: readonly number[]): string {
  return group.length === 1 ? `-m tcp --dport ${group[0]}` : `-m multiport --dports ${group.join(',')}`;
}
