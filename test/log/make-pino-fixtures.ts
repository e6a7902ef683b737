// Writes test/log/pino-fixtures.json: what pino wrote for each case in
// cases.ts, with the options meshlet gave pino before it had its own logger
// (the same base, redaction, ISO time and synchronous fd destination). meshlet
// no longer depends on pino, so to run it again:
//   npm install --no-save pino@10.4.0 && npx tsx test/log/make-pino-fixtures.ts
// The fixtures in the repository were made this way with pino 10.4.0 on
// node 26.12.1, while pino was still meshlet's logger.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { REDACT_PATHS } from '../../src/log.js';
import type { CaseLogger } from './cases.js';
import { runCases } from './run-cases.js';

interface PinoModule {
  pino: ((opts: object, dest: unknown) => CaseLogger) & {
    destination(opts: { fd: number; sync: boolean }): unknown;
    stdTimeFunctions: { isoTime: () => string };
  };
}

// A name in a variable: the type checker must not look for a package that is not installed.
const name = 'pino';
const { pino } = (await import(name)) as PinoModule;
const version = (createRequire(import.meta.url)(`${name}/package.json`) as { version: string }).version;
const cases = runCases((level, fd) =>
  pino(
    { level, base: { app: 'meshlet' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd, sync: true }),
  ),
);
const fixture = {
  note: `Lines pino ${version} wrote on node ${process.version} with meshlet's pino options; made by test/log/make-pino-fixtures.ts`,
  cases,
};
writeFileSync(new URL('./pino-fixtures.json', import.meta.url), JSON.stringify(fixture, null, 2) + '\n');
console.log(`${Object.keys(cases).length} cases written`);
