// Errors that name the rule the kernel refused and what it said.
import type { Family } from './types.js';

export class IptablesApplyError extends Error {
  constructor(
    message: string,
    readonly details: {
      family?: Family;
      /** 1-based line in the text fed to iptables-restore. */
      line?: number;
      rule?: string;
      /** What iptables-restore printed. */
      complaint: string;
      /** Whether meshlet's previous state was restored after the failure. */
      rolledBack: boolean;
    },
  ) {
    super(message);
    this.name = 'IptablesApplyError';
  }
}

/** Kernel pieces a rule needs; named in errors so a missing module is obvious. */
export function moduleHint(rule: string): string | undefined {
  const needs: string[] = [];
  if (/ TPROXY /.test(rule)) needs.push('xt_TPROXY with nf_tproxy_ipv4/nf_tproxy_ipv6');
  if (/ REDIRECT /.test(rule)) needs.push('xt_REDIRECT with nf_nat');
  if (/ DNAT /.test(rule)) needs.push('xt_nat with nf_nat');
  if (/ CT --zone /.test(rule)) needs.push('xt_CT with conntrack zones (CONFIG_NF_CONNTRACK_ZONES)');
  if (/-m conntrack/.test(rule)) needs.push('xt_conntrack');
  if (/-m owner/.test(rule)) needs.push('xt_owner');
  if (/-m multiport/.test(rule)) needs.push('xt_multiport');
  if (/-m addrtype/.test(rule)) needs.push('xt_addrtype');
  if (/ MARK /.test(rule)) needs.push('xt_mark');
  if (/ REJECT /.test(rule)) needs.push('ipt_REJECT/ip6t_REJECT');
  return needs.length > 0 ? `this rule needs the kernel modules ${needs.join(', ')}` : undefined;
}
