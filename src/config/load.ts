// Reads the config from a YAML file, from MESHLET_CONFIG, or from Contrast's
// environment variables when no file is given.
import { InputFileError, readInputFile } from '../fs/read-limited.js';
import type * as Yaml from 'yaml';
import { ConfigInvalidError, type ConfigError } from './errors.js';
import { validateConfig } from './validate.js';
import { contrastToRaw, hasContrastEnv } from './contrast.js';
import type { MeshConfig, SocketAddress } from './model.js';
import { parseResolvConf } from '../dns/resolv.js';
import { fastYaml } from './yaml-fast.js';
import { yamlLibrary } from './yaml-lib.js';
import { admitPinnedFile, hasPins, readPins, sha256Hex, TRUST_ENV, unpinnedFileTrust, type ConfigGate, type ConfigTrust } from './trust.js';
const { existsSync, lstatSync, readFileSync, readlinkSync, realpathSync } = process.getBuiltinModule('node:fs');
const { dirname, resolve: resolvePath } = process.getBuiltinModule('node:path');

export const DEFAULT_CONFIG_PATH = '/etc/meshlet/config.yaml';

export interface LoadedConfig {
  config: MeshConfig;
  /** Where it came from: a file path, "environment (CONTRAST_...)" or "defaults (...)". */
  source: string;
  /** The file to watch for reloads, when the config came from one. */
  file?: string;
  warnings: string[];
  /** The text in use, when it came from a file: what the watcher compares the file with. */
  text?: string;
  /** The directory the file is read (and watched) inside only, as a real path (configDir). */
  within?: string;
  /** What vouches for the config (src/config/trust.ts). */
  trust: ConfigTrust;
  /** For a pinned file: decides which updates may be applied while running. */
  gate?: ConfigGate;
}

/** Enough for anchors reused across routes; far below what a billion-laughs file needs. */
const MAX_ALIAS_COUNT = 100;
/** Nesting beyond this is no config, and deep recursion elsewhere would crash on it. */
const MAX_DEPTH = 64;

export function parseYaml(text: string, source: string): unknown {
  const fail = (rule: string, where = '(yaml)'): never => {
    throw new ConfigInvalidError(source, [{ path: where, value: undefined, rule }]);
  };
  const quick = fastYaml(text);
  if (quick !== undefined) {
    const shape = checkShape(quick);
    if (shape) fail(shape);
    return quick;
  }
  let doc: ReturnType<typeof Yaml.parseDocument>;
  try {
    // logLevel 'error': the library's warnings would go to stderr unescaped (a key can hold control characters).
    doc = yamlLibrary().parseDocument(text, { prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
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
    return fail(
      /alias/i.test(msg)
        ? `YAML aliases expand too much (${msg.split('\n')[0]}); at most ${MAX_ALIAS_COUNT} alias uses are allowed`
        : `YAML could not be read: ${msg.split('\n')[0]}`,
    );
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

/** Fields that are accepted but no longer do anything, with what replaced them. */
function deprecations(raw: unknown, source: string): string[] {
  const proxy = (raw as { proxy?: Record<string, unknown> } | null)?.proxy;
  if (proxy === null || typeof proxy !== 'object' || proxy['adminAddress'] === undefined) return [];
  return [
    `${source}: proxy.adminAddress is ignored: Envoy's admin has no TCP port any more, only the Unix socket envoy/admin.sock next to proxy.xdsSocket (root ` +
      `and the proxy uid); remove the field`,
  ];
}

function parseConfigText(text: string, source: string): { config: MeshConfig; warnings: string[] } {
  const raw = parseYaml(text, source);
  const result = validateConfig(raw);
  if (!result.ok) throw new ConfigInvalidError(source, result.errors);
  return { config: withResolvers(result.config), warnings: deprecations(raw, source) };
}

export function loadConfigText(text: string, source: string): MeshConfig {
  return parseConfigText(text, source).config;
}

/**
 * The hosts DNS may reach in clear: the nameservers of resolv.conf (without
 * a file, glibc's loopback default), plus meshlet's DNS upstreams when DNS
 * capture is on. `meshlet init` and `meshlet run` both read the same file in
 * the pod, so the rules they generate and check agree.
 */
export function withResolvers(config: MeshConfig, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): MeshConfig {
  let text = '';
  try {
    text = read(config.resolvConf);
  } catch {
    // No resolv.conf: glibc asks the local machine, and so does the parser.
  }
  const seen = new Set<string>();
  const resolvers: SocketAddress[] = [];
  for (const r of [...parseResolvConf(text).nameservers, ...(config.dns?.upstreams ?? [])]) {
    const ip = r.ip.split('%')[0] ?? r.ip;
    const key = `${ip}|${r.port}`;
    if (!seen.has(key)) resolvers.push({ ip, port: r.port });
    seen.add(key);
  }
  return { ...config, resolvers };
}

export function loadConfigFile(path: string): MeshConfig {
  return readConfigFile(path).config;
}

/**
 * The directory a config file must lie inside, as a real path: the folder
 * that holds the highest relative symlink on the file's named path, or its own
 * folder when there is none. A ConfigMap volume's key is a relative link into
 * its own `..data`, and a key given a sub-path sits below such a link too, so
 * the volume's root is what this finds; system links above it (/var/run ->
 * /run) are absolute and do not count. A link that leads out of it was
 * planted, and would have meshlet quote another file in its errors.
 * Undefined when the file is not there (the caller says so and reads
 * nothing); any other failure to resolve it refuses the file.
 */
export function configDir(path: string): string | undefined {
  const abs = resolvePath(path);
  try {
    let root = dirname(abs);
    let cur = '';
    for (const part of abs.split('/').filter((p) => p !== '')) {
      cur = `${cur}/${part}`;
      if (lstatSync(cur).isSymbolicLink() && !readlinkSync(cur).startsWith('/')) {
        root = dirname(cur);
        break;
      }
    }
    return realpathSync(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigInvalidError(path, [{ path: '(file)', value: path, rule: `cannot resolve where it is (${(err as Error).message})` }]);
  }
}

/** The file's text, read only inside `within`; not read at all when `within` is undefined (the file is not there). */
function readConfigFile(path: string, within = configDir(path)): { config: MeshConfig; warnings: string[]; text: string } {
  let text: string;
  try {
    if (within === undefined) throw new InputFileError(path, 'ENOENT', 'not found');
    text = readInputFile(path, undefined, within);
  } catch (err) {
    if (!(err instanceof InputFileError)) throw err;
    const why = err.code === 'ENOENT' ? 'file not found; pass --config FILE or set CONTRAST_* variables' : err.message.slice(path.length + 2);
    throw new ConfigInvalidError(path, [{ path: '(file)', value: path, rule: why }]);
  }
  return { ...parseConfigText(text, path), text };
}

export const NO_CONFIG_SOURCE = `defaults (no --config, no ${DEFAULT_CONFIG_PATH}, no CONTRAST_* variables)`;

/**
 * MESHLET_CONFIG (the YAML in the environment) if set; the config file if one
 * is given, checked against MESHLET_CONFIG_SHA256 / MESHLET_CONFIG_PUBKEY when
 * set (src/config/trust.ts); with a pin and no file given, the default file,
 * which must exist (pins are for a file); otherwise Contrast's environment variables
 * if any is set; otherwise the default file path; and when that does not
 * exist either, Contrast's meaning of a pod without mesh annotations (its
 * variables are only set for non-empty annotations): mTLS on every inbound
 * port, no egress routes.
 */
export function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const inEnv = env[TRUST_ENV.config];
  if (inEnv !== undefined) return loadFromEnvYaml(inEnv, path, env);
  if (path !== undefined) return loadFile(path, env);
  // Pins are for a file: with them, the file must be there (never Contrast's variables or the defaults instead).
  if (env[TRUST_ENV.sha256] !== undefined || env[TRUST_ENV.pubkey] !== undefined) {
    if (hasContrastEnv(env)) {
      throw new ConfigInvalidError('environment', [
        {
          path: `${TRUST_ENV.sha256} / ${TRUST_ENV.pubkey}`,
          value: "Contrast's variables (CONTRAST_* or EDG_*)",
          rule:
            "pin a config file, but none is given and Contrast's variables are set: give the config one way only (--config FILE with the pins, " +
            "or Contrast's variables without them)",
        },
      ]);
    }
    return loadFile(DEFAULT_CONFIG_PATH, env);
  }
  if (hasContrastEnv(env)) {
    const { raw, warnings, errors, source } = contrastToRaw(env);
    const result = errors.length === 0 ? validateConfig(raw) : { ok: false as const, errors: [] };
    if (errors.length > 0 || !result.ok) throw new ConfigInvalidError(source, [...errors, ...(result.ok ? [] : result.errors)]);
    return {
      config: withResolvers(result.config),
      source,
      warnings,
      trust: { mode: 'policy-env', detail: "in the pod's environment, which its policy covers; a change rolls the pod", reloads: 'refused' },
    };
  }
  if (!existsSync(DEFAULT_CONFIG_PATH)) {
    const result = validateConfig({});
    if (!result.ok) throw new ConfigInvalidError(NO_CONFIG_SOURCE, result.errors);
    return {
      config: withResolvers(result.config),
      source: NO_CONFIG_SOURCE,
      warnings: [`${NO_CONFIG_SOURCE}: using Contrast's meaning of a pod without mesh annotations, mTLS on every inbound port and no egress routes`],
      trust: { mode: 'defaults', detail: "meshlet's built-in defaults", reloads: 'refused' },
    };
  }
  return loadFile(DEFAULT_CONFIG_PATH, env);
}

/** A config file: checked against the pins when there are any. */
function loadFile(path: string, env: NodeJS.ProcessEnv): LoadedConfig {
  const pins = readPins(env);
  // Worked out once: the file is read, and later watched, inside this directory only.
  const within = configDir(path);
  if (!hasPins(pins)) {
    const trust = unpinnedFileTrust(path);
    const { config, warnings, text } = readConfigFile(path, within);
    const volume = trust.mode === 'volume' ? [`${path}: ${trust.detail}`] : [];
    return { config, source: path, file: path, text, ...(within ? { within } : {}), warnings: [...volume, ...warnings], trust };
  }
  const { text, gate, trust } = admitPinnedFile(path, pins, within);
  const parsed = parseConfigText(text, path);
  // With a key and no hash pinned, a new pod takes any signed config at or above the minimum: say so when there is none.
  const anySigned =
    pins.key && pins.sha256 === undefined && pins.minVersion === 0
      ? [
          `${path}: ${TRUST_ENV.pubkey} without ${TRUST_ENV.sha256} or a ${TRUST_ENV.minVersion} of 1 or more: a new pod starts on any config ` +
            `ever signed with this key; set ${TRUST_ENV.minVersion} to the lowest version still acceptable`,
        ]
      : [];
  return { ...parsed, warnings: [...anySigned, ...parsed.warnings], source: path, file: path, text, ...(within ? { within } : {}), trust, gate };
}

/** MESHLET_CONFIG: the YAML itself in the environment, covered by the pod's policy. */
function loadFromEnvYaml(text: string, path: string | undefined, env: NodeJS.ProcessEnv): LoadedConfig {
  const source = `environment (${TRUST_ENV.config})`;
  const clash = [
    path !== undefined ? `--config ${path}` : undefined,
    hasContrastEnv(env) ? 'CONTRAST_*/EDG_* variables' : undefined,
    env[TRUST_ENV.sha256] !== undefined ? TRUST_ENV.sha256 : undefined,
    env[TRUST_ENV.pubkey] !== undefined ? TRUST_ENV.pubkey : undefined,
  ].filter((x): x is string => x !== undefined);
  if (clash.length > 0) {
    throw new ConfigInvalidError(source, [
      {
        path: TRUST_ENV.config,
        value: clash.join(', '),
        rule: `is set together with ${clash.join(' and ')}; give the config one way only (the pins apply to a file, not to ${TRUST_ENV.config})`,
      },
    ]);
  }
  if (text.trim() === '')
    throw new ConfigInvalidError(source, [{ path: TRUST_ENV.config, value: text, rule: 'is set but empty; unset it, or give the YAML config' }]);
  return {
    ...parseConfigText(text, source),
    source,
    trust: {
      mode: 'policy-env',
      detail: "the YAML is in the pod's environment, which its policy covers; a change rolls the pod",
      sha256: sha256Hex(text),
      reloads: 'refused',
    },
  };
}
