// ARCHITECTURE.md's module map must match the tree: every file or directory
// it names exists, and every source file is covered by a row (its directory,
// or the file named in a row).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const doc = readFileSync(path.join(ROOT, 'ARCHITECTURE.md'), 'utf8');

interface Row {
  paths: string[];
  mentioned: string[];
}

/** The rows of the `| path | concern |` table: first-column paths, and every `x.ts` the concern names, resolved. */
function moduleMap(): Row[] {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => /^\|\s*path\s*\|\s*concern\s*\|/.test(l));
  if (start < 0) throw new Error('ARCHITECTURE.md has no "| path | concern |" table');
  const rows: Row[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const [, first = '', concern = ''] = line.split(/(?<!\\)\|/);
    const paths: string[] = [];
    let dir = '';
    for (const [, tok = ''] of first.matchAll(/`([^`]+)`/g)) {
      const p = tok.includes('/') ? tok : path.posix.join(dir, tok);
      dir = p.endsWith('/') ? p : path.posix.dirname(p);
      paths.push(p);
    }
    const base = paths[0] ? (paths[0].endsWith('/') ? paths[0] : path.posix.dirname(paths[0])) : '';
    const mentioned = [...concern.matchAll(/`([^`\s]+\.ts)`/g)].map(([, tok = '']) => (tok.includes('/') ? tok : path.posix.join(base, tok)));
    rows.push({ paths, mentioned });
  }
  return rows;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.posix.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.posix.join(dir, e.name)] : [],
  );
}

describe('ARCHITECTURE.md module map', () => {
  const rows = moduleMap();

  it('names only paths that exist', () => {
    const missing = rows.flatMap((r) => [...r.paths, ...r.mentioned]).filter((p) => !existsSync(path.join(ROOT, p)));
    expect(missing).toEqual([]);
    expect(rows.length).toBeGreaterThan(10);
  });

  it('covers every source file under src/', () => {
    const dirs = rows.flatMap((r) => r.paths).filter((p) => p.endsWith('/') && statSync(path.join(ROOT, p)).isDirectory());
    const files = new Set(rows.flatMap((r) => [...r.paths, ...r.mentioned]));
    const uncovered = sourceFiles('src').filter((f) => !files.has(f) && !dirs.some((d) => f.startsWith(d)));
    expect(uncovered).toEqual([]);
  });
});
