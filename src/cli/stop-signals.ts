// SIGTERM or SIGINT stops a running meshlet once: Envoy drains its listeners
// for the given time, then everything closes. Shared by `run` and Contrast's
// image mode.
import type { Logger } from '../log.js';
import type { Meshlet } from '../run/service.js';

/** `done` settles with the exit code once the stop is over; `stopping()` says whether a signal came. */
export function stopOnSignals(meshlet: Meshlet, logger: Logger, drainMs: number): { done: Promise<number>; stopping: () => boolean } {
  let stopping = false;
  const done = new Promise<number>((resolve) => {
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
  return { done, stopping: () => stopping };
}
