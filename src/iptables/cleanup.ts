// `meshlet cleanup`: removes meshlet's chains, the jumps into them, its ip
// rule, its route table and ::6 on lo. It needs no config: everything meshlet
// owns is recognisable by name (constants.ts), and nothing else is touched.
import { binaries, type Backend } from './backend.js';
import type { IptablesDeps } from './deps.js';
import { IptablesApplyError } from './errors.js';
import { readSave } from './plan.js';
import { planCleanup } from './restore.js';
import { RESTORE_ARGS, runRestore } from './restore-run.js';
import { observeRouting, planRoutingCleanup, renderIp, type IpCommand } from './routing.js';
import { describeFailure } from './runner.js';

export interface CleanupOptions {
  dryRun?: boolean;
}

export interface CleanupResult {
  /** What was (or, in a dry run, would be) run, in order. */
  text: string;
  changed: boolean;
}

export async function runCleanup(opts: CleanupOptions, deps: IptablesDeps): Promise<CleanupResult> {
  // With auto, clean both backends: rules left by an older run on the other
  // one are meshlet's too.
  const backends: Backend[] = deps.backend === undefined || deps.backend === 'auto' ? ['nft', 'legacy'] : [deps.backend];
  const steps: { kind: 'restore'; bin: string; text: string }[] = [];
  const ipSteps: IpCommand[] = [];
  for (const family of [4, 6] as const) {
    const routing = await observeRouting(deps.runner, family);
    if (!routing) continue;
    ipSteps.push(...planRoutingCleanup(routing));
    for (const backend of backends) {
      const bins = binaries(backend, family);
      const probe = await deps.runner.run(bins.save, ['--version']);
      if (probe.code !== 0) continue;
      const text = planCleanup(await readSave(deps.runner, bins));
      if (text !== '')
        steps.push({ kind: 'restore', bin: bins.restore, text: `# meshlet cleanup: IPv${family}, ${bins.restore} ${RESTORE_ARGS.join(' ')}\n${text}` });
    }
  }
  const text = [...steps.map((s) => s.text.trimEnd()), ...ipSteps.map(renderIp)].join('\n');
  const result = { text: text === '' ? '' : `${text}\n`, changed: text !== '' };
  if (opts.dryRun) return result;
  // Rules first, so nothing is marked for a route that no longer exists.
  for (const s of steps) {
    const failure = await runRestore(deps.runner, s.bin, s.text);
    if (failure)
      throw new IptablesApplyError(`${s.bin} refused the cleanup${failure.line ? ` at line ${failure.line}` : ''}: ${failure.complaint}`, {
        complaint: failure.complaint,
        rolledBack: false,
      });
  }
  for (const cmd of ipSteps) {
    const r = await deps.runner.run('ip', cmd);
    if (r.code !== 0) throw new IptablesApplyError(`cleanup failed: ${describeFailure('ip', cmd, r)}`, { complaint: r.stderr.trim(), rolledBack: false });
  }
  deps.log?.info({ changed: result.changed }, 'meshlet iptables cleanup done');
  return result;
}
