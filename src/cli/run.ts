// meshlet run: serve xDS, write the bootstrap, supervise Envoy, watch files.
import { loadConfig } from '../config/load.js';
import { findEnvoy } from '../envoy/binary.js';
import { createRootLogger, logLevel } from '../log.js';
import { Meshlet } from '../run/service.js';
import { ENVOY_LOG_LEVELS, UsageError } from './usage.js';
import { stopOnSignals } from './stop-signals.js';
// Not iptables/index.js: it loads every iptables module, and these two are all `run` needs before Envoy starts.
import { backendFromEnv } from '../iptables/backend.js';
import { execFileRunner } from '../iptables/runner.js';
import type { Command } from './main.js';
import type { Logger } from '../log.js';
import { endEarlyEnvoy, takeEarlyEnvoy } from '../envoy/early.js';

export const runCommand: Command = {
  async run(values) {
    // First, so that the variable is gone from the environment Envoy and every other child inherits.
    const taken = takeEarlyEnvoy();
    let meshlet: Prepared;
    try {
      meshlet = prepare(values, taken);
    } catch (err) {
      // The launcher's Envoy waits for a bootstrap that will not come: end it now, not at exit.
      if (taken.early) endEarlyEnvoy(taken.early);
      throw err;
    }
    await meshlet.meshlet.start();
    return stopOnSignals(meshlet.meshlet, meshlet.logger, meshlet.drainMs).done;
  },
};

function drainMs(values: Parameters<Command['run']>[0]): number {
  const drainText = (values['drain-seconds'] as string | undefined) ?? '5';
  const drainSeconds = /^[0-9]+(\.[0-9]+)?$/.test(drainText) ? Number(drainText) : NaN;
  if (!(drainSeconds <= 3600)) throw new UsageError(`--drain-seconds must be a number of seconds from 0 to 3600, not "${drainText}"`);
  return drainSeconds * 1000;
}

interface Prepared {
  meshlet: Meshlet;
  logger: Logger;
  drainMs: number;
}

/** Checks the flags, loads the config and makes the Meshlet; nothing has started yet. */
function prepare(values: Parameters<Command['run']>[0], taken: ReturnType<typeof takeEarlyEnvoy>): Prepared {
  const envoyLogLevel = values['envoy-log-level'] as string | undefined;
  if (envoyLogLevel !== undefined && !ENVOY_LOG_LEVELS.includes(envoyLogLevel)) {
    throw new UsageError(`--envoy-log-level must be one of ${ENVOY_LOG_LEVELS.join('|')}, not "${envoyLogLevel}"`);
  }
  const drain = drainMs(values);
  const logger = createRootLogger(logLevel(values['log-level']));
  const loaded = loadConfig(values['config'] as string | undefined);
  for (const w of loaded.warnings) logger.warn({ source: loaded.source }, w);
  const noEnvoy = values['no-envoy'] === true;
  const envoyPath = noEnvoy ? undefined : findEnvoy({ flag: values['envoy'] as string | undefined });
  const meshlet = new Meshlet({
    loaded,
    logger,
    noEnvoy,
    delta: values['sotw'] !== true,
    skipIptablesCheck: values['skip-iptables-check'] === true,
    envoyConfigDump: values['debug-envoy-config-dump'] === true,
    iptables: { runner: execFileRunner, backend: backendFromEnv() },
    ...(envoyPath ? { envoyPath } : {}),
    ...(typeof values['node-id'] === 'string' ? { nodeId: values['node-id'] } : {}),
    ...(envoyLogLevel !== undefined ? { envoyLogLevel } : {}),
    ...(taken.early ? { early: taken.early } : {}),
  });
  if (taken.problem) logger.warn({ problem: taken.problem }, 'left alone an Envoy the launcher did not start');
  return { meshlet, logger, drainMs: drain };
}
