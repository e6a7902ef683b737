// Snapshot build time for a config, outside meshlet: parse and validate, then
// build the resources and the snapshot (encode and hash every resource), cold
// once and then warm.
//   MESHLET_V8_FLAGS=… node dist/bench/probes/snapshot-build.js CONFIG WARM_REPS
// First, as src/cli.ts does: the V8 flags meshlet sets at run time, handed
// over by the bench (bench/lib/meshlet.ts launcher()), before anything else
// loads (static imports would load, under the default flags, before this).
const { setFlagsFromString } = process.getBuiltinModule('node:v8');
const v8Flags = process.env['MESHLET_V8_FLAGS'];
if (v8Flags === undefined) throw new Error('MESHLET_V8_FLAGS is not set: bench/ starts this probe');
for (const flag of v8Flags.split(' ')) setFlagsFromString(flag);

const { performance } = process.getBuiltinModule('node:perf_hooks');
const { loadConfig } = await import('../../src/config/load.js');
const { loadCerts } = await import('../../src/certs/index.js');
const { buildResources } = await import('../../src/xds/builders/index.js');
const { buildSnapshot } = await import('../../src/xds/snapshot.js');
const { TYPE } = await import('../../src/xds/protos.js');
const { messageInfo } = await import('../../src/xds/wire.js');

const [configPath, repsArg] = process.argv.slice(2);
if (!configPath) throw new Error('usage: snapshot-build.js CONFIG [WARM_REPS]');
const reps = Number(repsArg ?? '5');

function timed<T>(f: () => T): [T, number] {
  const t = performance.now();
  const v = f();
  return [v, performance.now() - t];
}

// The generated field table of the three resource types, parsed on first use.
const [, protoMs] = timed(() => [TYPE.listener, TYPE.cluster, TYPE.secret].forEach((t) => messageInfo(t)));
const [loaded, configMs] = timed(() => loadConfig(configPath));
const certs = loadCerts(loaded.config.certs);
const build = (): { resourcesMs: number; snapshotMs: number; count: number; bytes: number } => {
  const [resources, resourcesMs] = timed(() => buildResources(loaded.config, certs));
  const [snap, snapshotMs] = timed(() => buildSnapshot(resources));
  let count = 0;
  let bytes = 0;
  for (const t of Object.values(snap.types)) {
    for (const r of t.resources.values()) {
      count++;
      bytes += r.any.value.length;
    }
  }
  return { resourcesMs, snapshotMs, count, bytes };
};
const cold = build();
const warm = Array.from({ length: reps }, build);
process.stdout.write(`${JSON.stringify({ protoMs, configMs, cold, warm })}\n`);
