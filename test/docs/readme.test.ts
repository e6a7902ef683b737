// README.md's examples are real: every block marked `<!-- docs-test: NAME -->`
// is either a file the next commands use, or a `$ command` line followed by
// its output. This runs each command (those that need no root and no Envoy)
// and compares what it prints with the block, after normalising temp paths
// and timestamps, so a stale example fails CI.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MESHLET } from '../helpers/meshlet.js';

const ROOT = path.resolve('.');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

interface Block {
  name: string;
  lang: string;
  body: string;
}

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  for (const m of markdown.matchAll(/<!-- docs-test: ([\w.-]+) -->\n```(\w*)\n([\s\S]*?)```/g)) out.push({ name: m[1]!, lang: m[2]!, body: m[3]! });
  return out;
}

/**
 * What differs from run to run: mktemp names, timestamps, and the trust the
 * config file gets from where the temp directory lives (image on the root
 * filesystem; volume, with a warning, on a tmpfs /tmp).
 */
function normalise(text: string): string {
  return (
    text
      .replace(/\/tmp\/tmp\.[A-Za-z0-9]+/g, '/tmp/tmp.XXXXXXXXXX')
      .replace(/^config trust: (image|volume): .*$/m, 'config trust: <image or volume>')
      .replace(/^warning: \/tmp\/tmp\.XXXXXXXXXX\/example\.yaml: on a mounted volume .*\n?/m, '')
      // The resolvers come from this machine's /etc/resolv.conf.
      .replace(/forwards in clear to [^[]+ \[dns\.enabled\]/g, 'forwards in clear to <resolvers> [dns.enabled]')
      .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g, '<time>')
      .split('\n')
      .map((l) => l.trimEnd())
      .join('\n')
      .trimEnd()
  );
}

const work = mkdtempSync(path.join(tmpdir(), 'meshlet-docs-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs a README command line; `meshlet` is the built CLI. */
function run(line: string): string {
  const words = line.split(' ');
  let cmd: string;
  let args: string[];
  let cwd = ROOT;
  if (words[0] === 'meshlet') {
    [cmd, args] = [process.execPath, [...MESHLET, ...words.slice(1)]];
    // Files the README shows (bad.yaml) live in the work directory; repository paths resolve from the root.
    if (words.some((w) => existsSync(path.join(work, w)))) cwd = work;
  } else if (line === 'npm run -s example') {
    // The npm script is "build, then scripts/example.sh"; the suite has built already.
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['example']).toBe('npm run -s build && bash scripts/example.sh');
    [cmd, args] = ['bash', ['scripts/example.sh']];
  } else throw new Error(`README shows "$ ${line}", which this test does not know how to run; teach it or drop the docs-test marker`);
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60_000, env: { ...process.env, MESHLET_LOG_LEVEL: 'info' } });
  if (r.error) throw r.error;
  return `${r.stdout}${r.stderr}`;
}

describe('README.md examples match what the commands print', () => {
  const all = blocks(README);

  it('the README has the checked examples', () => {
    expect(all.map((b) => b.name)).toEqual(['example', 'bad.yaml', 'bad-config', 'missing-certs', 'missing-certs-run', 'help-dev-pki']);
  });

  for (const b of all) {
    if (b.lang === 'yaml') {
      it(`${b.name}: written for the commands below it`, () => {
        writeFileSync(path.join(work, b.name), b.body);
      });
      continue;
    }
    it(`${b.name}: ${b.body.split('\n')[0]}`, () => {
      const [first, ...expected] = b.body.split('\n');
      expect(first?.startsWith('$ '), `block ${b.name} starts with "$ command"`).toBe(true);
      // The missing-certificates examples assume Contrast's files are absent, as on a dev machine.
      if (b.name.startsWith('missing-certs') && existsSync('/contrast/tls-config')) return;
      expect(normalise(run(first!.slice(2)))).toBe(normalise(expected.join('\n')));
    });
  }
});
