// The readiness check's view of the rules: are meshlet's chains, jumps and
// policy routing exactly what the generator produces for this config, and
// are the jumps the first rules of their built-in chains? The
// generator writes iptables-save's canonical spelling, so a plain comparison
// of lines is enough (the netns tests pin that for both backends).
import type { MeshConfig } from '../config/model.js';
import { binaries, detectBackend } from './backend.js';
import type { IptablesDeps } from './deps.js';
import { familyRules } from './generate.js';
import { readSave } from './plan.js';
import { observeRouting } from './routing.js';
import { jumpsByChain, jumpsOnTop } from './restore.js';
import { ourTables, ruleChain, type SavedState } from './save.js';
import { TABLE_ORDER, type TableSpec } from './types.js';

export interface RulesCheck {
  ok: boolean;
  /** One line per difference, e.g. `IPv4 mangle: missing rule "-A ..."`. */
  missing: string[];
}

export async function rulesInPlace(config: MeshConfig, deps: IptablesDeps): Promise<RulesCheck> {
  const missing: string[] = [];
  try {
    const backend = await detectBackend(deps.runner, deps.backend);
    for (const family of [4, 6] as const) {
      const routing = await observeRouting(deps.runner, family);
      if (!routing) continue;
      const want = familyRules(config, family);
      const saved = await readSave(deps.runner, binaries(backend, family));
      const diffs = diffTables(want.tables, ourTables(saved));
      missing.push(...[...diffs, ...jumpsNotFirst(want.tables, saved, diffs)].map((d) => `IPv${family} ${d}`));
      if (want.routing) {
        if (routing.rules === 0) missing.push(`IPv${family} ip rule: fwmark ${want.routing.mark} lookup ${want.routing.table}`);
        if (!routing.route) missing.push(`IPv${family} ip route: local default dev lo table ${want.routing.table}`);
        if (want.routing.loopbackAddress && !routing.address) missing.push(`IPv6 address ${want.routing.loopbackAddress} on lo`);
      }
    }
  } catch (err) {
    missing.push(`cannot read the rules: ${(err as Error).message}`);
  }
  return { ok: missing.length === 0, missing };
}

/**
 * A rule above one of our jumps decides first, so a foreign `-I PREROUTING 1
 * ... -j ACCEPT` would let traffic past the interception while every rule of
 * ours is still there. (Jumps already reported missing are not repeated.)
 */
export function jumpsNotFirst(want: readonly TableSpec[], saved: SavedState, already: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const t of want) {
    const rules = saved.get(t.table)?.rules ?? [];
    for (const [chain, jumps] of jumpsByChain(t.jumps)) {
      if (jumpsOnTop(chain, jumps, rules)) continue;
      if (already.some((d) => d.startsWith(`${t.table}: missing jump "-A ${chain} `))) continue;
      const first = rules.find((r) => ruleChain(r) === chain);
      out.push(`${t.table}: meshlet's jumps are not the first rules of ${chain} (first is "${first ?? 'nothing'}"); re-run meshlet init`);
    }
  }
  return out;
}

/** Differences between wanted and present tables, as readable lines. */
export function diffTables(want: readonly TableSpec[], have: readonly TableSpec[]): string[] {
  const out: string[] = [];
  for (const table of TABLE_ORDER) {
    const w = want.find((t) => t.table === table);
    const h = have.find((t) => t.table === table);
    for (const c of w?.chains ?? []) {
      const hc = h?.chains.find((x) => x.name === c.name);
      if (!hc) {
        out.push(`${table}: missing chain ${c.name}`);
        continue;
      }
      const diffs = [
        ...c.rules.filter((r) => !hc.rules.includes(r)).map((r) => `${table}: missing rule "${r}"`),
        ...hc.rules.filter((r) => !c.rules.includes(r)).map((r) => `${table}: unexpected rule "${r}"`),
      ];
      if (diffs.length === 0 && hc.rules.join('\n') !== c.rules.join('\n')) diffs.push(`${table}: rules of ${c.name} are out of order`);
      out.push(...diffs);
    }
    for (const c of h?.chains ?? []) if (!w?.chains.some((x) => x.name === c.name)) out.push(`${table}: unexpected chain ${c.name}`);
    for (const j of w?.jumps ?? []) {
      const n = (h?.jumps ?? []).filter((x) => x === j).length;
      if (n === 0) out.push(`${table}: missing jump "${j}"`);
      if (n > 1) out.push(`${table}: jump "${j}" is present ${n} times`);
    }
    for (const j of h?.jumps ?? []) if (!w?.jumps.includes(j)) out.push(`${table}: unexpected jump "${j}"`);
  }
  return out;
}
