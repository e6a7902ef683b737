// The command line as a user meets it: per-command help from the one table in
// src/cli/usage.ts, README's table rendered from it, stray arguments and bad
// log levels refused as usage errors, --json output on success and failure.
// (`meshlet run` exiting after a startup failure: test/run/startup-failure.test.ts.)
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { COMMAND_DOCS, ENV_DOCS, flagsOf, readmeCliTable, withCliTable } from '../../src/cli/usage.js';
import { COMMANDS } from '../../src/cli/main.js';
import { CLI, MESHLET } from '../helpers/meshlet.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { tmpDirFor } from '../helpers/tmp.js';

const ROOT = path.resolve('.');

function meshlet(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...MESHLET, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cleanups = cleanupAfterEach();

const tempDir = (): string => tmpDirFor(cleanups, 'meshlet-cli-');

describe('help', () => {
  it('every command has its own --help, naming each of its flags, and -h and `help CMD` print the same', () => {
    const seen = new Set<string>();
    for (const c of COMMAND_DOCS) {
      const r = meshlet([c.name, '--help']);
      expect(r.code, c.name).toBe(0);
      expect(r.stdout.startsWith(`Usage: meshlet ${c.name}`), c.name).toBe(true);
      for (const f of flagsOf(c.name)) expect(r.stdout, `${c.name} --${f.name}`).toContain(`--${f.name}`);
      expect(meshlet([c.name, '-h']).stdout).toBe(r.stdout);
      expect(meshlet(['help', c.name]).stdout).toBe(r.stdout);
      seen.add(r.stdout);
    }
    expect(seen.size).toBe(COMMAND_DOCS.length);
    // --help wins even over an unknown flag on the same line.
    expect(meshlet(['run', '--bogus', '--help']).code).toBe(0);
  });

  it('the global help lists every command and every environment variable', () => {
    const r = meshlet(['--help']);
    expect(r.code).toBe(0);
    for (const c of COMMAND_DOCS) expect(r.stdout).toContain(`  ${c.name} `);
    for (const e of ENV_DOCS) expect(r.stdout).toContain(e.name);
  });

  it('every option a command parses is documented (no hidden flags), and every documented one parses', async () => {
    expect(Object.keys(COMMANDS).sort()).toEqual(COMMAND_DOCS.map((c) => c.name).sort());
    for (const name of Object.keys(COMMANDS)) {
      const cmd = await COMMANDS[name]!();
      const documented = flagsOf(name).map((f) => f.name);
      for (const o of Object.keys(cmd.options ?? {})) expect(documented, `${name} --${o}`).toContain(o);
    }
    // The flags the issue found undocumented.
    expect(flagsOf('cleanup').map((f) => f.name)).toContain('backend');
    expect(flagsOf('run').map((f) => f.name)).toEqual(expect.arrayContaining(['node-id', 'envoy-log-level']));
    expect(flagsOf('bootstrap').map((f) => f.name)).toContain('node-id');
    expect(flagsOf('wait-ready').map((f) => f.name)).toContain('debug-address');
    expect(flagsOf('dump').map((f) => f.name)).toContain('debug-address');
  });

  it('every MESHLET_* variable the code reads is documented', () => {
    const names = new Set<string>();
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (p.endsWith('.ts') && !p.includes(`${path.sep}iptables${path.sep}`) && !p.includes(`${path.sep}demo${path.sep}`)) {
          // Reads of the environment: env['X'], env.X, TRUST_ENV-style 'MESHLET_X' values.
          for (const m of readFileSync(p, 'utf8').matchAll(/['"`](MESHLET_[A-Z0-9_]+)['"`]/g)) names.add(m[1]!);
        }
      }
    };
    walk(path.join(ROOT, 'src'));
    for (const m of readFileSync(path.join(ROOT, 'src/iptables/backend.ts'), 'utf8').matchAll(/env\['(MESHLET_[A-Z0-9_]+)'\]/g)) names.add(m[1]!);
    expect(names.size).toBeGreaterThan(5);
    const documented = ENV_DOCS.map((e) => e.name);
    expect([...names].filter((n) => !documented.includes(n))).toEqual([]);
  });

  it("README.md's CLI tables are exactly what src/cli/usage.ts renders (npm run docs)", () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain(readmeCliTable());
    expect(withCliTable(readme)).toBe(readme);
  });
});

describe('usage errors exit 2, never ignored', () => {
  it('a positional argument is refused by every command that takes none, naming --config where it applies', () => {
    for (const c of COMMAND_DOCS.filter((d) => d.positional === undefined)) {
      const r = meshlet([c.name, 'myfile.yaml']);
      expect(r.code, c.name).toBe(2);
      expect(r.stderr, c.name).toContain('unexpected argument "myfile.yaml"');
      if (flagsOf(c.name).some((f) => f.name === 'config')) expect(r.stderr).toContain(`meshlet ${c.name} --config myfile.yaml`);
    }
    // The case: check used to validate the defaults and say "config OK".
    const r = meshlet(['check', 'myfile.yaml', '--skip-certs']);
    expect(r.stdout).not.toContain('config OK');
  });

  it('a flag of another command is refused (cleanup has no config)', () => {
    expect(meshlet(['cleanup', '--config', 'x.yaml', '--dry-run']).code).toBe(2);
    expect(meshlet(['dev-pki', '--config', 'x.yaml', '--out', tempDir()]).code).toBe(2);
  });

  it('an invalid log level is a usage error for every command, from the flag or MESHLET_LOG_LEVEL', () => {
    for (const c of COMMAND_DOCS) {
      const flag = meshlet([c.name, '--log-level', 'bogus']);
      expect(flag.code, c.name).toBe(2);
      expect(flag.stderr, c.name).toContain('--log-level must be one of');
      const env = meshlet([c.name], { env: { MESHLET_LOG_LEVEL: 'loud' } });
      expect(env.code, c.name).toBe(2);
      expect(env.stderr, c.name).toContain('MESHLET_LOG_LEVEL must be one of');
    }
    // A valid one still works.
    expect(meshlet(['version', '--log-level', 'debug']).code).toBe(0);
  });

  it('run refuses a bad --envoy-log-level and --drain-seconds before starting anything', () => {
    const a = meshlet(['run', '--no-envoy', '--envoy-log-level', 'chatty']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--envoy-log-level must be one of');
    const b = meshlet(['run', '--no-envoy', '--drain-seconds', 'soon']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('--drain-seconds must be');
  });
});

describe('a reader that goes away', () => {
  // `meshlet check | head` closes the pipe before meshlet writes: that is EPIPE on process.stdout, which runCli turns
  // into a quiet exit. runCli adds that handler when the stream is first taken, not at start (src/cli/main.ts), so
  // this covers the lazy hook, from the startup snapshot and from the plain CLI.
  it.each([
    ['the startup snapshot', MESHLET],
    ['dist/src/cli.js', [CLI]],
  ])('is no error from %s: exit 0, nothing on stderr', async (_label, argv) => {
    const child = spawn(process.execPath, [...argv, 'help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Closed before node has even started: meshlet's first write fails with EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});

describe('--json always prints JSON', () => {
  const parse = (s: string): Record<string, unknown> => JSON.parse(s) as Record<string, unknown>;

  it('usage errors, invalid configs and unusable certificates are one JSON document on stdout', () => {
    const dir = tempDir();
    const usage = meshlet(['check', '--json', '--bogus']);
    expect(usage.code).toBe(2);
    expect(parse(usage.stdout)).toMatchObject({ ok: false, exitCode: 2, error: 'usage' });

    writeFileSync(path.join(dir, 'bad.yaml'), 'ingress:\n  ports:\n    - { name: web, port: 70000 }\n');
    const bad = meshlet(['check', '--json', '--config', 'bad.yaml'], { cwd: dir });
    expect(bad.code).toBe(1);
    const badDoc = parse(bad.stdout);
    expect(badDoc).toMatchObject({ ok: false, exitCode: 1, error: 'config', source: 'bad.yaml' });
    expect(badDoc['problems']).toEqual([
      expect.objectContaining({ path: 'ingress.ports[0].port', value: 70000, text: 'ingress.ports[0].port: must be in 1-65535 (got 70000)' }),
    ]);

    writeFileSync(path.join(dir, 'c.yaml'), `certs: { ca: ${dir}/none/ca.pem, certChain: ${dir}/none/chain.pem, key: ${dir}/none/key.pem }\n`);
    for (const cmd of ['check', 'run', 'bootstrap']) {
      const certs = meshlet([cmd, '--json', '--config', path.join(dir, 'c.yaml'), ...(cmd === 'bootstrap' ? ['--static'] : [])]);
      expect(certs.code, cmd).toBe(1);
      // stdout is JSON lines (run logs before it fails, e.g. a warning about the file's trust); the error is the last.
      const lines = certs.stdout.trimEnd().split('\n');
      for (const l of lines) expect(() => parse(l), `${cmd}: ${l}`).not.toThrow();
      const doc = parse(lines[lines.length - 1]!);
      expect(doc, cmd).toMatchObject({ ok: false, exitCode: 1, error: 'certificates' });
      expect(
        (doc['problems'] as { path: string }[]).map((p) => p.path),
        cmd,
      ).toEqual(['certs.ca', 'certs.certChain', 'certs.key']);
    }
  });

  it('successful commands print JSON too: check, version, dev-pki, cleanup --dry-run, init --dry-run', () => {
    const dir = tempDir();
    const pki = meshlet(['dev-pki', '--json', '--out', path.join(dir, 'certs'), '--san', 'web']);
    expect(pki.code).toBe(0);
    expect(parse(pki.stdout)).toMatchObject({ ok: true, sans: ['web'], key: path.join(dir, 'certs', 'key.pem') });
    writeFileSync(
      path.join(dir, 'e.yaml'),
      readFileSync(path.join(ROOT, 'config/example.yaml'), 'utf8').replaceAll('/contrast/tls-config', path.join(dir, 'certs')),
    );
    const check = parse(meshlet(['check', '--json', '--config', path.join(dir, 'e.yaml')]).stdout);
    expect(check['ok']).toBe(true);
    expect(check['summary']).toEqual(expect.arrayContaining([expect.stringMatching(/^dns: on/)]));
    expect(parse(meshlet(['version', '--json']).stdout)).toHaveProperty('version');
    const cleanup = meshlet(['cleanup', '--json', '--dry-run']);
    expect(cleanup.code).toBe(0);
    expect(parse(cleanup.stdout)).toMatchObject({ ok: true, dryRun: true, backend: 'auto' });
    const init = parse(meshlet(['init', '--json', '--dry-run', '--config', path.join(dir, 'e.yaml')]).stdout);
    expect(init).toMatchObject({ ok: true, dryRun: true });
    expect(String(init['commands'])).toContain('MESHLET_');
  });
});

describe('dev-pki and check', () => {
  it('dev-pki writes exactly the three documented files; the leaf expires in 30 days', () => {
    const dir = path.join(tempDir(), 'certs');
    const r = meshlet(['dev-pki', '--json', '--out', dir]);
    expect(r.code).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['certChain.pem', 'key.pem', 'mesh-ca.pem']);
    expect(statSync(path.join(dir, 'key.pem')).mode & 0o777).toBe(0o400);
    const days = (Date.parse((JSON.parse(r.stdout) as { notAfter: string }).notAfter) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThanOrEqual(30);
  });

  it('check describes DNS whether it is on or off', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'off.yaml'), 'ingress: { mode: disabled }\n');
    expect(meshlet(['check', '--skip-certs', '--config', path.join(dir, 'off.yaml')]).stdout).toContain('dns: off');
    writeFileSync(
      path.join(dir, 'on.yaml'),
      'dns: { enabled: true, upstreams: ["198.18.0.53"] }\negress:\n  routes:\n    - { name: api, listen: 127.137.0.7, remote: api-svc, names: [api-svc] }\n',
    );
    const on = meshlet(['check', '--skip-certs', '--config', path.join(dir, 'on.yaml')]);
    expect(on.stdout).toMatch(/^dns: on, .* 127\.0\.0\.1:15053 .*forwarded to 198\.18\.0\.53:53/m);
    expect(on.stdout).toContain('api: 127.137.0.7:* -> api-svc:<dialled port> (key exchange pq-preferred); DNS names api-svc');
  });
});

describe('wait-ready names what it could not reach', () => {
  /** A loopback port that was free a moment ago. */
  async function closedPort(): Promise<number> {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
    return port;
  }

  it('nothing listening: exit 1, the URL and the refusal in the message', async () => {
    const port = await closedPort();
    const r = meshlet(['wait-ready', '--debug-address', `127.0.0.1:${port}`, '--timeout', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach meshlet's debug endpoint at http://127.0.0.1:${port}/ready (connect ECONNREFUSED`);
  });

  it('a --debug-address that is not a loopback ip:port is a usage error naming the flag', () => {
    const r = meshlet(['wait-ready', '--debug-address', 'localhost', '--timeout', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--debug-address: .*\(got "localhost"\)/);
  });

  it('an endpoint that accepts and never answers: each attempt gives up after 2 s and says so', async () => {
    const silent = net.createServer((s) => s.resume()); // reads the request, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => silent.close(() => r())));
    const port = (silent.address() as net.AddressInfo).port;
    const child = spawn(process.execPath, [...MESHLET, 'wait-ready', '--debug-address', `127.0.0.1:${port}`, '--timeout', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code).toBe(1);
    expect(stderr).toContain(`cannot reach meshlet's debug endpoint at http://127.0.0.1:${port}/ready (no answer within 2 s)`);
  });
});
