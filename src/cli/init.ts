// meshlet init / cleanup: install or remove the iptables rules (NET_ADMIN).
import { loadConfig } from '../config/load.js';
import { createRootLogger, logLevel } from '../log.js';
import { backendFromEnv, execFileRunner, runCleanup, runInit, type BackendChoice } from '../iptables/index.js';
import { UsageError } from './usage.js';
import type { Command, Values } from './main.js';
import { writeFingerprint } from '../run/rules-check.js';

function backend(values: Values): BackendChoice {
  const b = values['backend'] as string | undefined;
  if (b === undefined) {
    try {
      return backendFromEnv();
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  if (b !== 'auto' && b !== 'nft' && b !== 'legacy') throw new UsageError(`--backend must be auto, nft or legacy, not "${b}"`);
  return b;
}

export const initCommand: Command = {
  options: { 'dry-run': { type: 'boolean' }, verify: { type: 'boolean' }, backend: { type: 'string' } },
  async run(values) {
    const { config, warnings } = loadConfig(values['config'] as string | undefined);
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    const dryRun = values['dry-run'] === true;
    const log = dryRun ? undefined : createRootLogger(logLevel(values['log-level'])).child({ component: 'iptables' });
    const result = await runInit(config, { dryRun, verify: values['verify'] === true }, { runner: execFileRunner, backend: backend(values), ...(log ? { log } : {}) });
    if (dryRun) {
      process.stdout.write(result.text);
      return 0;
    }
    // For a sidecar that cannot read iptables itself (no NET_ADMIN).
    await writeFingerprint(config);
    if (!result.verify) return 0;
    for (const c of result.verify.checks) process.stderr.write(`verify ${c.status}: ${c.name}: ${c.detail}\n`);
    return result.verify.ok ? 0 : 1;
  },
};

export const cleanupCommand: Command = {
  options: { 'dry-run': { type: 'boolean' }, backend: { type: 'string' } },
  async run(values) {
    const dryRun = values['dry-run'] === true;
    const result = await runCleanup({ dryRun }, { runner: execFileRunner, backend: backend(values) });
    if (dryRun || values['json'] !== true) process.stdout.write(dryRun ? result.text : result.changed ? 'meshlet rules removed\n' : 'nothing to remove\n');
    return 0;
  },
};
