// Cold-start split of meshlet run, measured from outside meshlet's code: this
// script performs the same steps `meshlet run` does, in order, and prints when
// each ended (ms since the process started) and the RSS after it.
//   MESHLET_V8_FLAGS=… node [--expose-gc] dist/bench/probes/startup-phases.js CONFIG
// With --expose-gc, RSS is read after a full GC, so it is what each phase
// keeps, not its garbage; the GCs cost time, so that run is for memory only.
// First, as src/cli.ts does: the V8 flags meshlet sets at run time, handed
// over by the bench (bench/lib/meshlet.ts launcher()).
const { setFlagsFromString } = process.getBuiltinModule('node:v8');
const v8Flags = process.env['MESHLET_V8_FLAGS'];
if (v8Flags === undefined) throw new Error('MESHLET_V8_FLAGS is not set: bench/ starts this probe');
for (const flag of v8Flags.split(' ')) setFlagsFromString(flag);
// The other built-ins after them, as meshlet loads them.
const { openSync } = process.getBuiltinModule('node:fs');
const { performance } = process.getBuiltinModule('node:perf_hooks');

interface Mark {
  phase: string;
  at: number;
  rssMiB: number;
  heapMiB: number;
}

const marks: Mark[] = [];
const gc = (globalThis as { gc?: () => void }).gc;
function mark(phase: string): void {
  const at = performance.now();
  gc?.();
  const mem = process.memoryUsage();
  marks.push({ phase, at, rssMiB: mem.rss / 2 ** 20, heapMiB: mem.heapUsed / 2 ** 20 });
}

mark('node');
const configPath = process.argv[2];
if (!configPath) throw new Error('usage: startup-phases.js CONFIG');
// Node's own modules the run path takes first (its ADS server is meshlet's HTTP/2 on node:net, the debug
// endpoints node:http), then meshlet's logger, so the module phase splits by what costs.
process.getBuiltinModule('node:net');
process.getBuiltinModule('node:http');
mark('builtins');
await import('../../src/log.js');
mark('log');
// No yaml and no zod: meshlet reads a plain block config without the YAML library (src/config/yaml-fast.ts), and
// checks a valid one with the validator generated from the zod schema; both libraries load only for other inputs.
await import('../../src/cli/main.js');
await import('../../src/cli/run.js');
const { Meshlet } = await import('../../src/run/service.js');
const { loadConfig } = await import('../../src/config/load.js');
const { loadCerts } = await import('../../src/certs/index.js');
const { snapshotFor } = await import('../../src/run/snapshot-for.js');
const { createRootLogger } = await import('../../src/log.js');
const { TYPE } = await import('../../src/xds/protos.js');
const { messageInfo } = await import('../../src/xds/wire.js');
const { adsMethods } = await import('../../src/xds/service.js');
mark('meshlet modules');

// The generated encoder table, parsed per type on first use in meshlet; forced here so it is its own phase.
for (const t of Object.values(TYPE)) messageInfo(t);
adsMethods({ sotw: () => undefined, delta: () => undefined });
mark('encoders');

const loaded = loadConfig(configPath);
const certs = loadCerts(loaded.config.certs);
snapshotFor(loaded.config, certs);
mark('config');

const devnull = openSync('/dev/null', 'a');
const meshlet = new Meshlet({ loaded, logger: createRootLogger('warn', devnull), noEnvoy: true, skipIptablesCheck: true });
await meshlet.start();
mark('serving');

process.stdout.write(`${JSON.stringify({ marks })}\n`);
await meshlet.stop(0);
process.exit(0);
