// Plans an `iptables-restore --noflush` text that turns the current state into
// the wanted one, touching only meshlet's chains and jumps. Each table section
// commits atomically: our chains are flushed and refilled in one step, and a
// jump is added only if it is missing, so re-runs never duplicate it
// (IPTABLES-FACTS, "Re-runs and jumps").
import { ourTables, type SavedState } from './save.js';
import { TABLE_ORDER, type TableSpec } from './types.js';

export function planRestore(want: readonly TableSpec[], current: SavedState): string {
  const have = ourTables(current);
  const sections: string[] = [];
  for (const table of TABLE_ORDER) {
    const w = want.find((t) => t.table === table);
    const h = have.find((t) => t.table === table);
    if (!w && !h) continue;
    sections.push(tableSection(table, w, h).join('\n'));
  }
  return sections.length === 0 ? '' : `${sections.join('\n')}\n`;
}

function tableSection(table: string, want: TableSpec | undefined, have: TableSpec | undefined): string[] {
  const wantChains = want?.chains ?? [];
  const stale = (have?.chains ?? []).map((c) => c.name).filter((n) => !wantChains.some((c) => c.name === n));
  const lines = [`*${table}`];
  // Declaring a chain creates it, or flushes it if it exists.
  for (const name of [...wantChains.map((c) => c.name), ...stale]) lines.push(`:${name} - [0:0]`);
  const { remove, add } = jumpChanges(want?.jumps ?? [], have?.jumps ?? []);
  for (const j of remove) lines.push(`-D${j.slice(2)}`);
  for (const c of wantChains) lines.push(...c.rules);
  lines.push(...add);
  for (const name of stale) lines.push(`-X ${name}`);
  lines.push('COMMIT');
  return lines;
}

/** Jumps to delete (stale ones and duplicates) and to append (missing ones). */
export function jumpChanges(want: readonly string[], have: readonly string[]): { remove: string[]; add: string[] } {
  const remove: string[] = [];
  const seen = new Set<string>();
  for (const j of have) {
    if (!want.includes(j) || seen.has(j)) remove.push(j);
    seen.add(j);
  }
  return { remove, add: want.filter((j) => !have.includes(j)) };
}

/** The text that removes everything meshlet owns and nothing else. */
export function planCleanup(current: SavedState): string {
  return planRestore([], current);
}
