// Reads the config from a YAML file, or from Contrast's environment variables
// when no file is given.
import { existsSync, readFileSync } from 'node:fs';
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

export function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const errors: ConfigError[] = doc.errors.map((e) => ({
      path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '(yaml)',
      value: undefined,
      rule: `YAML syntax: ${e.message.split('\n')[0] ?? e.code}`,
    }));
    throw new ConfigInvalidError(source, errors);
  }
  return doc.toJS() as unknown;
}

/** Fields that are accepted but no longer do anything, with what replaced them. */
function deprecations(raw: unknown, source: string): string[] {
  const proxy = (raw as { proxy?: Record<string, unknown> } | null)?.proxy;
  if (proxy === null || typeof proxy !== 'object' || proxy['adminAddress'] === undefined) return [];
  return [`${source}: proxy.adminAddress is ignored: Envoy's admin has no TCP port any more, only the Unix socket envoy/admin.sock next to proxy.xdsSocket (root and the proxy uid); remove the field`];
}

function parseConfigText(text: string, source: string): { config: MeshConfig; warnings: string[] } {
  const raw = parseYaml(text, source);
  const result = validateConfig(raw);
  if (!result.ok) throw new ConfigInvalidError(source, result.errors);
  return { config: result.config, warnings: deprecations(raw, source) };
}

export function loadConfigText(text: string, source: string): MeshConfig {
  return parseConfigText(text, source).config;
}

export function loadConfigFile(path: string): MeshConfig {
  return readConfigFile(path).config;
}

function readConfigFile(path: string): { config: MeshConfig; warnings: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found; pass --config FILE or set CONTRAST_* variables' : (err as Error).message;
    throw new ConfigInvalidError(path, [{ path: '(file)', value: path, rule: why }]);
  }
  return parseConfigText(text, path);
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
  if (path !== undefined) return { ...readConfigFile(path), source: path, file: path };
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
  return { ...readConfigFile(DEFAULT_CONFIG_PATH), source: DEFAULT_CONFIG_PATH, file: DEFAULT_CONFIG_PATH };
}
