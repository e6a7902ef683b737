// Reads iptables-save output and picks out what belongs to meshlet: every
// chain named MESHLET_*, and every rule in another chain that jumps into one.
import { CHAIN_PREFIX } from './constants.js';
import { TABLE_ORDER, type TableName, type TableSpec } from './types.js';

export interface SavedTable {
  /** Every chain declared in the table, built-in or not. */
  chains: Set<string>;
  /** Every `-A` line, in order. */
  rules: string[];
}

export type SavedState = Map<string, SavedTable>;

export function parseSave(text: string): SavedState {
  const tables: SavedState = new Map();
  let cur: SavedTable | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line.startsWith('*')) {
      cur = { chains: new Set(), rules: [] };
      tables.set(line.slice(1), cur);
    } else if (!cur || line === '' || line.startsWith('#')) continue;
    else if (line.startsWith(':')) cur.chains.add(line.slice(1).split(' ')[0] ?? '');
    else if (line.startsWith('-A ')) cur.rules.push(line);
    else if (line === 'COMMIT') cur = undefined;
  }
  return tables;
}

export function isOurChain(name: string): boolean {
  return name.startsWith(CHAIN_PREFIX);
}

/** The chain a `-A` line belongs to. */
export function ruleChain(rule: string): string {
  return rule.split(' ')[1] ?? '';
}

/** The chain a rule jumps or goes to, if any. */
export function ruleTarget(rule: string): string | undefined {
  const m = / -[jg] (\S+)/.exec(rule);
  return m?.[1];
}

/** meshlet's part of the saved state, in the same shape the generator emits. */
export function ourTables(state: SavedState): TableSpec[] {
  const out: TableSpec[] = [];
  for (const table of TABLE_ORDER) {
    const t = state.get(table);
    if (!t) continue;
    const names = [...t.chains].filter(isOurChain);
    const jumps = t.rules.filter((r) => !isOurChain(ruleChain(r)) && isOurChain(ruleTarget(r) ?? ''));
    if (names.length === 0 && jumps.length === 0) continue;
    out.push({
      table: table satisfies TableName,
      chains: names.map((name) => ({ name, rules: t.rules.filter((r) => ruleChain(r) === name) })),
      jumps,
    });
  }
  return out;
}
