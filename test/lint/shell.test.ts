// Every shell script CI or a person runs parses: a quoting slip in .ci/run
// (an apostrophe inside a single-quoted node -e program) once broke CI before
// any test ran. `bash -n` reads a script without running it.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const scripts = [
  '.ci/run',
  ...['scripts', 'deploy'].flatMap((dir) =>
    readdirSync(path.join(ROOT, dir))
      .filter((f) => f.endsWith('.sh'))
      .map((f) => `${dir}/${f}`),
  ),
];

describe('shell scripts', () => {
  it('there are scripts to check', () => {
    expect(scripts.length).toBeGreaterThan(3);
  });

  it.each(scripts)('%s parses (bash -n)', (script) => {
    const r = spawnSync('bash', ['-n', path.join(ROOT, script)], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
