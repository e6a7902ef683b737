// The `meshlet` launcher starts Envoy before node (src/envoy/early.ts): a real
// Envoy, started by the real launcher script, adopted by `meshlet run` once it
// has read the config, supervised, restarted and stopped; and what run does
// with an early Envoy it must not adopt, or with a hand-set variable naming a
// process that is not its own. Loopback traffic only.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { findEnvoy } from '../../src/envoy/binary.js';
import { EARLY_ENV, notAdoptable } from '../../src/envoy/early.js';
import { asProxyUid } from '../../src/envoy/supervisor.js';
import { cleanupPod, makePod, startMeshlet, until, waitReady, writeConfig, type MeshletProcess, type Pod } from '../helpers/meshlet.js';
import { startEchoApp, tlsExchange } from '../helpers/traffic.js';
import { procGone } from '../helpers/wait.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { NetLab, netnsUnavailable } from '../helpers/netns.js';

const cleanups = cleanupAfterEach();

async function pod(): Promise<Pod> {
  const p = await makePod((base) => ({ ingress: { mode: 'mapped', ports: [{ name: 'app', port: base + 50, mappedPort: base + 51, policy: 'tls' }] } }));
  cleanups.push(() => cleanupPod(p));
  const a = await startEchoApp(p.base + 50);
  cleanups.push(() => a.close());
  return p;
}

function start(p: Pod, opts: Parameters<typeof startMeshlet>[2] = {}): MeshletProcess {
  const m = startMeshlet(p, ['--envoy', findEnvoy()], opts);
  cleanups.push(async () => void (await m.stop()));
  return m;
}

interface Started {
  pid: number;
  startedBy: string | undefined;
}

/** Every "envoy started" line so far: its pid, and who started that Envoy. */
function envoysStarted(m: MeshletProcess): Started[] {
  return m
    .logs()
    .split('\n')
    .filter((l) => l.includes('"msg":"envoy started"'))
    .map((l) => JSON.parse(l) as { pid: number; startedBy?: string })
    .map((j) => ({ pid: j.pid, startedBy: j.startedBy }));
}

function killLater(pid: number): void {
  cleanups.push(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  });
}

const statusOf = (pid: number): string => readFileSync(`/proc/${pid}/status`, 'utf8');
const uidsOf = (pid: number): string => /^Uid:\s+(.*)$/m.exec(statusOf(pid))?.[1]?.trim() ?? '';
const parentOf = (pid: number): number => Number(/^PPid:\s+(\d+)$/m.exec(statusOf(pid))?.[1]);
const argvOf = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);

describe('Envoy started by the launcher before node', () => {
  it('is adopted: it runs as the proxy uid under meshlet, read its bootstrap from the FIFO, which is gone, and serves mTLS', async () => {
    const p = await pod();
    const m = start(p);
    await waitReady(p);
    const [first, ...more] = envoysStarted(m);
    expect(more).toEqual([]);
    expect(first?.startedBy).toBe('launcher');
    const pid = first?.pid ?? 0;
    killLater(pid);
    expect(parentOf(pid)).toBe(m.child.pid);
    expect(uidsOf(pid)).toBe('1337\t1337\t1337\t1337');
    const argv = argvOf(pid);
    const fifo = argv[argv.indexOf('-c') + 1] ?? '';
    expect(fifo).toBe(`/dev/shm/meshlet-envoy.${m.child.pid}.json`);
    expect(existsSync(fifo)).toBe(false);
    expect(m.logs()).toContain('"msg":"envoy read its bootstrap"');
    // What Envoy read is the bootstrap run wrote: its xDS cluster is this pod's socket.
    expect(readFileSync(`${p.dir}/run/envoy.json`, 'utf8')).toContain(`${p.dir}/run/xds.sock`);
    // The launcher's variable reached node only, not Envoy.
    expect(readFileSync(`/proc/${pid}/environ`, 'utf8')).not.toContain(EARLY_ENV);
    expect((await tlsExchange(p.base + 51, 'early')).reply).toBe('echo:early');
  });

  it('killed: meshlet sees its exit in /proc and spawns a new Envoy on the bootstrap file, which serves again', async () => {
    const p = await pod();
    const m = start(p);
    await waitReady(p);
    const early = envoysStarted(m)[0]?.pid ?? 0;
    killLater(early);
    process.kill(early, 'SIGKILL');
    const next = await until('a second "envoy started" line', () => envoysStarted(m)[1]);
    killLater(next.pid);
    expect(next.startedBy).toBeUndefined();
    expect(m.logs()).toMatch(/"code":null,"signal":"SIGKILL","restartInMs":\d+,"msg":"envoy exited; restarting"/);
    expect(argvOf(next.pid)).toContain(`${p.dir}/run/envoy.json`);
    await waitReady(p);
    expect((await tlsExchange(p.base + 51, 'again')).reply).toBe('echo:again');
  });

  it('stopped with meshlet (SIGTERM): meshlet exits 0 and the adopted Envoy is gone', async () => {
    const p = await pod();
    const m = start(p);
    await waitReady(p);
    const pid = envoysStarted(m)[0]?.pid ?? 0;
    killLater(pid);
    expect(await m.stop('SIGTERM')).toBe(0);
    await until(`Envoy ${pid} gone`, () => (procGone(pid) ? true : undefined), 10_000);
  });

  it('running what this config does not need (another proxy uid): ended, and meshlet spawns its own', async () => {
    const p = await pod();
    writeConfig(p, { ...p.config, proxy: { ...(p.config['proxy'] as Record<string, unknown>), uid: 1338, gid: 1338 } });
    const m = start(p);
    await waitReady(p);
    expect(m.logs()).toContain('"msg":"ended the Envoy the launcher started; meshlet starts its own"');
    const started = envoysStarted(m);
    expect(started.map((s) => s.startedBy)).toEqual([undefined]);
    const pid = started[0]?.pid ?? 0;
    killLater(pid);
    expect(uidsOf(pid)).toBe('1338\t1338\t1338\t1338');
    const early = Number(/"pid":(\d+),"why":"it runs /.exec(m.logs())?.[1]);
    expect(early).toBeGreaterThan(0);
    await until(`the launcher's Envoy ${early} gone`, () => (procGone(early) ? true : undefined), 10_000);
    expect(existsSync(`/dev/shm/meshlet-envoy.${m.child.pid}.json`)).toBe(false);
    expect((await tlsExchange(p.base + 51, 'own')).reply).toBe('echo:own');
  });

  it("a hand-set variable naming a process that is not meshlet's child: left alone, never signalled; meshlet spawns its own Envoy", async () => {
    const p = await pod();
    // A bystander, and a FIFO of root's where the launcher would make one: the variable names both.
    const bystander = spawn('sleep', ['60'], { stdio: 'ignore' });
    cleanups.push(() => void bystander.kill('SIGKILL'));
    const fifo = `/dev/shm/meshlet-envoy.${bystander.pid}.json`;
    execFileSync('mkfifo', ['-m', '0644', fifo]);
    cleanups.push(() => rmSync(fifo, { force: true }));
    const m = start(p, { launcher: false, env: { [EARLY_ENV]: `${bystander.pid}:${fifo}` } });
    await waitReady(p);
    expect(m.logs()).toContain(`which is not a child of meshlet (pid ${m.child.pid})`);
    expect(m.logs()).toContain('"msg":"left alone an Envoy the launcher did not start"');
    expect(procGone(bystander.pid ?? 0)).toBe(false);
    const started = envoysStarted(m);
    expect(started.map((s) => s.startedBy)).toEqual([undefined]);
    killLater(started[0]?.pid ?? 0);
    expect((await tlsExchange(p.base + 51, 'own')).reply).toBe('echo:own');
  });

  it('a FIFO left at its name by an earlier process of the same pid (a start that failed early) is replaced, and the Envoy adopted', async () => {
    const p = await pod();
    // sh makes the leftover at the name the launcher will use, then becomes the launcher: the same pid.
    const m = start(p, { wrap: ['sh', '-c', 'mkfifo -m 0644 /dev/shm/meshlet-envoy.$$.json && exec "$0" "$@"'] });
    await waitReady(p);
    const started = envoysStarted(m);
    expect(started.map((x) => x.startedBy)).toEqual(['launcher']);
    killLater(started[0]?.pid ?? 0);
    expect(existsSync(`/dev/shm/meshlet-envoy.${m.child.pid}.json`)).toBe(false);
  });

  it.skipIf(netnsUnavailable() !== undefined)(
    'an early Envoy that outlived its meshlet (its parent-death signal lost) is ended by the next meshlet in that network namespace',
    async () => {
      const lab = new NetLab('mle');
      cleanups.push(() => lab.cleanup());
      const ns = await lab.netns('stale');
      const p = await pod();
      // The FIFO of a launcher whose pid no process has (above the kernel's pid_max), as an Envoy it started waits on it.
      const fifo = '/dev/shm/meshlet-envoy.4194399.json';
      execFileSync('mkfifo', ['-m', '0644', fifo]);
      cleanups.push(() => rmSync(fifo, { force: true }));
      // That Envoy, as the proxy uid, without a parent-death signal; its parent is this test, not process 4194399.
      const orphan = spawn(
        'ip',
        ['netns', 'exec', ns, 'setpriv', '--reuid=1337', '--regid=1337', '--clear-groups', '--', findEnvoy(), '-c', fifo, '--disable-hot-restart'],
        {
          stdio: 'ignore',
        },
      );
      cleanups.push(() => void orphan.kill('SIGKILL'));
      const pid = orphan.pid ?? 0;
      await until('the orphan runs Envoy as uid 1337', () => (argvOf(pid)[1] === '-c' && uidsOf(pid).startsWith('1337') ? true : undefined));
      const m = start(p, { ns });
      await until('meshlet ends it', () => (m.logs().includes(`"pids":[${pid}],"bootstrap"`) ? true : undefined));
      expect(m.logs()).toContain('"msg":"ending a stale Envoy left by an earlier meshlet"');
      await until(`Envoy ${pid} gone`, () => (procGone(pid) ? true : undefined), 10_000);
      // meshlet's own early Envoy, waiting on its own FIFO with meshlet as its parent, was not taken for a stale one.
      await until('meshlet serving', () => (m.logs().includes('"msg":"meshlet serving"') ? true : undefined));
      expect(envoysStarted(m).map((x) => x.startedBy)).toEqual(['launcher']);
    },
  );

  it('not started for a command line the launcher does not know (--no-envoy): no Envoy at all', async () => {
    const p = await pod();
    const m = startMeshlet(p, ['--no-envoy']);
    cleanups.push(async () => void (await m.stop()));
    await until('meshlet serving', () => (m.logs().includes('"msg":"meshlet serving"') ? true : undefined));
    expect(envoysStarted(m)).toEqual([]);
    expect(m.logs()).not.toContain('ended the Envoy the launcher started');
    expect(existsSync(`/dev/shm/meshlet-envoy.${m.child.pid}.json`)).toBe(false);
  });

  it('adoption checks the ids of an Envoy setpriv has already executed, which its command line no longer shows', async () => {
    const want = (uid: number): string[] => ['setpriv', ...asProxyUid(uid, uid), 'sleep', '60'];
    const child = spawn(want(1337)[0] ?? '', want(1337).slice(1), { stdio: 'ignore' });
    cleanups.push(() => void child.kill('SIGKILL'));
    const pid = child.pid ?? 0;
    await until('setpriv has executed sleep', () => (argvOf(pid)[0] === 'sleep' ? true : undefined));
    expect(notAdoptable(pid, want(1337), { uid: 1337, gid: 1337 })).toBeUndefined();
    expect(notAdoptable(pid, want(1338), { uid: 1338, gid: 1338 })).toBe("it runs as uid 1337/1337/1337/1337, and this config's proxy uid is 1338");
    expect(notAdoptable(pid, want(1337), { uid: 1337, gid: 1338 })).toBe("it runs as gid 1337/1337/1337/1337, and this config's proxy gid is 1338");
    expect(notAdoptable(pid, ['setpriv', ...asProxyUid(1337, 1337), 'sleep', '61'], { uid: 1337, gid: 1337 })).toMatch(/^it runs \["sleep","60"\]/);
    child.kill('SIGKILL');
    await until('sleep gone', () => (procGone(pid) ? true : undefined));
    expect(notAdoptable(pid, want(1337), { uid: 1337, gid: 1337 })).toBe('it has exited');
  });
});
