// Snapshot build time for a config, outside meshlet: parse and validate, then
// build the resources and the snapshot (encode and hash every resource), cold
// once and then warm.
//   node dist/bench/probes/snapshot-build.js CONFIG WARM_REPS
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { loadConfig } from '../../src/config/load.js';
import { loadCerts } from '../../src/certs/index.js';
import { buildResources } from '../../src/xds/builders/index.js';
import { buildSnapshot } from '../../src/xds/snapshot.js';
import { TYPE } from '../../src/xds/protos.js';
import { messageInfo } from '../../src/xds/wire.js';

// The V8 flags meshlet sets at run time (src/cli.ts), handed over by the bench
// (bench/lib/meshlet.ts launcher()); set before any of the code above runs.
const v8Flags = process.env['MESHLET_V8_FLAGS'];
if (v8Flags === undefined) throw new Error('MESHLET_V8_FLAGS is not set: bench/ starts this probe');
setFlagsFromString(v8Flags);

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
