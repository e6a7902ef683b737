// meshlet's logger: one JSON object per line on stdout, written synchronously
// (src/log/sink.ts) so the last lines before a crash are kept. Components take
// a child logger whose bindings go on each of its lines. The line is what
// pino wrote before (operators' pipelines parse it): "level" as a number,
// "time" in ISO form, "app":"meshlet", the bindings, the call's fields, "msg".
// It is small on purpose: a sidecar pays for every module in every pod.
import { CENSORED, compileRedaction, holdsPrivateKey, redactPaths, serializeError, stringify, UNSERIALIZABLE } from './log/json.js';
import { FdSink, type LogSink } from './log/sink.js';

export type { LogSink } from './log/sink.js';
export { FdSink } from './log/sink.js';

/** The level numbers of meshlet's log lines. */
export const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
export type LevelName = keyof typeof LEVELS;
/** Every name --log-level takes: the levels, and silent for no lines at all. */
export const LEVEL_NAMES = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Paths whose values are private keys; they are censored before a line is written. */
export const REDACT_PATHS = ['key', 'keyPem', 'private_key', '*.key', '*.keyPem', '*.private_key', '*.*.private_key', 'certs.keyPem'];

/**
 * A log method: fields and a message, fields alone, an Error (as `err`; its
 * message is the message unless one is given), or a message alone.
 */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  /** The lowest level written, or silent; setting it changes this logger only, as children copy it when made. */
  level: string;
  isLevelEnabled(level: string): boolean;
  /** A logger that adds `bindings` to each line, after its parent's. */
  child(bindings: Record<string, unknown>): Logger;
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  /** Writes nothing. */
  silent: LogFn;
}

const redaction = compileRedaction(REDACT_PATHS);
/** Binding names that would clash with the line's own level (and pino's option names, which it never wrote). */
const NOT_BINDINGS = new Set(['level', 'serializers', 'formatters', 'customLevels']);
const LINE_START = Object.fromEntries(Object.entries(LEVELS).map(([, n]) => [n, `{"level":${n}`])) as Record<number, string>;

/** A level's number; own keys only, so a name such as "constructor" is not a level. */
const numberOf = (name: string): number | undefined => (Object.hasOwn(LEVELS, name) ? (LEVELS as Record<string, number>)[name] : undefined);

function levelValue(name: string): number {
  if (name === 'silent') return Infinity;
  const n = numberOf(name);
  if (n === undefined) throw new Error(`unknown log level "${name}": use one of ${LEVEL_NAMES.join('|')}`);
  return n;
}

/**
 * `,"key":value` for one top-level field, or '' when it has no JSON (undefined,
 * a function, a symbol). Listed top-level keys are censored whatever they hold;
 * `err` takes the error shape.
 */
function field(key: string, value: unknown, isBinding: boolean): string {
  if (value === undefined || holdsPrivateKey(key)) return '';
  let json: string | undefined;
  try {
    if (key === 'err') value = serializeError(value);
    if (!isBinding && (value === undefined || typeof value === 'function')) return '';
    if (redaction.top.has(key)) json = CENSORED;
    else {
      const below = redaction.below(key);
      json = stringify(below ? redactPaths(value, below) : value);
    }
  } catch {
    // A getter or a cause() that throws: the field says so and the rest of the line is kept.
    json = UNSERIALIZABLE;
  }
  return json === undefined ? '' : `,${JSON.stringify(key)}:${json}`;
}

function fields(obj: object, isBinding: boolean): string {
  let out = '';
  const rec = obj as Record<string, unknown>;
  for (const key in rec) {
    if (!Object.hasOwn(rec, key)) continue;
    if (isBinding && NOT_BINDINGS.has(key)) continue;
    let value: unknown;
    try {
      value = rec[key];
    } catch {
      // A getter that throws: the field says so and the rest of the line is kept.
      out += holdsPrivateKey(key) ? '' : `,${JSON.stringify(key)}:${UNSERIALIZABLE}`;
      continue;
    }
    out += field(key, value, isBinding);
  }
  return out;
}

class MeshletLogger implements Logger {
  private min: number;

  constructor(
    private readonly sink: LogSink,
    level: string,
    /** The bindings of this logger and its parents, as JSON text (`,"app":"meshlet",...`). */
    private readonly bindings: string,
  ) {
    this.min = levelValue(level);
  }

  get level(): string {
    if (this.min === Infinity) return 'silent';
    return (Object.keys(LEVELS) as LevelName[]).find((k) => LEVELS[k] === this.min) as string;
  }

  set level(name: string) {
    this.min = levelValue(name);
  }

  isLevelEnabled(level: string): boolean {
    const n = numberOf(level);
    return n !== undefined && n >= this.min;
  }

  child(bindings: Record<string, unknown>): Logger {
    return new MeshletLogger(this.sink, this.level, this.bindings + safely(() => fields(bindings, true), ''));
  }

  trace(a?: unknown, b?: unknown): void {
    if (this.min <= 10) this.write(10, a, b);
  }
  debug(a?: unknown, b?: unknown): void {
    if (this.min <= 20) this.write(20, a, b);
  }
  info(a?: unknown, b?: unknown): void {
    if (this.min <= 30) this.write(30, a, b);
  }
  warn(a?: unknown, b?: unknown): void {
    if (this.min <= 40) this.write(40, a, b);
  }
  error(a?: unknown, b?: unknown): void {
    if (this.min <= 50) this.write(50, a, b);
  }
  fatal(a?: unknown, b?: unknown): void {
    if (this.min <= 60) this.write(60, a, b);
  }
  silent(): void {}

  /** A log call never throws: a line that cannot be built is written as a line that says so. */
  private write(level: number, a: unknown, b: unknown): void {
    const head = `${LINE_START[level]},"time":"${new Date(Date.now()).toISOString()}"${this.bindings}`;
    const body = safely(() => lineBody(a, b), ',"msg":"[log line could not be serialized]"');
    this.sink.write(`${head}${body}}\n`);
  }
}

function safely(f: () => string, otherwise: string): string {
  try {
    return f();
  } catch {
    return otherwise;
  }
}

/** The call's fields and message: `log.x(fields, msg)`, `log.x(error, msg)` or `log.x(msg)`. */
function lineBody(a: unknown, b: unknown): string {
  let obj: object | undefined;
  let msg: unknown;
  if (typeof a === 'object' && a !== null) {
    msg = b;
    if (a instanceof Error) {
      obj = { err: a };
      if (msg === undefined) msg = a.message;
    } else {
      obj = a;
      const rec = a as { msg?: unknown; err?: { message?: unknown } };
      if (msg === undefined && rec.msg === undefined && rec.err) msg = rec.err.message;
    }
  } else msg = a === undefined ? b : a;
  let out = obj ? fields(obj, false) : '';
  if (msg !== undefined && typeof msg !== 'function') {
    let json: string | undefined;
    if (typeof msg === 'string' && !holdsPrivateKey(msg)) json = JSON.stringify(msg);
    else {
      // Only plain JavaScript callers get here (the types ask for a string); the paths apply as to any field.
      const below = redaction.below('msg');
      json = stringify(below ? redactPaths(msg, below) : msg);
    }
    if (json !== undefined) out += `,"msg":${json}`;
  }
  return out;
}

/** The level: --log-level, else MESHLET_LOG_LEVEL (empty counts as unset), else info. */
export function logLevel(flag: unknown, env: NodeJS.ProcessEnv = process.env): string {
  return typeof flag === 'string' ? flag : env['MESHLET_LOG_LEVEL'] || 'info';
}

/** A root logger writing to any sink (tests collect lines this way). */
export function createLogger(opts: { level?: string; sink: LogSink }): Logger {
  return new MeshletLogger(opts.sink, opts.level ?? 'info', fields({ app: 'meshlet' }, true));
}

/** meshlet's root logger: JSON lines on `fd` (stdout unless given), written synchronously. */
export function createRootLogger(level = 'info', fd = 1): Logger {
  return createLogger({ level, sink: new FdSink(fd) });
}
