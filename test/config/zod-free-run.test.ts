// A valid config never loads zod on the run path: zod costs megabytes
// resident and tens of milliseconds of start-up in every sidecar, and only an
// invalid config needs its error reporting. The built code (dist/) runs in a
// child node started with meshlet's own flags and a module hook that reports
// every file of the zod package it loads (ESM imports and require() alike);
// the same hook seeing zod load for an invalid config shows it would notice.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DEFAULT_CONFIG_PATH } from '../../src/config/load.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { CLI, cleanupPod, makePod, writeConfig } from '../helpers/meshlet.js';
import { tmpDirFor } from '../helpers/tmp.js';
import { collectLines, EventLog } from '../helpers/wait.js';

const cleanups = cleanupAfterEach();

const ZOD = 'zod module loaded: ';
const HOOK = `import { registerHooks } from 'node:module';
registerHooks({
  load(url, context, nextLoad) {
    if (url.includes('/node_modules/zod/')) process.stderr.write(${JSON.stringify(ZOD)} + url + '\\n');
    return nextLoad(url, context);
  },
});
`;

/** Node's flags and environment from the `#!` line of the built CLI, as `meshlet` starts. */
function meshletNode(): { flags: string[]; env: Record<string, string> } {
  const words = (readFileSync(CLI, 'utf8').split('\n')[0] ?? '').split(/\s+/);
  const node = words.indexOf('node');
  const env = Object.fromEntries(
    words
      .slice(0, node)
      .filter((w) => /^[A-Z_]+=/.test(w))
      .map((w) => w.split('=') as [string, string]),
  );
  return { flags: words.slice(node + 1).filter((w) => w.startsWith('--')), env };
}

/** A clean environment: no MESHLET_* or CONTRAST_* from the test runner's own. */
function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/root' };
  return { ...env, ...meshletNode().env, ...extra };
}

function setup(): { dir: string; hook: string } {
  const dir = tmpDirFor(cleanups, 'meshlet-zod-free-');
  const hook = path.join(dir, 'hook.mjs');
  writeFileSync(hook, HOOK);
  return { dir, hook };
}

const zodLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith(ZOD));

describe('loading a valid config does not load zod (dist/src/config/load.js)', () => {
  const load = pathToFileURL(path.resolve('dist/src/config/load.js')).href;
  const script = `const { loadConfig } = await import(${JSON.stringify(load)});
try {
  const { config, source } = loadConfig(process.argv[2] === '-' ? undefined : process.argv[2]);
  process.stdout.write(JSON.stringify({ ok: true, source, ports: config.ingress.ports.length, routes: config.egress.routes.length }) + '\\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(err.message).split('\\n')[0] }) + '\\n');
}
`;

  function run(
    configArg: string,
    env: Record<string, string> = {},
  ): { result: { ok: boolean; source?: string; ports?: number; error?: string }; zod: string[] } {
    const { dir, hook } = setup();
    const file = path.join(dir, 'load.mjs');
    writeFileSync(file, script);
    const r = spawnSync(process.execPath, [...meshletNode().flags, '--import', pathToFileURL(hook).href, file, configArg], {
      env: baseEnv(env),
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status, `child failed: ${r.stderr}`).toBe(0);
    return { result: JSON.parse(r.stdout.trim()) as { ok: boolean; source?: string; ports?: number; error?: string }, zod: zodLines(r.stderr) };
  }

  it.each(['config/example.yaml', 'config/example-mapped.yaml'])('%s: loaded, zod never', (file) => {
    const { result, zod } = run(path.resolve(file));
    expect(result.ok, result.error).toBe(true);
    expect(zod).toEqual([]);
  });

  it('a config of 1,000 ports and 1,000 routes, the Contrast environment, MESHLET_CONFIG and the defaults: loaded, zod never', () => {
    const { dir } = setup();
    const big = path.join(dir, 'big.yaml');
    writeFileSync(
      big,
      stringify({
        ingress: { ports: Array.from({ length: 1_000 }, (_, i) => ({ name: `p${i}`, port: 20_000 + i })) },
        egress: {
          routes: Array.from({ length: 1_000 }, (_, i) => ({ name: `r${i}`, listen: `127.10.${i >> 8}.${i & 255}:9000`, remote: `s${i}.example:443` })),
        },
      }),
    );
    const cases: [string, Record<string, string>, number][] = [
      [big, {}, 1_000],
      ['-', { CONTRAST_INGRESS_PROXY_CONFIG: 'web#8080#false', CONTRAST_EGRESS_PROXY_CONFIG: 'db#127.137.0.1:5432#db-svc:5432' }, 1],
      ['-', { MESHLET_CONFIG: 'ingress:\n  ports:\n    - name: web\n      port: 8080\n' }, 1],
    ];
    // No file, no variables: Contrast's meaning of a pod without annotations (unless this machine has the default file).
    if (!existsSync(DEFAULT_CONFIG_PATH)) cases.push(['-', {}, 0]);
    for (const [arg, env, ports] of cases) {
      const { result, zod } = run(arg, env);
      expect(result.ok, `${arg} ${JSON.stringify(env)}: ${result.error}`).toBe(true);
      expect(result.ports, JSON.stringify(env)).toBe(ports);
      expect(zod, `${arg} ${JSON.stringify(env)}`).toEqual([]);
    }
  });

  it('an invalid config loads zod, with the same errors as before (the hook sees zod when it loads)', () => {
    const { dir } = setup();
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'ingress:\n  ports:\n    - name: web\n      port: 70000\n');
    const { result, zod } = run(bad);
    expect(result).toEqual({ ok: false, error: `${bad}: 1 error` });
    expect(zod.length).toBeGreaterThan(0);
  });
});

describe('meshlet run --no-envoy with a valid config does not load zod', () => {
  it('serves without zod; an invalid config on reload is refused with zod loaded then', async () => {
    const pod = await makePod();
    cleanups.push(() => cleanupPod(pod));
    const { hook } = setup();
    const args = ['--import', pathToFileURL(hook).href, CLI, 'run', '--config', pod.configPath, '--no-envoy', '--skip-iptables-check', '--drain-seconds', '0'];
    const child = spawn(process.execPath, [...meshletNode().flags, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: baseEnv() });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    const out = new EventLog<string>();
    const err = new EventLog<string>();
    collectLines(child.stdout, out);
    collectLines(child.stderr, err);
    await out.waitFor((l) => l.includes('"meshlet serving"'), 30_000, 'the "meshlet serving" log line');
    expect(err.items.filter((l) => l.startsWith(ZOD))).toEqual([]);

    writeConfig(pod, { ...pod.config, ingress: { ports: [{ name: 'web', port: 70_000 }] } });
    await out.waitFor((l) => l.includes('reload refused'), 30_000, 'the "reload refused" log line for the invalid config');
    await err.waitFor((l) => l.startsWith(ZOD), 5_000, 'zod to load for the invalid config');
    const refused = out.items.find((l) => l.includes('reload refused')) ?? '';
    expect(refused).toContain('ingress.ports[0].port: must be in 1-65535');

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
