#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=1 --v8-pool-size=1 --gc-memory-reducer-start-delay-ms=500 --no-opt --no-maglev --no-sparkplug --optimize-for-size
// The line above is how `meshlet` (npx, the image's entrypoint) starts: V8 and
// malloc set for a small resident footprint, as a sidecar's memory is paid in
// every pod. No optimizing JIT (its code pages in the node binary become
// resident once anything gets hot), the smallest young generation, one V8
// worker thread, one malloc arena. WebAssembly stays available (fetch needs
// it), which --lite-mode/--jitless would remove. bench/ launches meshlet with
// exactly these settings, read from this line.
import { main } from './cli/main.js';

// `meshlet check | head` closes the pipe early; that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

process.exitCode = await main(process.argv.slice(2));
