// meshlet's command line. Each command lives in src/cli/; this file only
// parses the command name and maps errors to exit codes.
import type { ParseArgsConfig } from 'node:util';
import { COMMAND_DOCS, HELP, UsageError, commandHelp, flagsOf, type FlagDoc } from './usage.js';
import { ConfigInvalidError, formatError, MAX_SHOWN_ERRORS, sanitize } from '../config/errors.js';
import { CertError, formatCertProblem } from '../certs/problems.js';
import { version } from '../version.js';
import { LEVEL_NAMES, logLevel } from '../log.js';
import { emit } from './output.js';

const { parseArgs } = process.getBuiltinModule('node:util');

export type Values = Record<string, string | boolean | string[] | undefined>;
export interface Command {
  /** Parser options beyond what usage.ts documents; a test keeps them documented. */
  options?: NonNullable<ParseArgsConfig['options']>;
  run(values: Values, positionals: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** The parser's options for a command, from the same table --help and README.md are rendered from. */
export function parserOptions(name: string): Options {
  const opts: Options = {};
  for (const f of flagsOf(name)) opts[f.name] = parserOption(f);
  return opts;
}

function parserOption(f: FlagDoc): Options[string] {
  return { type: f.arg ? 'string' : 'boolean', ...(f.short ? { short: f.short } : {}), ...(f.repeatable ? { multiple: true } : {}) };
}

export const COMMANDS: Record<string, () => Promise<Command>> = {
  version: () =>
    Promise.resolve({
      run: (values) => {
        emit(values, { version: version() }, `meshlet ${version()}\n`);
        return Promise.resolve(0);
      },
    }),
  check: async () => (await import('./check.js')).checkCommand,
  init: async () => (await import('./init.js')).initCommand,
  cleanup: async () => (await import('./init.js')).cleanupCommand,
  run: async () => (await import('./run.js')).runCommand,
  bootstrap: async () => (await import('./bootstrap.js')).bootstrapCommand,
  'wait-ready': async () => (await import('./wait-ready.js')).waitReadyCommand,
  dump: async () => (await import('./wait-ready.js')).dumpCommand,
  'dev-pki': async () => (await import('./dev-pki.js')).devPkiCommand,
  sign: async () => (await import('./sign.js')).signCommand,
  // main() hands `contrast` (and a bare `meshlet` or `meshlet -l debug`) to the entrypoint before
  // any parsing: its arguments are Envoy's. The entry here gives it --help and `help contrast`.
  contrast: () => Promise.resolve({ run: async (_values, positionals) => (await import('./contrast.js')).contrastEntrypoint(positionals) }),
};

/** The process around main(): what src/cli.ts and the startup snapshot's entry (src/snapshot.ts) both run. */
export async function runCli(argv: string[]): Promise<void> {
  // `meshlet check | head` closes the pipe early; that is not an error.
  onFirstStdout((stdout) =>
    stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    }),
  );
  process.exitCode = await main(argv);
}

/**
 * Runs `hook` on process.stdout when something first takes it. Node makes
 * that stream on first use, which takes milliseconds for a pipe (node:net's
 * socket, made non-blocking), and `meshlet run` never uses it: its log lines
 * go to fd 1 directly (src/log/sink.ts), and Envoy inherits the fd itself.
 * Taking the stream here, to add a listener, would put that on the way to
 * Envoy's spawn.
 */
function onFirstStdout(hook: (stream: NodeJS.WriteStream) => void): void {
  const own = Object.getOwnPropertyDescriptor(process, 'stdout');
  // Node's getter, which makes the stream once and then returns it.
  const take = own?.get?.bind(process);
  if (!take || !own?.configurable) {
    hook(process.stdout);
    return;
  }
  Object.defineProperty(process, 'stdout', {
    configurable: true,
    enumerable: own.enumerable ?? true,
    get(): NodeJS.WriteStream {
      const stream = take() as NodeJS.WriteStream;
      // Node's getter keeps the stream it made; from here on, the plain property.
      Object.defineProperty(process, 'stdout', { configurable: true, enumerable: own.enumerable ?? true, writable: true, value: stream });
      hook(stream);
      return stream;
    },
  });
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'help' && rest[0] !== undefined && COMMANDS[rest[0]]) {
    process.stdout.write(commandHelp(rest[0]));
    return 0;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(HELP);
    return 0;
  }
  if (name === '--version') return main(['version', ...rest]);
  // Contrast's sidecar image runs with no command and Envoy's arguments (`-l debug`).
  if (name === undefined || name === 'contrast' || name.startsWith('-')) {
    if (name === 'contrast' && (rest[0] === '--help' || rest[0] === '-h')) {
      process.stdout.write(commandHelp('contrast'));
      return 0;
    }
    try {
      // Its arguments are Envoy's, but meshlet's own level still comes from MESHLET_LOG_LEVEL.
      checkLogLevel(undefined);
      const { contrastEntrypoint } = await import('./contrast.js');
      return await contrastEntrypoint(name === 'contrast' ? rest : argv);
    } catch (err) {
      return reportError(err);
    }
  }
  const load = COMMANDS[name];
  const json = rest.includes('--json');
  try {
    if (!load) throw new UsageError(`unknown command "${name}"; run meshlet --help`);
    // Help wins over everything else on the line, so a half-typed command still gets it.
    if (rest.some((a) => a === '--help' || a === '-h')) {
      process.stdout.write(commandHelp(name));
      return 0;
    }
    const cmd = await load();
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...parserOptions(name), ...cmd.options }, allowPositionals: true, strict: true });
    } catch (err) {
      throw new UsageError(`${name}: ${(err as Error).message}; run meshlet ${name} --help`);
    }
    refuseStrayPositionals(name, parsed.positionals);
    checkLogLevel(parsed.values['log-level']);
    pinFromArgs(parsed.values['config-sha256']);
    return await cmd.run(parsed.values as Values, parsed.positionals);
  } catch (err) {
    return reportError(err, json);
  }
}

/** A word the command does not take is a mistake to point at, never something to ignore. */
function refuseStrayPositionals(name: string, positionals: string[]): void {
  const doc = COMMAND_DOCS.find((c) => c.name === name);
  if (doc?.positional !== undefined || positionals.length === 0) return;
  const [first] = positionals;
  const asConfig = flagsOf(name).some((f) => f.name === 'config') ? `; to use it as the config file: meshlet ${name} --config ${first}` : '';
  throw new UsageError(`${name}: unexpected argument "${first}" (${name} takes no positional arguments${asConfig})`);
}

/** The flag wins over MESHLET_LOG_LEVEL; a level the logger does not know is a usage error either way. Each command passes the level to its logger. */
function checkLogLevel(flag: unknown): void {
  const level = logLevel(flag);
  if (!(LEVEL_NAMES as readonly string[]).includes(level)) {
    const where = typeof flag === 'string' ? '--log-level' : 'MESHLET_LOG_LEVEL';
    throw new UsageError(`${where} must be one of ${LEVEL_NAMES.join('|')}, not "${level}"`);
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

export interface JsonProblem {
  path: string;
  file?: string;
  rule: string;
  value?: unknown;
  text: string;
}

/** What --json prints for a failure: the same facts as the text, one document on stdout. */
export function errorJson(
  kind: 'usage' | 'config' | 'certificates' | 'failure',
  exitCode: number,
  message: string,
  problems: JsonProblem[] = [],
  source?: string,
): object {
  return { ok: false, exitCode, error: kind, message, ...(source !== undefined ? { source } : {}), problems };
}

function reportError(err: unknown, json = false): number {
  // One line: `run` writes its JSON log lines to stdout before, so stdout stays one JSON object per line.
  const out = (doc: object, text: string): void => {
    if (json) process.stdout.write(`${JSON.stringify(doc)}\n`);
    else process.stderr.write(text);
  };
  if (err instanceof UsageError) {
    out(errorJson('usage', 2, err.message), `meshlet: ${err.message}\n`);
    return 2;
  }
  if (err instanceof ConfigInvalidError) {
    // Values quote operator input: formatError keeps them printable and bounded; at most MAX_SHOWN_ERRORS, then "and N more".
    const problems = err.errors
      .slice(0, MAX_SHOWN_ERRORS)
      .map((e) => ({ path: sanitize(e.path, 120), rule: sanitize(e.rule, 300), value: e.value, text: formatError(e) }));
    const more = err.errors.length - problems.length;
    const source = sanitize(err.source);
    out(
      { ...errorJson('config', 1, `invalid config from ${source}`, problems, source), ...(more > 0 ? { more } : {}) },
      `meshlet: invalid config from ${source}:\n${problems.map((p) => `${p.text}\n`).join('')}${more > 0 ? `and ${more} more\n` : ''}`,
    );
    return 1;
  }
  if (err instanceof CertError) {
    const problems = certProblems(err);
    out(
      errorJson('certificates', 1, 'the certificates are not usable', problems),
      `meshlet: the certificates are not usable:\n${problems.map((p) => `${p.text}\n`).join('')}`,
    );
    return 1;
  }
  // Messages can quote operator input (file names, YAML): keep them printable and bounded.
  const message = sanitize(err instanceof Error ? err.message : String(err), 4000).replace(/\\u000a/g, '\n');
  out(errorJson('failure', 1, message), `meshlet: ${message}\n`);
  return 1;
}

export function certProblems(err: CertError): JsonProblem[] {
  return err.problems.map((p) => ({ path: p.field, file: p.file, rule: p.problem, text: formatCertProblem(p) }));
}
