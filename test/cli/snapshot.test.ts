// meshlet's V8 startup snapshot (src/snapshot.ts; dist/meshlet.blob, built by
// `npm run build`), which the image's `meshlet` starts from. The rest of the
// suite runs meshlet from it (test/helpers/meshlet.ts MESHLET); these tests
// check that it is the same CLI as dist/src/cli.js, that nothing of the
// process that built it reaches a start, and the launcher the image installs.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { guardProcess, SnapshotStateError } from '../../src/snapshot-guard.js';
import { BLOB, CLI } from '../helpers/meshlet.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const DIST = path.join(ROOT, 'dist');
const work = mkdtempSync(path.join(tmpdir(), 'meshlet-snapshot-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}
const node = (args: string[], env: NodeJS.ProcessEnv = {}): Ran =>
  spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env }, cwd: ROOT });
const fromSnapshot = (args: string[], env?: NodeJS.ProcessEnv): Ran => node(['--snapshot-blob', BLOB, CLI, ...args], env);
const plain = (args: string[], env?: NodeJS.ProcessEnv): Ran => node([CLI, ...args], env);
const same = (r: Ran): Ran => ({ status: r.status, stdout: r.stdout, stderr: r.stderr });

describe('the startup snapshot', () => {
  it.each([
    ['version', ['version']],
    ['--help', ['--help']],
    ['help run', ['help', 'run']],
    ['check of the example config', ['check', '--skip-certs', '--config', 'config/example.yaml']],
    ['check --json of the example config', ['check', '--json', '--skip-certs', '--config', 'config/example.yaml']],
    ['a usage error', ['run', '--no-such-flag']],
    ['an invalid config', ['check', '--skip-certs', '--config', 'package.json']],
  ])('answers %s exactly as dist/src/cli.js does', (_name, args) => {
    const want = plain(args);
    const got = fromSnapshot(args);
    expect(same(got)).toEqual(same(want));
    expect(`${want.stdout}${want.stderr}`.length).toBeGreaterThan(0);
  });

  it('reads the environment of the process it runs in, not of the one that built it', () => {
    // The level's check reads MESHLET_LOG_LEVEL at run time; a value frozen at build would pass.
    const bad = fromSnapshot(['check', '--skip-certs', '--config', 'config/example.yaml'], { MESHLET_LOG_LEVEL: 'loud' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('MESHLET_LOG_LEVEL must be one of');
    expect(same(bad)).toEqual(same(plain(['check', '--skip-certs', '--config', 'config/example.yaml'], { MESHLET_LOG_LEVEL: 'loud' })));
    // A Contrast variable changes what `check` reads.
    const contrast = fromSnapshot(['check', '--skip-certs'], { CONTRAST_ADMIN_PORT: '15020' });
    expect(contrast.status).toBe(1);
    expect(contrast.stderr).toContain('CONTRAST_ADMIN_PORT');
  });

  it("sets src/cli.ts's V8 flags at start, as src/cli.ts does", () => {
    // A preload (--require runs before the snapshot's main) records, at exit, the state a forced optimization of
    // a hot function ends in: "never optimize" under --no-opt --no-maglev, optimized under the defaults.
    const preload = path.join(work, 'opt-status.cjs');
    writeFileSync(
      preload,
      "require('node:v8').setFlagsFromString('--allow-natives-syntax');\n" +
        "process.on('exit', () => {\n" +
        "  const f = new Function('x', 'let s = 0; for (let i = 0; i < x; i++) s += i; return s;');\n" +
        '  for (let i = 0; i < 20000; i++) f(100);\n' +
        "  new Function('f', '%PrepareFunctionForOptimization(f)')(f); f(10);\n" +
        "  new Function('f', '%OptimizeFunctionOnNextCall(f)')(f); f(10);\n" +
        "  require('node:fs').writeFileSync(process.env.MESHLET_TEST_OUT, String(new Function('f', 'return %GetOptimizationStatus(f)')(f)));\n" +
        '});\n',
    );
    let runs = 0;
    const bits = (args: string[]): number => {
      const out = path.join(work, `opt-${(runs += 1)}.txt`);
      const r = node(['--require', preload, ...args], { MESHLET_TEST_OUT: out });
      expect(r.status, r.stderr).toBe(0);
      return Number(readFileSync(out, 'utf8'));
    };
    const snapshotted = bits(['--snapshot-blob', BLOB, CLI, 'version']);
    expect(snapshotted & 2).toBe(2);
    expect(snapshotted).toBe(bits([CLI, 'version']));
    // The probe tells the difference: without meshlet's flags the function is optimized.
    expect(bits(['-e', '0']) & 2).toBe(0);
  });

  it('takes the command as the first word when no script path comes first, and never falls back to Contrast mode', () => {
    const r = node(['--snapshot-blob', BLOB, 'version']);
    expect(r.stdout).toBe(plain(['version']).stdout);
    expect(r.status).toBe(0);
  });

  it('the build fails, naming the read, when a module reads the environment at its top level', () => {
    // dist/snapshot.cjs, the bundled entry, with one read added to the top level of the CLI's main module.
    const bundle = readFileSync(path.join(DIST, 'snapshot.cjs'), 'utf8');
    const marker = '"dist/src/cli/main.js"() {';
    expect(bundle).toContain(marker);
    const entry = path.join(work, 'reads-env.cjs');
    writeFileSync(entry, bundle.replace(marker, `${marker} process.env.MESHLET_SNAPSHOT_PROBE;`));
    const config = path.join(work, 'reads-env.json');
    writeFileSync(config, JSON.stringify({ builder: entry, withoutCodeCache: true }));
    const blob = path.join(work, 'reads-env.blob');
    const r = node(['--snapshot-blob', blob, '--build-snapshot-config', config]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('process.env.MESHLET_SNAPSHOT_PROBE was read while the startup snapshot was built');
    expect(() => readFileSync(blob)).toThrow();
    // The same bundle unchanged builds.
    const ok = path.join(work, 'ok.json');
    writeFileSync(ok, JSON.stringify({ builder: path.join(DIST, 'snapshot.cjs'), withoutCodeCache: true }));
    const built = node(['--snapshot-blob', path.join(work, 'ok.blob'), '--build-snapshot-config', ok]);
    expect(built.stderr).toBe('');
    expect(built.status).toBe(0);
  });
});

describe('guardProcess', () => {
  it('makes the reads of the process state throw until it is lifted, and a reference taken meanwhile then works', () => {
    const hostname = os.hostname;
    const now = Date.now;
    const lift = guardProcess();
    let kept: () => string;
    try {
      expect(() => process.env['HOME']).toThrow(SnapshotStateError);
      expect(() => process.env['HOME']).toThrow('process.env.HOME was read');
      expect(() => 'PATH' in process.env).toThrow(SnapshotStateError);
      expect(() => Object.keys(process.env)).toThrow(SnapshotStateError);
      expect(() => Date.now()).toThrow('Date.now() was read');
      expect(() => process.getuid?.()).toThrow('process.getuid() was read');
      expect(() => process.cwd()).toThrow(SnapshotStateError);
      expect(() => process.hrtime.bigint()).toThrow('process.hrtime.bigint() was read');
      expect(() => os.hostname()).toThrow('os.hostname() was read');
      expect(() => process.pid).toThrow('process.pid was read');
      expect(() => process.argv).toThrow('process.argv was read');
      expect(() => process.stdout).toThrow('process.stdout was read');
      expect(() => Math.random()).toThrow('Math.random() was read');
      kept = os.hostname;
      const env = process.env;
      lift();
      expect(env['HOME']).toBe(process.env['HOME']);
    } finally {
      lift();
    }
    expect(os.hostname).toBe(hostname);
    expect(Date.now).toBe(now);
    expect(kept()).toBe(hostname());
    expect(typeof process.env['PATH']).toBe('string');
    expect(Date.now()).toBeGreaterThan(0);
    expect(process.pid).toBeGreaterThan(0);
    expect(Array.isArray(process.argv)).toBe(true);
    expect(typeof process.stdout.write).toBe('function');
  });
});

describe('the launcher the image installs (scripts/install-snapshot.sh)', () => {
  it('is a sh script that starts node as the #! line of dist/src/cli.js does, from a snapshot made where dist/ was installed', () => {
    // An installed copy, as the image's /opt/meshlet, with its own package.json: the version shows which one is read.
    const installed = path.join(work, 'opt');
    cpSync(path.join(DIST, 'src'), path.join(installed, 'dist', 'src'), { recursive: true });
    cpSync(path.join(DIST, 'snapshot.cjs'), path.join(installed, 'dist', 'snapshot.cjs'));
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(path.join(installed, 'package.json'), JSON.stringify({ ...pkg, version: '0.0.0-installed' }));
    const launcher = path.join(work, 'meshlet');
    const env = { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}` };
    const made = spawnSync('sh', [path.join(ROOT, 'scripts', 'install-snapshot.sh'), path.join(installed, 'dist'), launcher], { encoding: 'utf8', env });
    expect(made.stderr).toBe('');
    expect(made.status).toBe(0);
    const text = readFileSync(launcher, 'utf8');
    expect(text.split('\n', 1)[0]).toBe('#!/bin/sh');
    expect(spawnSync('sh', ['-n', launcher]).status).toBe(0);
    // The #! line's environment and node flags, then the snapshot made for this dist/, then the launcher's own path.
    const words = (readFileSync(CLI, 'utf8').split('\n', 1)[0] ?? '').replace('#!/usr/bin/env -S ', '').split(' ');
    const node = words.indexOf('node');
    for (const a of words.slice(0, node)) expect(text).toContain(`${a.replace('=', "='")}'; export ${a.split('=')[0] ?? ''}`);
    const blob = path.join(installed, 'dist', 'meshlet.blob');
    expect(text).toContain(`\nexec node ${words.slice(node + 1).join(' ')} --snapshot-blob '${blob}' "$0" "$@"\n`);
    const r = spawnSync(launcher, ['version'], { encoding: 'utf8', env });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('meshlet 0.0.0-installed\n');
  });

  it('refuses a relative DIST and a dist without the bundled entry', () => {
    const rel = spawnSync('sh', [path.join(ROOT, 'scripts', 'install-snapshot.sh'), 'dist'], { encoding: 'utf8' });
    expect(rel.status).toBe(2);
    expect(rel.stderr).toContain('DIST must be an absolute path');
    const missing = spawnSync('sh', [path.join(ROOT, 'scripts', 'install-snapshot.sh'), work], { encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain(`${work}/snapshot.cjs is missing`);
  });
});
