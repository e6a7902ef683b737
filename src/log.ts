// One pino root logger, JSON on stdout through a synchronous destination so the
// last lines before a crash are kept. Components take a child logger.
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Paths whose values are private keys; pino replaces them before writing. */
export const REDACT_PATHS = ['key', 'keyPem', 'private_key', '*.key', '*.keyPem', '*.private_key', '*.*.private_key', 'certs.keyPem'];

/** The level: --log-level, else MESHLET_LOG_LEVEL (empty counts as unset), else info. */
export function logLevel(flag: unknown, env: NodeJS.ProcessEnv = process.env): string {
  return typeof flag === 'string' ? flag : env['MESHLET_LOG_LEVEL'] || 'info';
}

export function createRootLogger(level = 'info', fd = 1): Logger {
  return pino(
    {
      level,
      base: { app: 'meshlet' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ fd, sync: true }),
  );
}
