// Writes test/log/pino-fixtures.json: what pino wrote for each case in
// cases.ts, with the options meshlet's src/log.ts gave it before meshlet had
// its own logger. It needs pino and the pino-based src/log.ts, so it ran once,
// at the commit that added it (`npx tsx test/log/make-pino-fixtures.ts`);
// to run it again, check that commit's src/log.ts out and `npm install pino@10.4.0`.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createRootLogger } from '../../src/log.js';
import type { CaseLogger } from './cases.js';
import { runCases } from './run-cases.js';

const require = createRequire(import.meta.url);
const pinoVersion = (require('pino/package.json') as { version: string }).version;
const cases = runCases((level, fd) => createRootLogger(level, fd) as unknown as CaseLogger);
const fixture = {
  note: `Lines pino ${pinoVersion} wrote on node ${process.version} through meshlet's pino-based createRootLogger; made by test/log/make-pino-fixtures.ts`,
  cases,
};
writeFileSync(new URL('./pino-fixtures.json', import.meta.url), JSON.stringify(fixture, null, 2) + '\n');
console.log(`${Object.keys(cases).length} cases written`);
