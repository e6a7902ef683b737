// meshlet's command line. Each command lives in src/cli/; this file only
// parses the command name and maps errors to exit codes.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HELP, UsageError } from './usage.js';
import { ConfigInvalidError, formatErrors, sanitize } from '../config/errors.js';
import { VERSION } from '../version.js';

export type Values = Record<string, string | boolean | string[] | undefined>;
export interface Command {
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Values, positionals: string[]): Promise<number>;
}

const COMMON = {
  config: { type: 'string' },
  json: { type: 'boolean' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const COMMANDS: Record<string, () => Promise<Command>> = {
  version: () => Promise.resolve({ options: {}, run: () => { process.stdout.write(`meshlet ${VERSION}\n`); return Promise.resolve(0); } }),
  check: async () => (await import('./check.js')).checkCommand,
  init: async () => (await import('./init.js')).initCommand,
  cleanup: async () => (await import('./init.js')).cleanupCommand,
  run: async () => (await import('./run.js')).runCommand,
  bootstrap: async () => (await import('./bootstrap.js')).bootstrapCommand,
  'wait-ready': async () => (await import('./wait-ready.js')).waitReadyCommand,
  dump: async () => (await import('./wait-ready.js')).dumpCommand,
  'dev-pki': async () => (await import('./dev-pki.js')).devPkiCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(HELP);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') return main(['version']);
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
    if (typeof parsed.values['log-level'] === 'string') process.env['MESHLET_LOG_LEVEL'] = parsed.values['log-level'];
    return await cmd.run(parsed.values, parsed.positionals);
  } catch (err) {
    return reportError(err);
  }
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
