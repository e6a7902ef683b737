// Source lines stay at most 160 characters, the width prettier formats to.
// Prettier cannot break a long string, so without this check long messages
// creep back in; split them into pieces joined with +. Exempt: generated
// files (listed in .prettierignore), a shebang, and a comment line that ends
// in a URL, which cannot be split without breaking the link.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const MAX = 160;
const ROOTS = ['src', 'test'];

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Paths prettier is told to skip: generated code. */
function ignored(): Set<string> {
  const lines = readFileSync('.prettierignore', 'utf8').split('\n');
  return new Set(lines.map((l) => l.trim()).filter((l) => l.endsWith('.ts') && !l.startsWith('#')));
}

function exempt(line: string, index: number): boolean {
  if (index === 0 && line.startsWith('#!')) return true;
  return /^\s*(\/\/|\*)\s*\S*https?:\/\/\S+$/.test(line);
}

describe('line length', () => {
  it(`every line in ${ROOTS.join('/ and ')}/ is at most ${MAX} characters`, () => {
    const skip = ignored();
    const long: string[] = [];
    for (const file of ROOTS.flatMap(tsFiles)) {
      if (skip.has(file)) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (line.length > MAX && !exempt(line, i)) long.push(`${file}:${i + 1} (${line.length})`);
        });
    }
    expect(long).toEqual([]);
  });

  it('the check sees a long line (it is not vacuous)', () => {
    expect(exempt('x'.repeat(MAX + 1), 3)).toBe(false);
    expect(tsFiles('src').length).toBeGreaterThan(10);
    expect(ignored().has('src/xds/wire-table.ts')).toBe(true);
  });
});
