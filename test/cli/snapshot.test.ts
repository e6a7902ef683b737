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
import { endsWithEmptyCodeCache, findBuiltinCodeCache, pemBlockIn, stripBuiltinCodeCache } from '../../src/snapshot-blob.js';
import { rehearsalConfig } from '../../src/snapshot-rehearsal.js';
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

/** What scripts/install-snapshot.sh gives the builder: a directory with a throwaway PKI in certs/ (src/snapshot-rehearsal.ts). */
function rehearsalDir(): string {
  const dir = mkdtempSync(path.join(work, 'rehearsal-'));
  const made = node([CLI, 'dev-pki', '--out', path.join(dir, 'certs'), '--san', 'rehearsal']);
  expect(made.status, made.stderr).toBe(0);
  return dir;
}

/** Builds a blob from dist/snapshot.cjs as scripts/install-snapshot.sh does, without its last step (the cut). */
function buildBlob(name: string, withoutCodeCache: boolean): { blob: string; run: Ran } {
  const config = path.join(work, `${name}.json`);
  writeFileSync(config, JSON.stringify({ builder: path.join(DIST, 'snapshot.cjs'), withoutCodeCache }));
  const blob = path.join(work, `${name}.blob`);
  const run = node(['--snapshot-blob', blob, '--build-snapshot-config', config], { MESHLET_SNAPSHOT_REHEARSAL: rehearsalDir() });
  return { blob, run };
}

/** The names of the functions V8 compiled to bytecode while `args` ran (V8's function events log). */
function compiledWhile(args: string[], name: string): Set<string> {
  const log = path.join(work, `${name}.v8.log`);
  const r = node(['--log-function-events', `--logfile=${log}`, '--no-logfile-per-isolate', ...args]);
  expect(r.status, r.stderr).toBe(0);
  const names = readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('function,interpreter,'))
    .map((l) => l.slice(l.lastIndexOf(',') + 1));
  return new Set(names);
}

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
    const built = buildBlob('ok', true).run;
    expect(built.stderr).toBe('');
    expect(built.status).toBe(0);
  });

  it('refuses to build without the rehearsal directory scripts/install-snapshot.sh makes', () => {
    const config = path.join(work, 'no-rehearsal.json');
    writeFileSync(config, JSON.stringify({ builder: path.join(DIST, 'snapshot.cjs'), withoutCodeCache: false }));
    const r = node(['--snapshot-blob', path.join(work, 'no-rehearsal.blob'), '--build-snapshot-config', config], { MESHLET_SNAPSHOT_REHEARSAL: '' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('MESHLET_SNAPSHOT_REHEARSAL is not set: build the snapshot with scripts/install-snapshot.sh');
  });

  it('keeps the bytecode of the start it rehearsed: checking a config and its certificates compiles none of those functions again', () => {
    // The rehearsal's own sample, as a pod's config: block YAML, the throwaway PKI.
    const dir = rehearsalDir();
    const config = path.join(dir, 'config.yaml');
    writeFileSync(config, rehearsalConfig(dir));
    const rehearsed = ['loadConfig', 'readConfigFile', 'parseConfigText', 'validateConfig', 'parseCertificates', 'checkMaterial'];
    // Without the snapshot, each is compiled on its first call: the log sees them.
    const plainRun = compiledWhile([CLI, 'check', '--config', config], 'plain');
    expect(rehearsed.filter((f) => plainRun.has(f))).toEqual(rehearsed);
    // From the snapshot, none is: the blob has their bytecode.
    const fromBlob = compiledWhile(['--snapshot-blob', BLOB, CLI, 'check', '--config', config], 'blob');
    expect(fromBlob.size).toBeGreaterThan(0);
    expect(rehearsed.filter((f) => fromBlob.has(f))).toEqual([]);
  });

  it("holds nothing of the rehearsal's PKI: no PEM block, no key", () => {
    const blob = readFileSync(BLOB);
    expect(pemBlockIn(blob)).toBeUndefined();
    // The finder sees a block when there is one (a certificate file's first line and the base64 after it).
    expect(pemBlockIn(Buffer.concat([blob.subarray(0, 1000), Buffer.from('-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEG\n')]))).toBe(
      '-----BEGIN PRIVATE KEY-----',
    );
    // meshlet's own messages name the lines, and stay.
    expect(blob.includes('-----BEGIN CERTIFICATE-----')).toBe(true);
  });

  it("holds no code cache of node's built-ins: the one node appends is cut off, and the blob still starts", () => {
    expect(endsWithEmptyCodeCache(readFileSync(BLOB))).toBe(true);
    expect(findBuiltinCodeCache(readFileSync(BLOB))).toBeUndefined();
    // A blob as node writes it: the cache is there, found where it ends the file, and cut.
    const { blob, run } = buildBlob('uncut', false);
    expect(run.status, run.stderr).toBe(0);
    const uncut = readFileSync(blob);
    const found = findBuiltinCodeCache(uncut);
    expect(found?.entries).toBeGreaterThan(100);
    expect(found?.bytes).toBeGreaterThan(1024 * 1024);
    const cut = stripBuiltinCodeCache(uncut);
    expect(cut.removed).toEqual(found);
    expect(cut.blob.length).toBe((found?.offset ?? 0) + 8);
    writeFileSync(blob, cut.blob);
    // (A blob finds package.json beside it, src/snapshot.ts, and there is none in this directory: "unknown".)
    const r = node(['--snapshot-blob', blob, CLI, 'version']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('meshlet unknown\n');
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

describe('stripBuiltinCodeCache', () => {
  /** A blob's tail as node writes it: a count, then (id length, id, code length, code) per module, lengths u64 LE. */
  function cache(ids: string[]): Buffer {
    const u64 = (n: number): Buffer => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(BigInt(n));
      return b;
    };
    return Buffer.concat([u64(ids.length), ...ids.flatMap((id, i) => [u64(id.length), Buffer.from(id), u64(i + 3), Buffer.alloc(i + 3, 0xab)])]);
  }
  const ids = Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? `internal/m${i}` : `m${i}`));

  it('finds the cache that ends the blob and cuts it to an empty one', () => {
    const head = Buffer.from('everything before the cache, as node wrote it');
    const { blob, removed } = stripBuiltinCodeCache(Buffer.concat([head, cache(ids)]));
    expect(removed.offset).toBe(head.length);
    expect(removed.entries).toBe(30);
    expect(blob.subarray(0, head.length).equals(head)).toBe(true);
    expect(blob.length).toBe(head.length + 8);
    expect(endsWithEmptyCodeCache(blob)).toBe(true);
  });

  it('refuses a blob whose end reads as no cache, naming what to do', () => {
    expect(() => stripBuiltinCodeCache(Buffer.alloc(4096, 7))).toThrow(/withoutCodeCache/);
    // Cut once already, or too short to be node's: a handful of modules, none of node's internal ones.
    expect(() => stripBuiltinCodeCache(Buffer.concat([Buffer.from('head'), cache(['a', 'b', 'c'])]))).toThrow(/no code cache/);
    expect(() => stripBuiltinCodeCache(Buffer.concat([Buffer.from('head'), cache(Array.from({ length: 30 }, (_, i) => `m${i}`))]))).toThrow(/no code cache/);
  });
});
