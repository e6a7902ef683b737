// Reads the config from a YAML file, or from Contrast's environment variables
// when no file is given.
import { existsSync } from 'node:fs';
import { InputFileError, readInputFile } from '../fs/read-limited.js';
import { parseDocument } from 'yaml';
import { ConfigInvalidError, type ConfigError } from './errors.js';
import { validateConfig } from './validate.js';
import { contrastToRaw, hasContrastEnv } from './contrast.js';
import type { MeshConfig } from './model.js';

export const DEFAULT_CONFIG_PATH = '/etc/meshlet/config.yaml';

export interface LoadedConfig {
  config: MeshConfig;
  /** Where it came from: a file path, "environment (CONTRAST_...)" or "defaults (...)". */
  source: string;
  /** The file to watch for reloads, when the config came from one. */
  file?: string;
  warnings: string[];
}

/** Enough for anchors reused across routes; far below what a billion-laughs file needs. */
const MAX_ALIAS_COUNT = 100;
/** Nesting beyond this is no config, and deep recursion elsewhere would crash on it. */
const MAX_DEPTH = 64;

export function parseYaml(text: string, source: string): unknown {
  const fail = (rule: string, where = '(yaml)'): never => {
    throw new ConfigInvalidError(source, [{ path: where, value: undefined, rule }]);
  };
  let doc: ReturnType<typeof parseDocument>;
  try {
    // logLevel 'error': the library's warnings would go to stderr unescaped (a key can hold control characters).
    doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
  } catch (err) {
    return fail(err instanceof RangeError ? `YAML nested too deeply to parse (${err.message})` : `YAML parser failed: ${(err as Error).message}`);
  }
  if (doc.errors.length > 0) {
    const errors: ConfigError[] = doc.errors.map((e) => ({
      path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '(yaml)',
      value: undefined,
      rule: `YAML syntax: ${e.message.split('\n')[0] ?? e.code}`,
    }));
    throw new ConfigInvalidError(source, errors);
  }
  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown;
  } catch (err) {
    const msg = (err as Error).message;
    return fail(/alias/i.test(msg) ? `YAML aliases expand too much (${msg.split('\n')[0]}); at most ${MAX_ALIAS_COUNT} alias uses are allowed` : `YAML could not be read: ${msg.split('\n')[0]}`);
  }
  const shape = checkShape(js);
  if (shape) fail(shape);
  return js;
}

/**
 * Refuses a YAML alias that refers to its own ancestor (a cycle, which no
 * config means and which would loop every consumer) and nesting deeper than
 * MAX_DEPTH. Iterative, so a huge input cannot exhaust the stack here.
 */
function checkShape(root: unknown): string | undefined {
  const stack: { node: unknown; depth: number; exit?: true }[] = [{ node: root, depth: 0 }];
  const onPath = new Set<unknown>();
  let visited = 0;
  while (stack.length > 0) {
    const top = stack.pop()!;
    if (top.exit) {
      onPath.delete(top.node);
      continue;
    }
    const n = top.node;
    if (n === null || typeof n !== 'object') continue;
    if (onPath.has(n)) return 'YAML alias refers to a node that contains it (a cycle); a config cannot be circular';
    if (top.depth > MAX_DEPTH) return `YAML nested deeper than ${MAX_DEPTH} levels; no meshlet config is that deep`;
    if (++visited > 2_000_000) return 'YAML document has too many nodes';
    onPath.add(n);
    stack.push({ node: n, depth: top.depth, exit: true });
    const children = n instanceof Map ? [...n.keys(), ...n.values()] : Array.isArray(n) ? n : Object.values(n);
    for (const c of children) if (c !== null && typeof c === 'object') stack.push({ node: c, depth: top.depth + 1 });
  }
  return undefined;
}

export function loadConfigText(text: string, source: string): MeshConfig {
  const raw = parseYaml(text, source);
  const result = validateConfig(raw);
  if (!result.ok) throw new ConfigInvalidError(source, result.errors);
  return result.config;
}

export function loadConfigFile(path: string): MeshConfig {
  let text: string;
  try {
    text = readInputFile(path);
  } catch (err) {
    if (!(err instanceof InputFileError)) throw err;
    const why = err.code === 'ENOENT' ? 'file not found; pass --config FILE or set CONTRAST_* variables' : err.message.slice(path.length + 2);
    throw new ConfigInvalidError(path, [{ path: '(file)', value: path, rule: why }]);
  }
  return loadConfigText(text, path);
}

export const NO_CONFIG_SOURCE = `defaults (no --config, no ${DEFAULT_CONFIG_PATH}, no CONTRAST_* variables)`;

/**
 * The config file if one is given; otherwise Contrast's environment variables
 * if any is set; otherwise the default file path; and when that does not
 * exist either, Contrast's meaning of a pod without mesh annotations (its
 * variables are only set for non-empty annotations): mTLS on every inbound
 * port, no egress routes.
 */
export function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  if (path !== undefined) return { config: loadConfigFile(path), source: path, file: path, warnings: [] };
  if (hasContrastEnv(env)) {
    const { raw, warnings, errors, source } = contrastToRaw(env);
    const result = errors.length === 0 ? validateConfig(raw) : { ok: false as const, errors: [] };
    if (errors.length > 0 || !result.ok) throw new ConfigInvalidError(source, [...errors, ...(result.ok ? [] : result.errors)]);
    return { config: result.config, source, warnings };
  }
  if (!existsSync(DEFAULT_CONFIG_PATH)) {
    const result = validateConfig({});
    if (!result.ok) throw new ConfigInvalidError(NO_CONFIG_SOURCE, result.errors);
    return { config: result.config, source: NO_CONFIG_SOURCE, warnings: [`${NO_CONFIG_SOURCE}: using Contrast's meaning of a pod without mesh annotations, mTLS on every inbound port and no egress routes`] };
  }
  return { config: loadConfigFile(DEFAULT_CONFIG_PATH), source: DEFAULT_CONFIG_PATH, file: DEFAULT_CONFIG_PATH, warnings: [] };
}
