// The pod VM of a Contrast deployment starts with one rule that drops every
// new inbound connection until the service-mesh sidecar is in place:
//
//   filter INPUT: -m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP
//
// (IPv4, installed with iptables-legacy by a unit in the VM image). The
// sidecar deletes exactly that rule, once; nothing else in INPUT is touched,
// and a rule that is already gone (the container restarted) is no error.
import type { Logger } from '../log.js';
import { describeFailure, type CommandRunner } from './runner.js';

export const DEFAULT_DENY_SPEC = ['-m', 'conntrack', '!', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'DROP'] as const;
export const DEFAULT_DENY_RULE = `-A INPUT ${DEFAULT_DENY_SPEC.join(' ')}`;

export interface DefaultDenyDeps {
  runner: CommandRunner;
  /** Which legacy tables exist in this network namespace (/proc/net/ip_tables_names). */
  legacyTables: () => Promise<string[]>;
  log?: Logger;
}

/**
 * Deletes one copy of the default-deny rule from each backend that holds it
 * (iptables-legacy, where the pod VM puts it, and iptables-nft, should a node
 * image use that). Returns the backends it was removed from.
 */
export async function removeDefaultDeny(deps: DefaultDenyDeps): Promise<string[]> {
  const removed: string[] = [];
  // Asking iptables-legacy about a table that does not exist would create it;
  // without a legacy filter table there is no legacy rule to remove.
  const legacy = (await deps.legacyTables()).includes('filter');
  for (const bin of legacy ? ['iptables-legacy', 'iptables-nft'] : ['iptables-nft']) {
    const check = ['-w', '-t', 'filter', '-C', 'INPUT', ...DEFAULT_DENY_SPEC];
    const r = await deps.runner.run(bin, check);
    if (r.code === 127) continue;
    // 1: no such rule (or, for nft, no filter table at all).
    if (r.code === 1) continue;
    if (r.code !== 0) throw new Error(`checking for the pod VM's default-deny rule: ${describeFailure(bin, check, r)}`);
    const del = ['-w', '-t', 'filter', '-D', 'INPUT', ...DEFAULT_DENY_SPEC];
    const d = await deps.runner.run(bin, del);
    if (d.code !== 0) throw new Error(`removing the pod VM's default-deny rule: ${describeFailure(bin, del, d)}`);
    removed.push(bin);
  }
  deps.log?.info(
    { rule: DEFAULT_DENY_RULE, removedFrom: removed },
    removed.length > 0 ? "removed the pod VM's default-deny rule" : "the pod VM's default-deny rule is not there; nothing to remove",
  );
  return removed;
}
