#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=1 --v8-pool-size=1
// The line above is how `meshlet` (npx, the image's entrypoint) starts: the
// smallest young generation, one V8 worker thread and one malloc arena, for a
// small resident footprint. Only flags that leave node's built-in code cache
// usable go here. The kernel reads at most 255 bytes of this line
// (test/lint/shebang.test.ts). bench/ launches meshlet with exactly these
// settings, read from this line.
//
// The other V8 flags (V8_FLAGS below) are set before anything else loads.
// On the command line, a V8 flag makes node compile each built-in module it
// loads from source: V8 takes a code cache only when it was made under the
// same flags, and node's built-in cache was made under the defaults. There
// they cost node's own start-up (its module loader, before this line runs)
// about 15 ms. Set here, they still reach everything meshlet runs, as no
// JavaScript has run hot yet. node:v8 is the one module loaded before them,
// taken with getBuiltinModule as every built-in in src/ is (eslint.config.js
// says why): each module loaded earlier keeps node's cached code for it
// resident (importing one file of ours before them kept about 2.7 MiB more at
// idle). The built-ins the run path loads later (node:crypto, node:net,
// node:child_process) compile from source; loading them before the flags
// spawned Envoy about 5 ms sooner (20 interleaved starts of each) but kept
// about 2 MiB more resident at idle. (Measured with bench/'s start row config
// and footprint row on each variant.) The flags: no optimizing JIT or
// baseline compiler (their code pages in the node binary become resident
// once anything gets hot); V8's memory reducer (full GCs that give pages
// back once the process is idle) after 0.5 s of idle, not 8 s; bytecode that
// did not run across two full GCs is dropped (start-up code: it is compiled
// again if it ever runs again).
// --jitless would keep about 0.6 MiB less but interprets regular
// expressions, which made validating a 2,000-entry config about a third
// slower. bench/ reads the V8_FLAGS line, as it reads the `#!` line, to start
// its probes as meshlet starts; test/cli/v8-flags.test.ts checks they act.
// One call per flag: V8 ignores every flag after one it does not know (a
// node upgrade could drop one), and says so only on stderr; the image build
// fails when `meshlet version` writes to stderr (Dockerfile).
const { setFlagsFromString } = process.getBuiltinModule('node:v8');
const V8_FLAGS =
  '--gc-memory-reducer-start-delay-ms=500 --memory-reducer-delay-ms=500 --bytecode-old-age=2 --no-opt --no-maglev --no-sparkplug --optimize-for-size';
for (const flag of V8_FLAGS.split(' ')) setFlagsFromString(flag);

const { readdirSync, statSync } = process.getBuiltinModule('node:fs');
const module = process.getBuiltinModule('node:module');
const { fileURLToPath } = process.getBuiltinModule('node:url');

// V8's compiled code for meshlet's modules, kept across runs next to the
// build (dist/.compile-cache; the image fills it at build time): it shortens
// start-up by skipping the parse and compile of every module. A cache is code
// that this process will run, so it is used only when the directory belongs to
// root or to us and nobody else may write to it.
const cacheDir = fileURLToPath(new URL('../.compile-cache', import.meta.url));
if (process.env['NODE_COMPILE_CACHE'] === undefined && trustedDir(cacheDir)) module.enableCompileCache?.(cacheDir);

function trustedDir(dir: string): boolean {
  try {
    const st = statSync(dir);
    return st.isDirectory() && (st.uid === 0 || st.uid === process.getuid?.()) && (st.mode & 0o022) === 0;
  } catch (err) {
    // Not there yet: Node creates it (owner-only) when this process may write here.
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

// The image build runs `MESHLET_FILL_COMPILE_CACHE=1 meshlet version` (as root
// and as the proxy uid: node keeps a cache per uid), which first loads every
// chunk of the bundle (scripts/bundle.mjs) beside this file, so that the cache
// holds every module a sidecar start loads, not only those of the command that
// filled it. In the image the cache is read-only; what it lacks is compiled
// from source at every start. Loading a chunk runs only its declarations.
if (process.env['MESHLET_FILL_COMPILE_CACHE'] === '1') {
  const chunks = readdirSync(new URL('.', import.meta.url)).filter((f) => /^chunk-[A-Z0-9]+\.js$/.test(f));
  for (const f of chunks.sort()) await import(new URL(f, import.meta.url).href);
  module.flushCompileCache?.();
}

const { runCli } = await import('./cli/main.js');
await runCli(process.argv.slice(2));
