#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=1 --v8-pool-size=1 --gc-memory-reducer-start-delay-ms=500 --memory-reducer-delay-ms=500 --bytecode-old-age=2 --no-opt --no-maglev --no-sparkplug --optimize-for-size
// The line above is how `meshlet` (npx, the image's entrypoint) starts: V8 and
// malloc set for a small resident footprint, as a sidecar's memory is paid in
// every pod. No optimizing JIT (its code pages in the node binary become
// resident once anything gets hot), the smallest young generation, one V8
// worker thread, one malloc arena, and V8's memory reducer (full GCs that
// give pages back once the process is idle) after 0.5 s of idle, not 8 s;
// bytecode that did not run across two full GCs is dropped (start-up code: it
// is compiled again if it ever runs again). --jitless would keep about 0.6 MiB
// less but interprets regular expressions, which made validating a 2,000-entry
// config about a third slower. The kernel reads at most 255 bytes of this
// line (test/lint/shebang.test.ts). bench/ launches meshlet with exactly these
// settings, read from this line.
import { statSync } from 'node:fs';
import module from 'node:module';
import { fileURLToPath } from 'node:url';

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

const { main } = await import('./cli/main.js');

// `meshlet check | head` closes the pipe early; that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

process.exitCode = await main(process.argv.slice(2));
