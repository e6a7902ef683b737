// `meshlet run` starts Envoy as early as it can: the certificate files are
// read and Envoy spawned, then the xDS socket bound, before meshlet checks the
// certificates, loads the resource builders and builds the snapshot, which
// Envoy's ADS stream waits for. With a
// real Envoy: the log shows that order and /ready turns 200 with nothing
// empty ever served; a failure after the spawn stops that Envoy and fails the
// start naming the cause; a missing certificate stops the start before any
// Envoy runs.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { cleanupPod, makePod, waitReady, type Pod, MESHLET } from '../helpers/meshlet.js';
import { EventLog, cmdlineOf, collectLines, procGone } from '../helpers/wait.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { loadConfig } from '../../src/config/load.js';
import { createRootLogger } from '../../src/log.js';
import { Meshlet } from '../../src/run/service.js';
import { LISTENERS_NOT_ASKED } from '../../src/run/readiness.js';

const ENVOY = '/usr/local/bin/envoy';
const cleanups = cleanupAfterEach();

interface Line {
  msg?: string;
  pid?: number;
  typeUrl?: string;
  resources?: number;
  buildMs?: number;
  versions?: Record<string, string>;
}

/** Whether `pid` is an Envoy running this pod's bootstrap. */
function envoyOf(pid: number, p: Pod): boolean {
  return cmdlineOf(pid).includes(path.join(p.dir, 'run', 'envoy.json'));
}

/** Every live process whose command line names this pod's bootstrap. */
function envoysOf(p: Pod): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => envoyOf(pid, p));
}

interface Run {
  lines: EventLog<string>;
  exited: Promise<number | null>;
  parsed: () => Line[];
  output: () => string;
}

function run(p: Pod, env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, [...MESHLET, 'run', '--config', p.configPath, '--skip-iptables-check', '--drain-seconds', '0', '--envoy', ENVOY], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const lines = new EventLog<string>();
  collectLines(child.stdout, lines);
  collectLines(child.stderr, lines);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    // An Envoy it started would outlive a SIGKILLed meshlet; it runs this pod's bootstrap, so it is ours to stop.
    for (const pid of envoysOf(p)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* it ended between the scan and the kill */
      }
    }
  });
  const parsed = (): Line[] =>
    lines.items.flatMap((l) => {
      try {
        return [JSON.parse(l) as Line];
      } catch {
        return [];
      }
    });
  return { lines, exited, parsed, output: () => lines.items.join('\n') };
}

/** Resolves with the exit code, or fails after 30 s with the output. */
async function exitOf(r: Run): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`meshlet run did not exit within 30 s; output:\n${r.output()}`)), 30_000);
  });
  try {
    return await Promise.race([r.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function pod(extra: Record<string, unknown> = {}): Promise<Pod> {
  const p = await makePod(extra);
  cleanups.push(() => cleanupPod(p));
  return p;
}

describe.skipIf(!existsSync(ENVOY) || process.getuid?.() !== 0)('meshlet run starts Envoy before it builds the snapshot', () => {
  it('logs envoy started → socket listening → certs checked → snapshot ready, in that order, serves nothing empty, and /ready turns 200', async () => {
    const p = await pod();
    const r = run(p);
    await Promise.race([
      waitReady(p),
      r.exited.then((code) => {
        throw new Error(`meshlet run exited (${code}) before /ready:\n${r.output()}`);
      }),
    ]);
    const lines = r.parsed();
    const at = (msg: string): number => {
      const i = lines.findIndex((l) => l.msg === msg);
      if (i < 0) throw new Error(`no "${msg}" line in:\n${r.output()}`);
      return i;
    };
    const order = ['envoy started', 'xDS server listening', 'certificates checked', 'xDS snapshot ready', 'meshlet serving'].map(at);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    const ready = lines[at('xDS snapshot ready')];
    expect(typeof ready?.buildMs).toBe('number');
    expect(Object.keys(ready?.versions ?? {}).length).toBeGreaterThanOrEqual(3);
    // Every cluster and listener response Envoy got carried resources: nothing empty was ever ACKed.
    const pushes = lines.filter((l) => l.msg === 'xDS response' && /\.(Cluster|Listener)$/.test(l.typeUrl ?? ''));
    expect(pushes.length).toBeGreaterThanOrEqual(2);
    for (const push of pushes) expect(push.resources, JSON.stringify(push)).toBeGreaterThan(0);
    // And the first response came after the snapshot was installed.
    expect(lines.findIndex((l) => l.msg === 'xDS response')).toBeGreaterThan(at('xDS snapshot ready'));
  });

  it('loads no built-in module from source before it spawns Envoy: node:crypto, used right after, is in the startup snapshot', async () => {
    const p = await pod();
    // A preload that records the built-in modules loaded when it runs (those of the snapshot, as the preload runs
    // after its deserialization) and when the process first spawns a child (Envoy, through setpriv). CommonJS,
    // taken with --require: node runs --import preloads only for a script, not for a start from the snapshot.
    const preload = path.join(p.dir, 'at-spawn.cjs');
    const out = path.join(p.dir, 'at-spawn.json');
    writeFileSync(
      preload,
      // On ChildProcess.prototype, which every spawn goes through: meshlet's modules took `spawn` itself when
      // the snapshot was built, before any preload ran.
      "const { ChildProcess } = process.getBuiltinModule('node:child_process');\n" +
        "const { writeFileSync } = process.getBuiltinModule('node:fs');\n" +
        'const atStart = [...process.moduleLoadList];\n' +
        'const spawn = ChildProcess.prototype.spawn;\n' +
        'let first = true;\n' +
        'ChildProcess.prototype.spawn = function (options) {\n' +
        '  const seen = { argv: options.args, atStart, modules: process.moduleLoadList };\n' +
        '  if (first && options.file === "setpriv") writeFileSync(process.env.MESHLET_TEST_AT_SPAWN, JSON.stringify(seen));\n' +
        '  first = false;\n' +
        '  return spawn.call(this, options);\n' +
        '};\n',
    );
    const r = run(p, { NODE_OPTIONS: `--require ${preload}`, MESHLET_TEST_AT_SPAWN: out });
    await Promise.race([
      waitReady(p),
      r.exited.then((code) => {
        throw new Error(`meshlet run exited (${code}) before /ready:\n${r.output()}`);
      }),
    ]);
    const seen = JSON.parse(readFileSync(out, 'utf8')) as { argv: string[]; atStart: string[]; modules: string[] };
    // The first setpriv is Envoy's (the proxy uid's access check comes after the snapshot).
    expect(seen.argv).toContain(path.join(p.dir, 'run', 'envoy.json'));
    const builtins = (list: string[]): string[] => list.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length));
    // In the snapshot: what spawns Envoy, and node:crypto, which the certificates' checks take right after the spawn.
    expect(builtins(seen.atStart)).toContain('child_process');
    expect(builtins(seen.atStart)).toContain('crypto');
    // Between the start and the spawn, no built-in was loaded (each would compile from source on the way to Envoy).
    const atStart = new Set(seen.atStart);
    expect(builtins(seen.modules.filter((m) => !atStart.has(m)))).toEqual([]);
    // The run went on to check the certificates and serve.
    expect(r.parsed().some((l) => l.msg === 'certificates checked')).toBe(true);
  });

  it('a failure after Envoy was spawned (the metrics port is taken) stops that Envoy and fails the start, naming the cause', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve, reject) => {
      blocker.once('error', reject);
      blocker.listen(0, '::', resolve);
    });
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as { port: number }).port;
    const p = await pod({ metrics: { port } });
    const r = run(p);
    expect(await exitOf(r)).toBe(1);
    const lines = r.parsed();
    const started = lines.find((l) => l.msg === 'envoy started');
    expect(started?.pid, r.output()).toBeGreaterThan(0);
    // The spawn and the snapshot came first; then the metrics listener failed.
    expect(lines.some((l) => l.msg === 'xDS snapshot ready')).toBe(true);
    expect(r.output()).toMatch(/EADDRINUSE/);
    expect(r.output()).toContain(String(port));
    expect(lines.some((l) => l.msg === 'meshlet serving')).toBe(false);
    // meshlet stopped Envoy before it exited: that pid no longer runs this pod's Envoy.
    expect(procGone(started?.pid ?? 0) || !envoyOf(started?.pid ?? 0, p)).toBe(true);
    expect(envoysOf(p)).toEqual([]);
  });

  it('a missing certificate stops the start before anything binds or any Envoy is spawned, with the file named', async () => {
    const p = await pod();
    rmSync(path.join(p.certDir, 'key.pem'));
    const r = run(p);
    expect(await exitOf(r)).toBe(1);
    const out = r.output();
    expect(out).toContain('certs.key');
    expect(out).toContain(path.join(p.certDir, 'key.pem'));
    expect(out).toContain('file not found');
    for (const msg of ['certificates checked', 'xDS server listening', 'envoy started']) expect(out).not.toContain(`"msg":"${msg}"`);
    // Nothing was prepared for an Envoy: no socket, no bootstrap, no process running it.
    expect(existsSync(path.join(p.dir, 'run', 'xds.sock'))).toBe(false);
    expect(existsSync(path.join(p.dir, 'run', 'envoy.json'))).toBe(false);
    expect(envoysOf(p)).toEqual([]);
  });

  it('a certificate file that is there but wrong stops the Envoy started meanwhile before it gets any config, with the problem named', async () => {
    const p = await pod();
    // Readable, so the start goes on and spawns Envoy; what it holds is checked while Envoy boots.
    writeFileSync(path.join(p.certDir, 'key.pem'), 'not a key\n');
    const r = run(p);
    expect(await exitOf(r)).toBe(1);
    const out = r.output();
    const lines = r.parsed();
    expect(out).toContain('certs.key');
    expect(out).toContain(path.join(p.certDir, 'key.pem'));
    expect(out).not.toContain('not a key');
    const started = lines.find((l) => l.msg === 'envoy started');
    expect(started?.pid, out).toBeGreaterThan(0);
    // That Envoy got nothing: no snapshot was built, no response sent, and it was stopped before meshlet exited.
    for (const msg of ['certificates checked', 'xDS snapshot ready', 'xDS response', 'meshlet serving']) expect(out).not.toContain(`"msg":"${msg}"`);
    expect(procGone(started?.pid ?? 0) || !envoyOf(started?.pid ?? 0, p)).toBe(true);
    expect(envoysOf(p)).toEqual([]);
  });
});

describe.skipIf(!existsSync(ENVOY) || process.getuid?.() !== 0)('the first readiness answer', () => {
  it('is asked of Envoy the moment every type is first ACKed, before any /ready, and the next /ready reuses it', async () => {
    const p = await pod();
    // A frozen clock: the kept answer cannot expire however slow the machine is.
    const meshlet = new Meshlet({
      loaded: loadConfig(p.configPath),
      logger: createRootLogger('silent'),
      skipIptablesCheck: true,
      envoyPath: ENVOY,
      now: () => 0,
    });
    cleanups.push(() => meshlet.stop(0));
    const asked: string[] = [];
    const admin = meshlet.admin.bind(meshlet);
    let bothAnswered: () => void = () => undefined;
    const firstCheck = new Promise<void>((resolve) => (bothAnswered = resolve));
    meshlet.admin = async (urlPath, opts) => {
      asked.push(urlPath);
      const r = await admin(urlPath, opts);
      if (asked.length === 2) bothAnswered();
      return r;
    };
    await meshlet.start();
    // Nobody called ready(): the ACKs started the check.
    await firstCheck;
    expect(asked.map((u) => u.split('?')[0]).sort()).toEqual(['/config_dump', '/stats']);
    const report = await meshlet.ready();
    expect(report.ready, JSON.stringify(report)).toBe(true);
    expect(asked).toHaveLength(2);
  });
});

describe('before the first snapshot', () => {
  it('/ready is not ready, and says the snapshot is not built yet', async () => {
    const p = await pod();
    const meshlet = new Meshlet({ loaded: loadConfig(p.configPath), logger: createRootLogger('silent'), noEnvoy: true, skipIptablesCheck: true });
    const report = await meshlet.ready();
    expect(report.ready).toBe(false);
    expect(report.checks['xdsSnapshot']?.detail).toMatch(/snapshot is not built yet/);
  });

  it("with the snapshot served and no Envoy connected, /ready says so and does not ask Envoy's admin", async () => {
    const p = await pod();
    const meshlet = new Meshlet({ loaded: loadConfig(p.configPath), logger: createRootLogger('silent'), noEnvoy: true, skipIptablesCheck: true });
    cleanups.push(() => meshlet.stop(0));
    await meshlet.start();
    const report = await meshlet.ready();
    expect(report.ready).toBe(false);
    expect(report.checks['xdsAcked']?.detail).toBe('no Envoy is connected to the xDS socket');
    // Not "Envoy admin unreachable": the admin socket was never tried.
    expect(report.checks['envoyListeners']).toEqual(LISTENERS_NOT_ASKED);
  });
});
