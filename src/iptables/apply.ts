// Executes an InitPlan. Each family's rules go in with one iptables-restore,
// but iptables commits table by table, so a refusal can leave earlier tables
// (or the other family) applied. On any failure everything this run changed
// is put back as it was, and the error names the refused line.
import type { Logger } from '../log.js';
import { IptablesApplyError, moduleHint } from './errors.js';
import type { FamilyPlan, InitPlan } from './plan.js';
import { readSave } from './plan.js';
import { planRestore } from './restore.js';
import { runRestore, type RestoreFailure } from './restore-run.js';
import { renderIp, type IpCommand } from './routing.js';
import { describeFailure, type CommandRunner } from './runner.js';

export async function applyPlan(plan: InitPlan, runner: CommandRunner, log?: Logger): Promise<void> {
  const undo: IpCommand[] = [];
  const touched: FamilyPlan[] = [];
  for (const f of plan.families) {
    touched.push(f);
    for (const step of f.routing) {
      const r = await runner.run('ip', step.cmd);
      if (r.code !== 0) {
        const complaint = describeFailure('ip', step.cmd, r);
        const rolledBack = await rollback(touched, undo, runner, log);
        const after = rolledBack ? 'nothing of this run was left in place' : 'ROLLBACK FAILED: run `meshlet cleanup` before retrying';
        throw new IptablesApplyError(`IPv${f.family} policy routing failed: ${complaint}; ${after}`, { family: f.family, complaint, rolledBack });
      }
      if (step.undo) undo.push(step.undo);
    }
    if (f.restore === '') continue;
    const failure = await runRestore(runner, f.bins.restore, f.restore);
    if (failure) {
      const rolledBack = await rollback(touched, undo, runner, log);
      throw new IptablesApplyError(failureMessage(f, failure, rolledBack), { family: f.family, ...lineOf(failure), complaint: failure.complaint, rolledBack });
    }
    log?.debug({ family: f.family, backend: plan.backend }, 'iptables rules applied');
  }
}

function lineOf(f: RestoreFailure): { line?: number; rule?: string } {
  const out: { line?: number; rule?: string } = {};
  if (f.line !== undefined) out.line = f.line;
  if (f.rule !== undefined) out.rule = f.rule;
  return out;
}

function failureMessage(f: FamilyPlan, failure: RestoreFailure, rolledBack: boolean): string {
  const where = failure.line === undefined ? '' : ` at line ${failure.line}${failure.rule ? ` \`${failure.rule}\`` : ''}`;
  const hint = failure.rule ? moduleHint(failure.rule) : undefined;
  const after = rolledBack ? 'no rule of this run was left in place' : 'ROLLBACK FAILED: run `meshlet cleanup` before retrying';
  return `${f.bins.restore} refused the IPv${f.family} rules${where}: ${failure.complaint}${hint ? ` (${hint})` : ''}; ${after}`;
}

/** Puts meshlet's chains and jumps back as they were, then undoes routing. */
async function rollback(families: readonly FamilyPlan[], undo: readonly IpCommand[], runner: CommandRunner, log?: Logger): Promise<boolean> {
  let ok = true;
  for (const f of families) {
    try {
      const text = planRestore(f.before, await readSave(runner, f.bins));
      const failure = text === '' ? undefined : await runRestore(runner, f.bins.restore, text);
      if (failure) throw new Error(failure.complaint);
    } catch (err) {
      ok = false;
      log?.error({ family: f.family, err }, 'rollback of iptables rules failed');
    }
  }
  for (const cmd of [...undo].reverse()) {
    const r = await runner.run('ip', cmd);
    if (r.code !== 0) {
      ok = false;
      log?.error({ cmd: renderIp(cmd), stderr: r.stderr }, 'rollback of policy routing failed');
    }
  }
  return ok;
}
