// `meshlet init`: plan, print (dry run) or apply, then optionally verify.
import type { MeshConfig } from '../config/model.js';
import { applyPlan } from './apply.js';
import { detectBackend } from './backend.js';
import type { IptablesDeps } from './deps.js';
import { planInit, renderPlan, type InitPlan } from './plan.js';
import { spawnStarter } from './process.js';
import { runVerify, type VerifyDeps, type VerifyReport } from './verify.js';

export interface InitOptions {
  /** Print what would be applied; change nothing. */
  dryRun?: boolean;
  /** After applying, prove that redirection works (see verify.ts). */
  verify?: boolean;
}

export interface InitResult {
  applied: boolean;
  plan: InitPlan;
  /** The dry-run text: every command and restore text, in the order applied. */
  text: string;
  verify?: VerifyReport;
}

/**
 * Applies meshlet's rules for `config`. Throws IptablesApplyError (nothing
 * left changed) when the kernel refuses a rule. A failed verification is
 * reported in `verify.ok`, not thrown; the CLI exits non-zero on it.
 */
export async function runInit(config: MeshConfig, opts: InitOptions, deps: IptablesDeps & Partial<VerifyDeps>): Promise<InitResult> {
  const backend = await detectBackend(deps.runner, deps.backend);
  const plan = await planInit(config, backend, deps.runner, opts.dryRun === true);
  const text = renderPlan(plan);
  if (opts.dryRun) return { applied: false, plan, text };
  await applyPlan(plan, deps.runner, deps.log);
  deps.log?.info({ backend, families: plan.families.map((f) => f.family), skipped: plan.skipped }, 'iptables rules in place');
  const result: InitResult = { applied: true, plan, text };
  if (opts.verify) result.verify = await runVerify(config, { ...deps, processes: deps.processes ?? spawnStarter, backend });
  return result;
}
