// Inputs that used to hang, crash or mislead `meshlet check`, run for real
// through the CLI: each must end with exit 1 within a bound and name the file.
import { afterEach, describe, expect, it } from 'vitest';
import { tmpDirs } from '../helpers/tmp.js';
import { spawnSync } from 'node:child_process';
import { symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { MESHLET } from '../helpers/meshlet.js';
import { validateConfig } from '../../src/config/validate.js';
import { formatErrors } from '../../src/config/errors.js';

const dirs = tmpDirs('meshlet-hostile-');
afterEach(dirs.removeAll);
const dir = dirs.make;

/** `meshlet check` bounded at 15 s (a busy machine is not a hang): a hang shows as a null status, a crash as a signal or exit 134. */
function check(args: string[]): { status: number | null; signal: string | null; out: string } {
  const r = spawnSync(process.execPath, [...MESHLET, 'check', ...args], { encoding: 'utf8', timeout: 15_000, maxBuffer: 16 * 1024 * 1024 });
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}

function expectRefused(r: ReturnType<typeof check>, file: string, why: RegExp): void {
  expect(r.signal, r.out).toBeNull();
  expect(r.status, r.out).toBe(1);
  expect(r.out).toContain(file);
  expect(r.out).toMatch(why);
  expect(r.out).not.toMatch(/\n\s+at .*:\d+:\d+/); // no stack trace
}

describe('hostile config files', () => {
  it('a FIFO as the config is refused at once, not read', () => {
    const d = dir();
    const fifo = path.join(d, 'config.yaml');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expectRefused(check(['--skip-certs', '--config', fifo]), fifo, /is a FIFO \(named pipe\), not a regular file/);
  });

  it('/dev/zero, and a config symlinked to it (out of its directory), are refused without reading', () => {
    expectRefused(check(['--skip-certs', '--config', '/dev/zero']), '/dev/zero', /is a character device, not a regular file/);
    const link = path.join(dir(), 'config.yaml');
    symlinkSync('/dev/zero', link);
    expectRefused(
      check(['--skip-certs', '--config', link]),
      link,
      /leads to \/dev\/zero, outside .*; a config file is read only inside the directory it is named in/,
    );
  });

  it('a directory and a file over the size limit are refused, naming the file', () => {
    const d = dir();
    const sub = path.join(d, 'conf.d');
    mkdirSync(sub);
    expectRefused(check(['--skip-certs', '--config', sub]), sub, /is a directory/);
    const big = path.join(d, 'big.yaml');
    writeFileSync(big, `# ${'x'.repeat(5 * 1024 * 1024)}\n`);
    expectRefused(check(['--skip-certs', '--config', big]), big, /over the 4194304-byte limit/);
  });

  it('a YAML alias cycle and a billion-laughs file name the file and the reason', () => {
    const d = dir();
    const cycle = path.join(d, 'cycle.yaml');
    writeFileSync(cycle, 'ingress: &a\n  ports:\n    - *a\n');
    expectRefused(check(['--skip-certs', '--config', cycle]), cycle, /alias refers to a node that contains it/);
    const laughs = path.join(d, 'laughs.yaml');
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++)
      lines.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(',')}]`,
      );
    writeFileSync(laughs, `${lines.join('\n')}\n`);
    expectRefused(check(['--skip-certs', '--config', laughs]), laughs, /aliases expand too much/);
  });

  it('a binary file is refused in one line; control characters in values are escaped; at most 20 errors are printed', () => {
    const d = dir();
    const bin = path.join(d, 'bin.yaml');
    writeFileSync(bin, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)));
    const r = check(['--skip-certs', '--config', bin]);
    expectRefused(r, bin, /NUL bytes: this is a binary file/);
    expect(r.out.split('\n').length).toBeLessThan(5);
    const ctl = path.join(d, 'ctl.yaml');
    const names = Array.from({ length: 50 }, (_, i) => `  - { name: "evil\\u202e${'x'.repeat(500)}\\u001b[31m${i}", port: 0 }`);
    writeFileSync(ctl, `ingress:\n  ports:\n${names.join('\n')}\n`);
    const c = check(['--skip-certs', '--config', ctl]);
    expectRefused(c, ctl, /and \d+ more/);
    expect(c.out).not.toMatch(/[\u202e\u001b]/);
    expect(c.out).toContain('\\u202e');
    const lines = c.out.trim().split('\n');
    expect(lines.length).toBeLessThanOrEqual(22);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(700);
  });

  it('a FIFO and /dev/zero as certificate files are refused, naming the field and the file', () => {
    const d = dir();
    const fifo = path.join(d, 'mesh-ca.pem');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const cfg = path.join(d, 'c.yaml');
    writeFileSync(cfg, `certs: { ca: ${fifo}, certChain: /dev/zero, key: ${path.join(d, 'missing.pem')} }\n`);
    const r = check(['--config', cfg]);
    expectRefused(r, fifo, /FIFO/);
    expect(r.out).toMatch(/\/dev\/zero/);
  });
});

describe('lists of any length', () => {
  it('200,000 entries validate without deep recursion, and the errors print capped', () => {
    const ports = Array.from({ length: 200_000 }, (_, i) => ({ name: `p${i}`, port: (i % 65_000) + 1 }));
    const r = validateConfig({ ingress: { ports } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.length).toBeGreaterThan(100_000);
    const lines = formatErrors(r.errors);
    expect(lines).toHaveLength(21);
    expect(lines[20]).toMatch(/^and \d+ more$/);
    const routes = Array.from({ length: 200_000 }, (_, i) => ({ name: `r${i}`, listen: `127.137.${(i >> 8) & 255}.${i & 255}`, remote: 'x' }));
    expect(validateConfig({ egress: { routes } }).ok).toBe(false); // 65,536 addresses for 200,000 portless routes: overlaps
  });
});

describe('ports and addresses that cannot work', () => {
  const errorsOf = (input: unknown): string[] => {
    const r = validateConfig(input);
    return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.rule}`);
  };
  it.each([
    ['debug on the inbound port', { debug: { address: '127.0.0.1:15006' } }, /debug.address: port 15006 is already used by proxy.inboundPort/],
    ['debug on the outbound port', { debug: { address: '127.0.0.1:15001' } }, /debug.address: port 15001 is already used by proxy.outboundPort/],
    ['debug on the portless port', { debug: { address: '127.0.0.1:15002' } }, /debug.address: port 15002 is already used by proxy.portlessEgressPort/],
    [
      'a portless route on 127.0.0.1',
      { egress: { routes: [{ name: 'a', listen: '127.0.0.1', remote: 'x' }] } },
      /egress.routes\[0\].listen: 127.0.0.1 is reserved/,
    ],
    ['a route on 127.0.0.6', { egress: { routes: [{ name: 'a', listen: '127.0.0.6:80', remote: 'x' }] } }, /egress.routes\[0\].listen: 127.0.0.6 is reserved/],
  ])('%s is refused', (_name, input, want) => {
    expect(errorsOf(input).join('\n')).toMatch(want);
  });

  it.each(['15006', '15020', '15001', '15002'])('CONTRAST_ADMIN_PORT=%s is refused through the CLI', (port) => {
    const r = spawnSync(process.execPath, [...MESHLET, 'check', '--skip-certs'], {
      encoding: 'utf8',
      timeout: 15_000,
      env: { ...process.env, CONTRAST_ADMIN_PORT: port },
    });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/metrics\.port: port is already used by /);
    expect(r.stderr).toContain(`(got ${port})`);
  });
});
