// `meshlet contrast [ENVOY ARGS]` (also: meshlet with no command, or with
// arguments that start with "-", as Contrast's injected sidecar passes them):
// one container doing what Contrast's service-mesh sidecar does, in its
// place. It reads the CONTRAST_* variables, installs the rules, starts
// meshlet and Envoy (ENVOY ARGS passed on, e.g. "-l debug") after deleting
// the pod VM's default-deny rule, and writes the ready file the sidecar's
// startupProbe (`test -f /ready`) waits for only once meshlet's readiness is
// true (Contrast writes it before Envoy listens).
import { loadConfig } from '../config/load.js';
import { findEnvoy } from '../envoy/binary.js';
import { backendFromEnv, execFileRunner, runInit } from '../iptables/index.js';
import { removeDefaultDeny } from '../iptables/default-deny.js';
import { createRootLogger, logLevel as meshletLogLevel, type Logger } from '../log.js';
import { writeFingerprint } from '../run/rules-check.js';
import { Meshlet } from '../run/service.js';
import { ENVOY_LOG_LEVELS, UsageError } from './usage.js';
import { stopOnSignals } from './stop-signals.js';
const { readFile, rename, writeFile } = process.getBuiltinModule('node:fs/promises');
const path = process.getBuiltinModule('node:path');

export const DEFAULT_READY_FILE = '/ready';
const READY_POLL_MS = 250;

/** Envoy's -l/--log-level goes to the supervisor (which sets the flag once); everything else is passed on. */
export function splitEnvoyArgs(args: readonly string[]): { logLevel?: string; rest: string[] } {
  const rest: string[] = [];
  let logLevel: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '-l' || a === '--log-level') {
      const v = args[i + 1];
      if (v === undefined) throw new UsageError(`${a} needs a level (trace, debug, info, warning, error, critical, off)`);
      logLevel = v;
      i++;
    } else if (a.startsWith('--log-level=')) logLevel = a.slice('--log-level='.length);
    else rest.push(a);
  }
  return { ...(logLevel === undefined ? {} : { logLevel }), rest };
}

async function legacyTables(): Promise<string[]> {
  try {
    return (await readFile('/proc/net/ip_tables_names', 'utf8')).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** Writes the ready file atomically, so a probe never sees a half-made one. */
async function writeReadyFile(file: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await writeFile(tmp, '', { mode: 0o644, flag: 'wx' });
  await rename(tmp, file);
}

/** Polls readiness until it is true, or until `stopped()`; logs what is missing now and then. */
async function untilReady(meshlet: Meshlet, log: Logger, stopped: () => boolean): Promise<boolean> {
  let last = '';
  while (!stopped()) {
    const r = await meshlet.ready();
    if (r.ready) return true;
    const why = Object.entries(r.checks)
      .filter(([, c]) => !c.ok)
      .map(([k, c]) => `${k}: ${c.detail}`)
      .join('; ');
    // Only what changed: a probe loop must not flood the log.
    if (why !== last) log.info({ waitingFor: why }, 'not ready yet');
    last = why;
    await new Promise((res) => setTimeout(res, READY_POLL_MS));
  }
  return false;
}

export async function contrastEntrypoint(envoyArgs: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { logLevel, rest } = splitEnvoyArgs(envoyArgs);
  // Checked before anything is installed: a typo must not leave half a pod.
  const drainSeconds = Number(env['MESHLET_DRAIN_SECONDS'] ?? '5');
  if (!Number.isFinite(drainSeconds) || drainSeconds < 0)
    throw new UsageError(`MESHLET_DRAIN_SECONDS must be a number of seconds, not "${env['MESHLET_DRAIN_SECONDS']}"`);
  if (logLevel !== undefined && !ENVOY_LOG_LEVELS.includes(logLevel)) {
    throw new UsageError(`--log-level must be one of ${ENVOY_LOG_LEVELS.join('|')} (Envoy's level, as in Contrast's -l debug), not "${logLevel}"`);
  }
  const logger = createRootLogger(meshletLogLevel(undefined, env));
  const loaded = loadConfig(undefined, env);
  for (const w of loaded.warnings) logger.warn({ source: loaded.source }, w);
  const { config } = loaded;
  const backend = backendFromEnv(env);
  await runInit(config, { dryRun: false }, { runner: execFileRunner, backend, log: logger.child({ component: 'iptables' }) });
  await writeFingerprint(config);
  // After the rules, as Contrast does: from here, inbound connections to
  // intercepted ports go to Envoy's port (and are dropped until it listens).
  // Not later: the rule drops new loopback connections too, and meshlet reads
  // Envoy's readiness over loopback.
  await removeDefaultDeny({ runner: execFileRunner, legacyTables, log: logger.child({ component: 'iptables' }) });
  const meshlet = new Meshlet({
    loaded,
    logger,
    envoyPath: findEnvoy({ env }),
    iptables: { runner: execFileRunner, backend },
    ...(logLevel === undefined ? {} : { envoyLogLevel: logLevel }),
    ...(rest.length > 0 ? { envoyArgs: rest } : {}),
  });
  await meshlet.start();
  const readyFile = env['MESHLET_READY_FILE'] || DEFAULT_READY_FILE;
  const { done, stopping } = stopOnSignals(meshlet, logger, drainSeconds * 1000);
  if (await untilReady(meshlet, logger, stopping)) {
    await writeReadyFile(readyFile);
    logger.info({ file: readyFile }, 'ready file written');
  }
  return done;
}
