// Builds meshlet's V8 startup snapshot (`npm run build`, after bundle.mjs):
// dist/snapshot.cjs is tsc's dist/src/snapshot.js (src/snapshot.ts says what
// it loads and why) bundled into one script, as node's snapshot builder runs
// one, and dist/meshlet.blob is the heap after it ran
// (scripts/install-snapshot.sh, which the image build runs again with the
// image's node).
//
// Three things differ from the ESM bundle:
// - import.meta.url becomes globalThis.__meshletModuleUrl, which the
//   snapshot's entry points at dist/src/cli.js beside the blob at every start
//   (paths relative to a module, package.json from src/version.ts, resolve as
//   from dist/src);
// - src/cli.ts's V8 flags reach the entry as MESHLET_V8_FLAGS, read from that
//   file as bench/ reads them, so they are written down once;
// - a snapshot can require only node's built-ins. The packages (yaml, zod)
//   stay outside the bundle, and src/ takes them through createRequire at
//   run time (src/config/yaml-lib.ts); a plain require of a package left in
//   the bundle would fail only when that code runs, so the build fails here.
//
// The blob only runs on the node that built it (node refuses another), so it
// is built with this node: the one `npm run build` runs, the project's.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const DIST = path.join(ROOT, 'dist');
const ENTRY = path.join(DIST, 'src', 'snapshot.js');
const BUNDLE = path.join(DIST, 'snapshot.cjs');
const BLOB = path.join(DIST, 'meshlet.blob');

const fail = (msg) => {
  console.error(`scripts/snapshot.mjs: ${msg}`);
  process.exit(1);
};

const cli = readFileSync(path.join(ROOT, 'src', 'cli.ts'), 'utf8');
const flags = /^const V8_FLAGS =\s*'([^']*)';$/m.exec(cli)?.[1];
if (!flags) fail('src/cli.ts has no "const V8_FLAGS = \'…\';" line');

rmSync(BLOB, { force: true });
await build({
  entryPoints: [ENTRY],
  outfile: BUNDLE,
  bundle: true,
  format: 'iife',
  platform: 'node',
  target: 'node26',
  packages: 'external',
  define: { 'import.meta.url': 'globalThis.__meshletModuleUrl', MESHLET_V8_FLAGS: JSON.stringify(flags) },
  banner: { js: '// meshlet: the startup snapshot entry, bundled by scripts/snapshot.mjs' },
  logLevel: 'warning',
});

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const required = [...readFileSync(BUNDLE, 'utf8').matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]);
const packages = [...new Set(required.filter((m) => !builtins.has(m)))];
if (packages.length > 0) {
  fail(`${path.relative(ROOT, BUNDLE)} requires ${packages.join(', ')}, which a snapshot cannot load; take it with createRequire (src/config/yaml-lib.ts)`);
}

// The blob itself, made and checked as the image build makes it, with this node.
const made = spawnSync('sh', [path.join(ROOT, 'scripts', 'install-snapshot.sh'), DIST, path.join(DIST, 'meshlet')], {
  env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}` },
  encoding: 'utf8',
});
if (made.status !== 0) fail(`scripts/install-snapshot.sh failed (exit ${made.status}):\n${made.stderr}${made.stdout}`);
