// Fuzzing the config inputs: YAML files and Contrast's environment values,
// random and mutated from the shipped examples, with a fixed seed so a
// failure reproduces. Every case must end as "valid" or "invalid with
// printable, bounded errors": no other exception, no hang, no crash. The bulk
// runs in-process; a sample runs the real CLI, where only exit 0 or 1
// without a stack trace is acceptable. Each CLI run is bounded at 15 s: long
// enough that a busy machine is not mistaken for a hang (the test claims no
// speed), short enough that a hang fails the test.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, loadConfigText } from '../../src/config/load.js';
import { ConfigInvalidError, formatErrors } from '../../src/config/errors.js';
import { describeConfig } from '../../src/config/describe.js';
import { MESHLET } from '../helpers/meshlet.js';
import { prng } from '../helpers/prng.js';

const SEED = 0x13c0ffee;

const EXAMPLES = ['config/example.yaml', 'config/example-mapped.yaml'].map((f) => readFileSync(f, 'utf8'));
const HOSTILE_SNIPPETS = [
  '&a [*a]',
  '*undefined',
  '!!binary AAAA',
  '!!js/function "x"',
  '<<: *a',
  '? [a, b]\n: c',
  '"\u202e\u0000\u001b[2J"',
  '{',
  ']',
  '---\n---\n',
  '%YAML 1.1\n---\n',
  '99999999999999999999',
  '-0',
  '0x1F',
  '1e400',
  '.nan',
  '~',
  'null',
  'true',
  '""',
  `"${'x'.repeat(5000)}"`,
  '\t',
  '\r\n',
  '#',
  '|\n  a\n',
  '>-\n  b\n',
  '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
  '{ a: { b: { c: { d: { e: {} } } } }',
  '127.0.0.1',
  '127.0.0.6',
  '::6',
  '::1',
  '0.0.0.0',
  '15000',
  '15006',
  '15001',
  '15002',
  '15020',
  '15053',
  '65536',
  '0',
  '-1',
  '1.5',
];
const KEYS = [
  'certs',
  'ca',
  'certChain',
  'key',
  'expectedSans',
  'ingress',
  'mode',
  'default',
  'ports',
  'name',
  'port',
  'mappedPort',
  'policy',
  'allowedSans',
  'egress',
  'routes',
  'listen',
  'remote',
  'sni',
  'names',
  'capture',
  'exclude',
  'cidrs',
  'proxy',
  'uid',
  'gid',
  'adminAddress',
  'inboundPort',
  'outboundPort',
  'portlessEgressPort',
  'xdsSocket',
  'bootstrapPath',
  'debug',
  'address',
  'dns',
  'enabled',
  'ttl',
  'upstreams',
  'resolvConf',
  'meshletUid',
];
const CONTRAST_SEEDS = [
  '',
  'DISABLED',
  'web#8080#false',
  '##admin#9901#true',
  'web#8080#false##admin#9901#true',
  'DISABLED##admin#9901#true',
  'emoji#127.137.0.1:8081#emoji-svc:8080##voting#127.137.0.2:8081#voting-svc:8080',
  'web#127.137.0.3:8081#web-svc:443',
  'a#127.137.0.1#x',
  'a#127.137.0.1:8081#x:1#sni#san',
];
const CONTRAST_VARS = [
  'CONTRAST_INGRESS_PROXY_CONFIG',
  'CONTRAST_EGRESS_PROXY_CONFIG',
  'CONTRAST_ADMIN_PORT',
  'EDG_INGRESS_PROXY_CONFIG',
  'EDG_EGRESS_PROXY_CONFIG',
  'EDG_ADMIN_PORT',
];

class Gen {
  constructor(readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  char(): string {
    const pools = ['#:,.-_/[]{}&*!|>"\'\n\t 0123456789abcxyz', '\u0000\u0001\u001b\u007f\u0085\u202e\u2066\u200f\ufeff\ud800', 'é漢😀'];
    const pool = this.pick(pools);
    return pool[this.int(pool.length)] ?? '';
  }
  /** One random edit of `s`. */
  mutate(s: string): string {
    const at = this.int(s.length + 1);
    switch (this.int(8)) {
      case 0:
        return s.slice(0, at) + this.char() + s.slice(at);
      case 1:
        return s.slice(0, at) + s.slice(at + 1 + this.int(20));
      case 2:
        return s.slice(0, at) + this.pick(HOSTILE_SNIPPETS) + s.slice(at);
      case 3: {
        const len = this.int(60);
        return s.slice(0, at) + s.slice(at, at + len).repeat(1 + this.int(4)) + s.slice(at);
      }
      case 4:
        return s.replace(/\d+/g, (m) => (this.r() < 0.2 ? this.pick(['0', '65536', '15000', '15006', '-1', '99999999999', '1337', '0x10']) : m));
      case 5:
        return s.slice(0, at); // a truncated file, as a half-written one
      case 6:
        return s.slice(0, at) + this.pick(this.r() < 0.5 ? EXAMPLES : HOSTILE_SNIPPETS).slice(0, this.int(200)) + s.slice(at);
      default:
        return s.replace(/[a-zA-Z]+/, () => this.pick(KEYS));
    }
  }
  /** A random YAML-ish value built from the schema's keys. */
  value(depth = 0): unknown {
    const k = this.int(depth > 3 ? 4 : 7);
    if (k === 0) return this.int(70_000) - 10;
    if (k === 1) return this.pick(HOSTILE_SNIPPETS);
    if (k === 2) return this.r() < 0.5;
    if (k === 3) return null;
    if (k === 4) return Array.from({ length: this.int(5) }, () => this.value(depth + 1));
    return Object.fromEntries(Array.from({ length: 1 + this.int(4) }, () => [this.pick(KEYS), this.value(depth + 1)]));
  }
  yamlCase(): string {
    if (this.r() < 0.25) return JSON.stringify(this.value());
    let s = this.pick(EXAMPLES);
    const edits = 1 + this.int(6);
    for (let i = 0; i < edits; i++) s = this.mutate(s);
    return s;
  }
  envCase(): Record<string, string> {
    const env: Record<string, string> = {};
    const n = 1 + this.int(3);
    for (let i = 0; i < n; i++) {
      let v = this.pick(CONTRAST_SEEDS);
      const edits = this.int(5);
      for (let j = 0; j < edits; j++) v = this.mutate(v);
      env[this.pick(CONTRAST_VARS)] = this.r() < 0.1 ? String(this.int(70_000)) : v;
    }
    return env;
  }
}

const printable = (line: string): boolean => !/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(line) && line.length < 1_000;

/** In-process outcome of one case: 'ok', 'invalid', or a description of what went wrong. */
function outcome(run: () => { config: Parameters<typeof describeConfig>[0] }): string {
  try {
    describeConfig(run().config);
    return 'ok';
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) return `threw ${(err as Error).name}: ${(err as Error).message}`;
    const lines = formatErrors(err.errors);
    if (lines.length > 21) return `printed ${lines.length} lines`;
    const bad = lines.find((l) => !printable(l));
    return bad === undefined ? 'invalid' : `unprintable error line: ${JSON.stringify(bad.slice(0, 200))}`;
  }
}

describe('config fuzz (fixed seed)', () => {
  it('YAML configs: thousands of random and mutated cases end valid or invalid, with printable errors', () => {
    const g = new Gen(prng(SEED));
    const deadline = Date.now() + 90_000;
    const tally = { ok: 0, invalid: 0 };
    let n = 0;
    for (; n < 4_000 && Date.now() < deadline; n++) {
      const text = g.yamlCase();
      const o = outcome(() => ({ config: loadConfigText(text, 'fuzz.yaml') }));
      if (o !== 'ok' && o !== 'invalid') expect.fail(`case ${n} (seed ${SEED}): ${o}\ninput: ${JSON.stringify(text.slice(0, 2000))}`);
      tally[o]++;
    }
    expect(n).toBeGreaterThanOrEqual(1_000);
    // Both outcomes occur, or the generator is not exercising the validator.
    expect(tally.ok).toBeGreaterThan(0);
    expect(tally.invalid).toBeGreaterThan(0);
  });

  it('Contrast environment values: thousands of cases end valid or invalid, with printable errors', () => {
    const g = new Gen(prng(SEED + 1));
    const deadline = Date.now() + 60_000;
    const tally = { ok: 0, invalid: 0 };
    let n = 0;
    for (; n < 4_000 && Date.now() < deadline; n++) {
      const env = g.envCase();
      const o = outcome(() => loadConfig(undefined, env));
      if (o !== 'ok' && o !== 'invalid') expect.fail(`case ${n} (seed ${SEED + 1}): ${o}\nenv: ${JSON.stringify(env)}`);
      tally[o]++;
    }
    expect(n).toBeGreaterThanOrEqual(1_000);
    expect(tally.ok).toBeGreaterThan(0);
    expect(tally.invalid).toBeGreaterThan(0);
  });

  it('the real CLI: sampled cases exit 0 or 1, without a hang or a stack trace', () => {
    const g = new Gen(prng(SEED + 2));
    const dir = mkdtempSync(path.join(tmpdir(), 'meshlet-fuzz-'));
    try {
      const deadline = Date.now() + 40_000;
      let n = 0;
      for (; n < 40 && Date.now() < deadline; n++) {
        const yaml = n % 2 === 0;
        const file = path.join(dir, `case-${n}.yaml`);
        let env: Record<string, string> = {};
        const args = ['check', '--skip-certs'];
        if (yaml) {
          writeFileSync(file, g.yamlCase());
          args.push('--config', file);
        } else env = g.envCase();
        const r = spawnSync(process.execPath, [...MESHLET, ...args], {
          encoding: 'utf8',
          timeout: 15_000,
          env: { PATH: process.env['PATH'] ?? '', ...env },
          maxBuffer: 4 * 1024 * 1024,
        });
        const what = `case ${n} (seed ${SEED + 2}): ${yaml ? readFileSync(file, 'utf8').slice(0, 500) : JSON.stringify(env)}\n${r.stderr}`;
        expect(r.error, what).toBeUndefined(); // a timeout shows here
        expect(r.signal, what).toBeNull();
        expect([0, 1], what).toContain(r.status);
        expect(r.stderr, what).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);
        for (const line of r.stderr.split('\n')) expect(printable(line), what).toBe(true);
      }
      // The 40 s budget only shortens the sample on a very busy machine.
      expect(n, 'CLI cases run').toBeGreaterThanOrEqual(10);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
