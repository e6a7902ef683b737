// Reads the current state and plans what `meshlet init` applies. The plan is
// data; rendering it is the dry run, and apply.ts executes exactly it.
import type { MeshConfig } from '../config/model.js';
import { binaries, type Backend, type Binaries } from './backend.js';
import { familyRules } from './generate.js';
import { planRestore } from './restore.js';
import { observeRouting, planRouting, renderIp, type RoutingStep } from './routing.js';
import { RESTORE_ARGS } from './restore-run.js';
import type { CommandRunner } from './runner.js';
import { ourTables, parseSave, type SavedState } from './save.js';
import type { Family, TableSpec } from './types.js';

export interface FamilyPlan {
  family: Family;
  bins: Binaries;
  /** Fed verbatim to `<restore> --noflush`; empty when nothing changes. */
  restore: string;
  /** Run before the rules, so the first TPROXY'd packet already has its route. */
  routing: RoutingStep[];
  /** meshlet's chains and jumps before the run, restored if the run fails. */
  before: TableSpec[];
}

export interface InitPlan {
  backend: Backend;
  families: FamilyPlan[];
  /** Families left out, with the reason (for example: kernel without IPv6). */
  skipped: string[];
  /** Caveats of a dry run, printed as comments. */
  notes: string[];
}

export async function readSave(runner: CommandRunner, bins: Binaries): Promise<SavedState> {
  const r = await runner.run(bins.save, []);
  if (r.code !== 0) throw new Error(`cannot read the current rules: ${bins.save} exited ${r.code}: ${r.stderr.trim()}`);
  return parseSave(r.stdout);
}

/**
 * With `lenient` (the dry run), a state that cannot be read (not root) is
 * taken as a fresh pod, and the plan says so.
 */
export async function planInit(config: MeshConfig, backend: Backend, runner: CommandRunner, lenient = false): Promise<InitPlan> {
  const plan: InitPlan = { backend, families: [], skipped: [], notes: [] };
  for (const family of [4, 6] as const) {
    const routingState = await observeRouting(runner, family);
    if (!routingState) {
      plan.skipped.push(`IPv${family}: the kernel does not support it, so there is no IPv${family} traffic to intercept`);
      continue;
    }
    const bins = binaries(backend, family);
    let current: SavedState;
    try {
      current = await readSave(runner, bins);
    } catch (err) {
      if (!lenient) throw err;
      plan.notes.push(`IPv${family}: ${(err as Error).message}; planned as for a fresh pod`);
      current = new Map();
    }
    const want = familyRules(config, family);
    const body = planRestore(want.tables, current);
    const routing = planRouting(want.routing, routingState);
    plan.families.push({
      family,
      bins,
      restore: body === '' ? '' : `# meshlet init: IPv${family}, ${bins.restore} ${RESTORE_ARGS.join(' ')}\n${body}`,
      routing,
      before: ourTables(current),
    });
  }
  return plan;
}

/** The dry run: exactly the texts and commands apply would run, in order. */
export function renderPlan(plan: InitPlan): string {
  const out: string[] = [`# backend: ${plan.backend}`];
  for (const s of plan.skipped) out.push(`# skipped ${s}`);
  for (const n of plan.notes) out.push(`# note: ${n.replace(/\n/g, ' ')}`);
  for (const f of plan.families) {
    for (const s of f.routing) out.push(renderIp(s.cmd));
    if (f.restore !== '') out.push(f.restore.trimEnd());
  }
  return `${out.join('\n')}\n`;
}
