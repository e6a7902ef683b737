// meshlet run: serve xDS, write the bootstrap, supervise Envoy, watch files.
import { loadConfig } from '../config/load.js';
import { findEnvoy } from '../envoy/binary.js';
import { createRootLogger, logLevel } from '../log.js';
import { Meshlet } from '../run/service.js';
import { backendFromEnv, execFileRunner } from '../iptables/index.js';
import type { Command } from './main.js';

export const runCommand: Command = {
  options: {
    envoy: { type: 'string' },
    'no-envoy': { type: 'boolean' },
    sotw: { type: 'boolean' },
    'skip-iptables-check': { type: 'boolean' },
    'debug-envoy-config-dump': { type: 'boolean' },
    'node-id': { type: 'string' },
    'envoy-log-level': { type: 'string' },
    'drain-seconds': { type: 'string' },
  },
  async run(values) {
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
      ...(typeof values['envoy-log-level'] === 'string' ? { envoyLogLevel: values['envoy-log-level'] } : {}),
    });
    await meshlet.start();
    const drainMs = Number(values['drain-seconds'] ?? '5') * 1000;
    return new Promise<number>((resolve) => {
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal, drainMs }, 'stopping: draining Envoy');
        meshlet.stop(drainMs).then(
          () => resolve(0),
          (err: unknown) => {
            logger.error({ err: (err as Error).message }, 'stop failed');
            resolve(1);
          },
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
  },
};
