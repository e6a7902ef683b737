// meshlet's command line. Each command lives in src/cli/; this file only
// parses the command name and maps errors to exit codes.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HELP, UsageError } from './usage.js';
import { ConfigInvalidError, formatErrors, sanitize } from '../config/errors.js';
import { version } from '../version.js';

export type Values = Record<string, string | boolean | string[] | undefined>;
export interface Command {
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Values, positionals: string[]): Promise<number>;
}

const COMMON = {
  config: { type: 'string' },
  'config-sha256': { type: 'string' },
  json: { type: 'boolean' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const COMMANDS: Record<string, () => Promise<Command>> = {
  version: () => Promise.resolve({ options: {}, run: () => { process.stdout.write(`meshlet ${version()}\n`); return Promise.resolve(0); } }),
  check: async () => (await import('./check.js')).checkCommand,
  init: async () => (await import('./init.js')).initCommand,
  cleanup: async () => (await import('./init.js')).cleanupCommand,
  run: async () => (await import('./run.js')).runCommand,
  bootstrap: async () => (await import('./bootstrap.js')).bootstrapCommand,
  'wait-ready': async () => (await import('./wait-ready.js')).waitReadyCommand,
  dump: async () => (await import('./wait-ready.js')).dumpCommand,
  'dev-pki': async () => (await import('./dev-pki.js')).devPkiCommand,
  sign: async () => (await import('./sign.js')).signCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(HELP);
    return 0;
  }
  if (name === '--version') return main(['version']);
  // Contrast's sidecar image runs with no command and Envoy's arguments (`-l debug`).
  if (name === undefined || name === 'contrast' || name.startsWith('-')) {
    try {
      const { contrastEntrypoint } = await import('./contrast.js');
      return await contrastEntrypoint(name === 'contrast' ? rest : argv);
    } catch (err) {
      return reportError(err);
    }
  }
  const load = COMMANDS[name];
  try {
    if (!load) throw new UsageError(`unknown command "${name}"; run meshlet --help`);
    const cmd = await load();
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...COMMON, ...cmd.options }, allowPositionals: true, strict: true });
    } catch (err) {
      throw new UsageError(`${name}: ${(err as Error).message}`);
    }
    if (parsed.values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    pinFromArgs(parsed.values['config-sha256']);
    return await cmd.run(parsed.values, parsed.positionals);
  } catch (err) {
    return reportError(err);
  }
}

/**
 * --config-sha256 is the args form of MESHLET_CONFIG_SHA256 (both are covered
 * by a pod's policy); the loader reads the environment, so the flag lands
 * there. Two different pins are a mistake, not a choice.
 */
function pinFromArgs(pin: unknown): void {
  if (typeof pin !== 'string') return;
  const env = process.env['MESHLET_CONFIG_SHA256'];
  if (env !== undefined && env.trim().toLowerCase() !== pin.trim().toLowerCase()) {
    throw new UsageError(`--config-sha256 ${pin} differs from MESHLET_CONFIG_SHA256 ${env}; pin the config once`);
  }
  process.env['MESHLET_CONFIG_SHA256'] = pin;
}

function reportError(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`meshlet: ${err.message}\n`);
    return 2;
  }
  if (err instanceof ConfigInvalidError) {
    process.stderr.write(`meshlet: invalid config from ${sanitize(err.source)}:\n`);
    for (const line of formatErrors(err.errors)) process.stderr.write(`${line}\n`);
    return 1;
  }
  // Messages can quote operator input (file names, YAML): keep them printable and bounded.
  process.stderr.write(`meshlet: ${sanitize(err instanceof Error ? err.message : String(err), 4000).replace(/\\u000a/g, '\n')}\n`);
  return 1;
}
