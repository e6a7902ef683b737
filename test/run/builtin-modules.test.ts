// `meshlet run` (from the startup snapshot, as the image starts it) must not load node:http2 or node:tls: ADS is served by our own
// HTTP/2 server on node:net, and either module would put several MiB of
// resident memory (the TLS stack) into every pod for a socket that never
// carries TLS. A real `meshlet run --no-envoy` serves an ADS stream and its
// debug endpoint; a preload records which built-in modules the process loaded
// by the time it exits. A new import of either module anywhere on the run path
// makes this fail. So does an ESM import of node:fs or node:crypto, whose
// wrappers load fs/promises, readline and webcrypto.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { cleanupPod, makePod, serveOneStream } from '../helpers/meshlet.js';

const cleanups = cleanupAfterEach();

/** A preload that writes process.moduleLoadList to the file named by MESHLET_TEST_MODULES when the process exits. */
function preload(dir: string): string {
  // CommonJS, taken with --require: node runs --import preloads only for a script, not for a start from the snapshot.
  const file = path.join(dir, 'record-modules.cjs');
  writeFileSync(
    file,
    "const { writeFileSync } = process.getBuiltinModule('node:fs');\n" +
      "process.on('exit', () => writeFileSync(process.env.MESHLET_TEST_MODULES, JSON.stringify(process.moduleLoadList)));\n",
  );
  return file;
}

const builtins = (list: string[]): string[] => list.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length));

describe('modules on the run path', () => {
  it('the recording preload sees node:http2 and node:tls when a process does load them', async () => {
    const p = await makePod();
    cleanups.push(() => cleanupPod(p));
    const out = path.join(p.dir, 'control.json');
    execFileSync(process.execPath, ['--require', preload(p.dir), '-e', "process.getBuiltinModule('node:http2')"], {
      env: { ...process.env, MESHLET_TEST_MODULES: out },
    });
    const loaded = builtins(JSON.parse(readFileSync(out, 'utf8')) as string[]);
    expect(loaded).toContain('http2');
    expect(loaded).toContain('tls');
  });

  it('meshlet run --no-envoy serves ADS and its debug endpoint without loading node:http2 or node:tls', async () => {
    const p = await makePod();
    cleanups.push(() => cleanupPod(p));
    const out = path.join(p.dir, 'modules.json');
    // An ADS stream served end to end, and the debug endpoint answered: the steady state's code has run.
    const logs = await serveOneStream(p, [`NODE_OPTIONS=--require ${preload(p.dir)}`, `MESHLET_TEST_MODULES=${out}`], async () => {
      const health = await fetch(`http://127.0.0.1:${p.ports.debug}/healthz`, { signal: AbortSignal.timeout(3_000) });
      expect(health.status).toBe(200);
    });
    expect(existsSync(out), `the preload wrote no module list; meshlet logs:\n${logs}`).toBe(true);
    const loaded = builtins(JSON.parse(readFileSync(out, 'utf8')) as string[]);
    // The list is real: the modules our HTTP/2 server runs on are in it.
    expect(loaded).toContain('net');
    expect(loaded.filter((name) => /^(http2|tls|_tls_wrap|_tls_common|https)$/.test(name))).toEqual([]);
    // What an ESM import of node:fs or node:crypto would bring (src/ takes built-ins with getBuiltinModule: eslint.config.js).
    expect(loaded).toContain('crypto');
    expect(loaded.filter((name) => /^internal\/(fs\/promises|readline\/interface|crypto\/webcrypto)$/.test(name))).toEqual([]);
  });
});
