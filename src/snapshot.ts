// The entry of meshlet's V8 startup snapshot, dist/meshlet.blob, which
// scripts/snapshot.mjs builds from this file after the bundle (`npm run
// build`). `node --snapshot-blob dist/meshlet.blob <script> <command> …` then
// starts with the CLI and everything `meshlet run` loads before it spawns
// Envoy already in the heap: no module is resolved, read, compiled or
// linked, and no top level runs. The image starts meshlet this way (its
// /usr/local/bin/meshlet, scripts/install-snapshot.sh); dist/src/cli.js is the
// same CLI without the snapshot.
//
// The blob is built without V8's code cache: functions compile on first call
// from the source kept in the snapshot, as they do from a module. With the
// cache the blob is 9 MB instead of 4, and node keeps the blob in memory
// while it runs.
//
// Build time runs the top levels of those modules once, and their state is
// what every start begins with. So a top level must not read anything of the
// process it will serve (its environment, arguments, ids, clocks, streams,
// host): while the modules load, those reads throw (src/snapshot-guard.ts)
// and the build fails naming the read. The modules
// meshlet loads later (each dynamic import) are in the bundle too, but their
// top levels run at run time, as from dist/src/cli.js. node:http cannot be in
// a snapshot, so its users stay among those.
import { guardProcess } from './snapshot-guard.js';

interface Snapshot {
  setDeserializeMainFunction(main: () => void): void;
  isBuildingSnapshot(): boolean;
}
declare const MESHLET_V8_FLAGS: string;
const global = globalThis as { __meshletModuleUrl?: string };

const v8 = process.getBuiltinModule('node:v8');
const { pathToFileURL } = process.getBuiltinModule('node:url');
const path = process.getBuiltinModule('node:path');
const snapshot = (v8 as unknown as { startupSnapshot: Snapshot }).startupSnapshot;

if (!snapshot.isBuildingSnapshot()) throw new Error('src/snapshot.ts is the entry of `node --build-snapshot` (scripts/snapshot.mjs), not a script to run');

/** The URL modules see as import.meta.url (scripts/snapshot.mjs defines it so): dist/src/cli.js beside the blob. */
function moduleUrl(blob: string): string {
  return pathToFileURL(path.resolve(path.dirname(blob), 'src', 'cli.js')).href;
}

/** The blob this process started from, as node was given it. */
function blobPath(): string | undefined {
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--snapshot-blob') return argv[i + 1];
    if (a.startsWith('--snapshot-blob=')) return a.slice('--snapshot-blob='.length);
  }
  return undefined;
}

// argv[1] is this file, bundled beside the blob (dist/snapshot.cjs).
global.__meshletModuleUrl = moduleUrl(process.argv[1] ?? '');
const restore = guardProcess();
// The CLI and `meshlet run`'s modules: what a sidecar start loads before it spawns Envoy. (The bundle is a
// plain script, as the snapshot builder runs one: no top-level await.)
import('./cli/main.js')
  .then(async ({ COMMANDS, runCli }) => {
    const run = COMMANDS['run'];
    if (!run) throw new Error('src/snapshot.ts: no run command');
    await run();
    // Loaded while guarded, like every module here; run once the guard is off (it reads files and the clock).
    const { rehearseStart } = await import('./snapshot-rehearsal.js');
    restore();
    // Built-ins the run path loads only after it has handed Envoy its bootstrap, but every start loads: node:crypto
    // (the certificates' checks, the snapshot's hashes) and node:dns (the debug server's listen on an address). Loaded
    // from a start, each compiles from source, as node's cached code for its built-ins does not fit meshlet's V8
    // flags (src/cli.ts): node:crypto alone took 7-14 ms there, on the way to Envoy's first answer. Here they are in the
    // heap already. Both are among the built-ins node supports in a user snapshot (it warns about any other, and the
    // build then fails on that output); node:http is not, and its users stay loaded at run time.
    process.getBuiltinModule('node:crypto');
    process.getBuiltinModule('node:dns');
    // What a start runs, run once here, so that the blob keeps its bytecode (src/snapshot-rehearsal.ts).
    const rehearsalDir = process.env['MESHLET_SNAPSHOT_REHEARSAL'];
    if (!rehearsalDir) throw new Error('MESHLET_SNAPSHOT_REHEARSAL is not set: build the snapshot with scripts/install-snapshot.sh');
    await rehearseStart(rehearsalDir);
    snapshot.setDeserializeMainFunction(() => {
      // src/cli.ts says why these are set at run time rather than on node's command line.
      for (const flag of MESHLET_V8_FLAGS.split(' ')) v8.setFlagsFromString(flag);
      const blob = blobPath();
      if (blob !== undefined) global.__meshletModuleUrl = moduleUrl(blob);
      // The launcher passes a script path first (as a `#!` line does); a first word with no slash is the command.
      void runCli(process.argv.slice(process.argv[1]?.includes('/') ? 2 : 1));
    });
  })
  .catch((err: unknown) => {
    restore();
    process.stderr.write(`meshlet snapshot build: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
