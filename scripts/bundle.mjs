// Bundles the built CLI after tsc (`npm run build`): dist/src/cli.js, tsc's
// output, becomes one module holding everything `meshlet` loads before it
// spawns Envoy, plus one chunk per later load point (each dynamic import), in
// dist/src/chunk-*.js. Node pays a fixed cost per ES module it loads
// (resolve, read, look up the compile cache, link), about 0.3 to 0.6 ms each
// here, and `meshlet run` loaded about 75 of them before the spawn: bundled,
// Envoy starts about 13 ms sooner and /ready turns 200 about 24 ms sooner
// (30 interleaved starts of each, bench/'s start row config), at the same
// idle RSS. The rest of dist/src stays tsc's module tree, which the bench
// probes and the build scripts import.
//
// Bare imports (yaml, zod) stay imports, resolved from node_modules at run
// time as before. Node built-ins are taken with process.getBuiltinModule in
// src/ (eslint.config.js), which the bundler leaves alone. The chunks sit next
// to cli.js so that paths relative to a module's URL (package.json from
// src/version.ts) resolve as they do from dist/src.
import { build } from 'esbuild';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, 'dist', 'src');
const ENTRY = path.join(OUT, 'cli.js');
const MARK = '// meshlet: bundled by scripts/bundle.mjs';

// The entry is tsc's output; a second run without tsc would bundle the bundle, whose chunks are deleted below.
if (readFileSync(ENTRY, 'utf8').includes(MARK)) {
  console.error(`${path.relative(ROOT, ENTRY)} is already bundled: run \`npm run build\`, which compiles it again first`);
  process.exit(1);
}
for (const f of readdirSync(OUT)) if (/^chunk-[A-Z0-9]+\.js$/.test(f)) rmSync(path.join(OUT, f));

await build({
  entryPoints: [ENTRY],
  outdir: OUT,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node26',
  packages: 'external',
  chunkNames: 'chunk-[hash]',
  banner: { js: MARK },
  logLevel: 'warning',
});
