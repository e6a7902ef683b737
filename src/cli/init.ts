// meshlet init / cleanup: install or remove the iptables rules (NET_ADMIN).
import { loadConfig } from '../config/load.js';
import { createRootLogger, logLevel } from '../log.js';
import { backendFromEnv, execFileRunner, runCleanup, runInit, type BackendChoice } from '../iptables/index.js';
import { UsageError } from './usage.js';
import { emit } from './output.js';
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
  async run(values) {
    const { config, warnings } = loadConfig(values['config'] as string | undefined);
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    const dryRun = values['dry-run'] === true;
    const log = dryRun ? undefined : createRootLogger(logLevel(values['log-level'])).child({ component: 'iptables' });
    const result = await runInit(
      config,
      { dryRun, verify: values['verify'] === true },
      { runner: execFileRunner, backend: backend(values), ...(log ? { log } : {}) },
    );
    if (dryRun) {
      emit(values, { ok: true, dryRun: true, commands: result.text }, result.text);
      return 0;
    }
    // For a sidecar that cannot read iptables itself (no NET_ADMIN).
    await writeFingerprint(config);
    const ok = result.verify?.ok ?? true;
    if (values['json'] === true) emit(values, { ok, dryRun: false, applied: result.applied, verify: result.verify ?? null }, '');
    else for (const c of result.verify?.checks ?? []) process.stderr.write(`verify ${c.status}: ${c.name}: ${c.detail}\n`);
    return ok ? 0 : 1;
  },
};

export const cleanupCommand: Command = {
  async run(values) {
    const dryRun = values['dry-run'] === true;
    const b = backend(values);
    const result = await runCleanup({ dryRun }, { runner: execFileRunner, backend: b });
    const text = dryRun ? result.text : result.changed ? 'meshlet rules removed\n' : 'nothing to remove\n';
    // changed: there was something of meshlet's (in a dry run: there is something to remove).
    emit(values, { ok: true, dryRun, backend: b, changed: result.changed, commands: result.text }, text);
    return 0;
  },
};
