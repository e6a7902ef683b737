// meshlet sets most of its V8 flags at run time, first thing in src/cli.ts
// (its V8_FLAGS line), instead of on the `#!` line. These tests hold that this
// gives the same V8 as the command line would: V8 knows every flag, and a hot
// function, even one forced to optimize, ends in exactly the state it reaches
// under the same flags on the command line (and not the one it reaches under
// the defaults, which shows the probe can tell the difference). And node:v8 is
// the only module src/cli.ts loads before the flags are set.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { launcher } from '../../bench/lib/meshlet.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CLI_SOURCE = path.join(ROOT, 'src', 'cli.ts');
const { v8Flags } = launcher(CLI_SOURCE);

/** %GetOptimizationStatus of a hot function after a forced optimization, in a fresh node. */
function status(how: 'runtime' | 'command-line' | 'defaults'): { bits: number; stderr: string } {
  const script = `
    import { setFlagsFromString } from 'node:v8';
    if (${JSON.stringify(how)} === 'runtime') for (const f of ${JSON.stringify(v8Flags)}.split(' ')) setFlagsFromString(f);
    setFlagsFromString('--allow-natives-syntax');
    const f = new Function('x', 'let s = 0; for (let i = 0; i < x; i++) s += i; return s;');
    let t = 0;
    for (let i = 0; i < 20000; i++) t += f(100);
    new Function('f', '%PrepareFunctionForOptimization(f)')(f);
    f(10);
    new Function('f', '%OptimizeFunctionOnNextCall(f)')(f);
    f(10);
    console.log(new Function('f', 'return %GetOptimizationStatus(f)')(f));`;
  const args = [...(how === 'command-line' ? v8Flags.split(' ') : []), '--input-type=module', '-e', script];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 15_000 });
  expect(r.status, r.stderr).toBe(0);
  return { bits: Number(r.stdout.trim()), stderr: r.stderr };
}

describe('V8 flags set at run time by src/cli.ts', () => {
  it('are all known to V8 and act as they do on the command line', () => {
    expect(v8Flags).toContain('--no-opt');
    const runtime = status('runtime');
    expect(runtime.stderr).toBe('');
    const cmdline = status('command-line');
    const defaults = status('defaults');
    // Bit 2 is "never optimize": set under --no-opt --no-maglev, whichever way the flags came.
    expect(runtime.bits & 2).toBe(2);
    expect(runtime.bits).toBe(cmdline.bits);
    expect(defaults.bits).not.toBe(cmdline.bits);
  });

  it('are set after loading node:v8 alone: every module loaded earlier keeps node cached code for it resident', () => {
    const source = readFileSync(CLI_SOURCE, 'utf8');
    // No import statement, whatever its form (side effect only, several lines): static imports load before any line runs.
    expect(source.split('\n').filter((l) => /^\s*import\b(?!\()/.test(l))).toEqual([]);
    const set = source.indexOf("for (const flag of V8_FLAGS.split(' ')) setFlagsFromString(flag);");
    expect(set).toBeGreaterThan(0);
    // Nothing else is loaded above that line (comments aside).
    const code = source
      .slice(0, set)
      .split('\n')
      .filter((l) => !l.startsWith('//'))
      .join('\n');
    expect(code.match(/getBuiltinModule\([^)]*\)/g)).toEqual(["getBuiltinModule('node:v8')"]);
    expect(code).not.toMatch(/import\(|require\(/);
  });
});
