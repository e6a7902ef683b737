// Plans an `iptables-restore --noflush` text that turns the current state into
// the wanted one, touching only meshlet's chains and jumps. Each table section
// commits atomically: our chains are flushed and refilled in one step, and
// our jumps are (re)inserted at the top of their built-in chains only when
// they are not already there in order, so re-runs never duplicate them.
import { isOurChain, ourTables, ruleChain, ruleTarget, type SavedState } from './save.js';
import { TABLE_ORDER, type TableSpec } from './types.js';

export function planRestore(want: readonly TableSpec[], current: SavedState): string {
  const have = ourTables(current);
  const sections: string[] = [];
  for (const table of TABLE_ORDER) {
    const w = want.find((t) => t.table === table);
    const h = have.find((t) => t.table === table);
    if (!w && !h) continue;
    sections.push(tableSection(table, w, h, current.get(table)?.rules ?? []).join('\n'));
  }
  return sections.length === 0 ? '' : `${sections.join('\n')}\n`;
}

function tableSection(table: string, want: TableSpec | undefined, have: TableSpec | undefined, saved: readonly string[]): string[] {
  const wantChains = want?.chains ?? [];
  const stale = (have?.chains ?? []).map((c) => c.name).filter((n) => !wantChains.some((c) => c.name === n));
  const lines = [`*${table}`];
  // Declaring a chain creates it, or flushes it if it exists.
  for (const name of [...wantChains.map((c) => c.name), ...stale]) lines.push(`:${name} - [0:0]`);
  const { remove, insert } = jumpChanges(want?.jumps ?? [], saved);
  for (const j of remove) lines.push(`-D${j.slice(2)}`);
  for (const c of wantChains) lines.push(...c.rules);
  lines.push(...insert);
  for (const name of stale) lines.push(`-X ${name}`);
  lines.push('COMMIT');
  return lines;
}

/** The built-in chain's jumps, grouped by chain, in the order wanted. */
export function jumpsByChain(jumps: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const j of jumps) {
    const chain = ruleChain(j);
    out.set(chain, [...(out.get(chain) ?? []), j]);
  }
  return out;
}

/**
 * meshlet's jumps must be the first rules of their built-in chains, in the
 * generator's order: a rule above them (a foreign ACCEPT, say) would let
 * traffic past the interception. A chain already in that shape is left
 * alone, so re-runs change nothing; otherwise every jump of ours in it is
 * deleted and the wanted ones are inserted at the top, in the same commit.
 */
export function jumpChanges(want: readonly string[], saved: readonly string[]): { remove: string[]; insert: string[] } {
  const remove: string[] = [];
  const insert: string[] = [];
  const wanted = jumpsByChain(want);
  const ours = saved.filter((r) => !isOurChain(ruleChain(r)) && isOurChain(ruleTarget(r) ?? ''));
  const chains = new Set([...wanted.keys(), ...ours.map(ruleChain)]);
  for (const chain of chains) {
    const w = wanted.get(chain) ?? [];
    const present = ours.filter((r) => ruleChain(r) === chain);
    if (w.length > 0 && jumpsOnTop(chain, w, saved)) continue;
    remove.push(...present);
    w.forEach((j, i) => insert.push(`-I ${chain} ${i + 1}${j.slice(3 + chain.length)}`));
  }
  return { remove, insert };
}

/** The chain starts with exactly `jumps`, and holds no other jump into our chains. */
export function jumpsOnTop(chain: string, jumps: readonly string[], saved: readonly string[]): boolean {
  const rules = saved.filter((r) => ruleChain(r) === chain);
  if (jumps.some((j, i) => rules[i] !== j)) return false;
  return !rules.slice(jumps.length).some((r) => isOurChain(ruleTarget(r) ?? ''));
}

/** The text that removes everything meshlet owns and nothing else. */
export function planCleanup(current: SavedState): string {
  return planRestore([], current);
}
