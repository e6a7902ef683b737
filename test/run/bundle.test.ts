// `meshlet` without the startup snapshot (dist/src/cli.js, as `npx meshlet`;
// the image starts from the snapshot, test/run/snapshot.test.ts) runs from its
// bundle (scripts/bundle.mjs, part of `npm run build`):
// dist/src/cli.js holds everything the run path loads before Envoy is
// spawned, and each later load point is one chunk beside it. Node pays a fixed
// cost for every ES module it loads, so a run path that fell back to tsc's
// module tree (about 75 files before the spawn) would start Envoy later. A real
// `meshlet run --no-envoy` serves an ADS stream; a preload records, through
// node's module hooks, every file the process loaded by the time it exits.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { CLI, cleanupPod, makePod, serveOneStream } from '../helpers/meshlet.js';

const cleanups = cleanupAfterEach();
const DIST_SRC = path.dirname(CLI);

/** A preload that writes the file: URLs the process loaded to MESHLET_TEST_FILES when it exits. */
function preload(dir: string): string {
  const file = path.join(dir, 'record-files.mjs');
  writeFileSync(
    file,
    "const { writeFileSync } = process.getBuiltinModule('node:fs');\n" +
      'const seen = [];\n' +
      "process.getBuiltinModule('node:module').registerHooks({ load(url, context, next) { if (url.startsWith('file:')) seen.push(url); " +
      'return next(url, context); } });\n' +
      "process.on('exit', () => writeFileSync(process.env.MESHLET_TEST_FILES, JSON.stringify(seen)));\n",
  );
  return file;
}

/** The loaded files under dist/src, relative to it. */
function ours(out: string): string[] {
  const urls = JSON.parse(readFileSync(out, 'utf8')) as string[];
  return urls
    .map((u) => new URL(u).pathname)
    .filter((f) => f.startsWith(DIST_SRC + path.sep))
    .map((f) => path.relative(DIST_SRC, f));
}

describe('meshlet runs from its bundle', () => {
  it('the built CLI is the bundle, and it imports chunks, not the module tree tsc wrote beside it', () => {
    const text = readFileSync(CLI, 'utf8');
    expect(text.split('\n', 2)[1]).toBe('// meshlet: bundled by scripts/bundle.mjs');
    const relative = [...text.matchAll(/\bfrom\s+"(\.[^"]+)"|\bimport\(\s*"(\.[^"]+)"\s*\)/g)].map((m) => m[1] ?? m[2]);
    expect(relative.length).toBeGreaterThan(0);
    for (const spec of relative) expect(spec).toMatch(/^\.\/chunk-[A-Z0-9]+\.js$/);
  });

  it("the recording preload sees tsc's modules when a process does load them", async () => {
    const p = await makePod();
    cleanups.push(() => cleanupPod(p));
    const out = path.join(p.dir, 'control.json');
    execFileSync(process.execPath, ['--import', preload(p.dir), path.join(DIST_SRC, 'version.js')], { env: { ...process.env, MESHLET_TEST_FILES: out } });
    expect(ours(out)).toEqual(['version.js']);
  });

  it('meshlet run --no-envoy serves ADS loading only the bundle and its chunks', async () => {
    const p = await makePod();
    cleanups.push(() => cleanupPod(p));
    const out = path.join(p.dir, 'files.json');
    const logs = await serveOneStream(p, [`NODE_OPTIONS=--import ${preload(p.dir)}`, `MESHLET_TEST_FILES=${out}`], undefined, { snapshot: false });
    expect(existsSync(out), `the preload wrote no file list; meshlet logs:\n${logs}`).toBe(true);
    const loaded = ours(out);
    expect(loaded[0]).toBe('cli.js');
    // The run path has later load points (builders, listeners, watchers), each a chunk.
    expect(loaded.length).toBeGreaterThan(2);
    for (const f of loaded.slice(1)) expect(f).toMatch(/^chunk-[A-Z0-9]+\.js$/);
  });

  // A compile cache filled at install time serves what a start loads; what it lacks is compiled from source at
  // every start. A cache filled by `meshlet version` alone misses the run path's chunks.
  it('MESHLET_FILL_COMPILE_CACHE=1 meshlet version fills a compile cache that serves every module a sidecar start loads', async () => {
    const p = await makePod();
    cleanups.push(() => cleanupPod(p));
    /** meshlet run --no-envoy with this cache until it served ADS: the bundle's modules found in the cache, and those compiled afresh. */
    const start = async (cache: string): Promise<{ accepted: string[]; missed: string[] }> => {
      const logs = await serveOneStream(p, [`NODE_COMPILE_CACHE=${cache}`, 'NODE_DEBUG_NATIVE=COMPILE_CACHE'], undefined, { snapshot: false });
      const lookups = [...logs.matchAll(/V8 code cache for ESM (file:\S+) was (accepted|rejected|not initialized)/g)];
      const ofBundle = lookups.filter((l) => /\/(cli|chunk-[A-Z0-9]+)\.js$/.test(new URL(l[1] ?? '').pathname));
      const missedFiles = [...logs.matchAll(/reading cache from \S+ for ESM (file:\S+)\.\.\.[^\n]*(?:failed|no such file|mismatch)/gi)].map((l) => l[1] ?? '');
      return {
        accepted: ofBundle.filter((l) => l[2] === 'accepted').map((l) => l[1] ?? ''),
        missed: [...ofBundle.filter((l) => l[2] !== 'accepted').map((l) => l[1] ?? ''), ...missedFiles.filter((f) => /\/(cli|chunk-[A-Z0-9]+)\.js$/.test(f))],
      };
    };
    const fill = (cache: string, env: Record<string, string>): void => {
      execFileSync(process.execPath, [CLI, 'version'], { env: { ...process.env, NODE_COMPILE_CACHE: cache, ...env } });
    };

    const filled = path.join(p.dir, 'cache-filled');
    fill(filled, { MESHLET_FILL_COMPILE_CACHE: '1' });
    const served = await start(filled);
    expect(served.missed).toEqual([]);
    expect(served.accepted.length).toBeGreaterThan(2);

    const versionOnly = path.join(p.dir, 'cache-version-only');
    fill(versionOnly, {});
    const partial = await start(versionOnly);
    expect(partial.missed.length).toBeGreaterThan(0);
  });
});
