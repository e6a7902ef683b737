// The `#!` line of src/cli.ts is how `meshlet` starts node, with the V8 and
// malloc settings its footprint depends on. The kernel reads only the first
// 256 bytes of a script for that line: a longer one loses its last flags
// without any error. And node refuses a flag it does not know, so a flag that
// a node upgrade removed would stop every sidecar at start.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const first = readFileSync(path.join(ROOT, 'src', 'cli.ts'), 'utf8').split('\n', 1)[0] ?? '';

describe('the #! line of src/cli.ts', () => {
  it('fits in what the kernel reads (255 bytes with its newline)', () => {
    expect(first.startsWith('#!/usr/bin/env -S ')).toBe(true);
    expect(Buffer.byteLength(`${first}\n`)).toBeLessThanOrEqual(255);
  });

  it('runs the CLI on the project node as the kernel would, and node takes every flag', () => {
    // The kernel runs the interpreter with the rest of the line as one argument, then the script.
    const rest = first.slice('#!/usr/bin/env '.length);
    const env = { ...process.env, PATH: `${path.join(ROOT, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}` };
    const r = spawnSync('/usr/bin/env', [rest, path.join(ROOT, 'dist', 'src', 'cli.js'), '--version'], { encoding: 'utf8', env, timeout: 15_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^meshlet /);
  });
});
