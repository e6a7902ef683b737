// A compromised Envoy runs as the proxy uid (1337). These attacks run as a
// real uid-1337 process (setpriv) against a real `meshlet run` and check
// that root's files stay untouched: the runtime directory is never the proxy
// uid's, planted symlinks make meshlet refuse to start (naming the path and
// the fix), and every file meshlet writes lands on a fresh inode.
import { describe, expect, it, vi } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { cleanupPod, makePod, startMeshlet, until, type MeshletProcess, type Pod, MESHLET } from '../helpers/meshlet.js';
import { checkRuntimeDir, chmodOwnDir, prepareRuntimeDir, prepareRuntimeDirs } from '../../src/run/runtime-dir.js';
import type { MeshConfig } from '../../src/config/model.js';
import { ensureProxyDir } from '../../src/envoy/admin.js';
import { adminDir } from '../../src/config/constants.js';
import { writeFileAtomic } from '../../src/fs/safe-write.js';
import { cannotRun } from '../helpers/gate.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const PROXY = 1337;
const NEEDS_ROOT = process.getuid?.() === 0 ? undefined : 'needs root (a uid-1337 attacker is run with setpriv)';
const cleanups = cleanupAfterEach();

async function pod(): Promise<Pod> {
  const p = await makePod();
  cleanups.push(() => cleanupPod(p));
  return p;
}

function meshlet(p: Pod): MeshletProcess {
  const m = startMeshlet(p, ['--no-envoy']);
  cleanups.push(() => m.stop());
  return m;
}

/** Waits for the "meshlet serving" log line; if meshlet exits instead, the timeout message carries its logs. */
async function serving(m: MeshletProcess): Promise<void> {
  await until(
    'meshlet serving (log line)',
    () => {
      if (m.logs().includes('meshlet serving')) return true;
      if (m.child.exitCode !== null) throw new Error(`meshlet exited ${m.child.exitCode}: ${m.logs()}`);
      return undefined;
    },
    30_000,
  );
}

/** Runs a shell snippet as the proxy uid with no supplementary groups. */
function asProxy(script: string): { code: number; out: string } {
  const r = spawnSync('setpriv', [`--reuid=${PROXY}`, `--regid=${PROXY}`, '--clear-groups', '--', 'sh', '-c', script], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** A root-only file, the target of every attack. */
function rootFile(p: Pod): string {
  const f = path.join(p.dir, 'root-secret');
  writeFileSync(f, 'root only\n', { mode: 0o600 });
  return f;
}

const shape = (f: string): string => {
  const st = lstatSync(f);
  return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${readFileSync(f, 'utf8')}`;
};

describe.skipIf(cannotRun('the proxy uid cannot touch root files through the runtime directory', NEEDS_ROOT))(
  'the proxy uid cannot touch root files through the runtime directory',
  () => {
    it('meshlet creates the runtime dir root-owned 0755 with only envoy/ for the proxy uid, and uid 1337 cannot plant or swap anything in it', async () => {
      const p = await pod();
      const target = rootFile(p);
      const before = shape(target);
      const m = meshlet(p);
      const run = path.join(p.dir, 'run');
      await serving(m);
      const st = lstatSync(run);
      expect([st.uid, st.mode & 0o7777]).toEqual([0, 0o755]);
      const sock = lstatSync(path.join(run, 'xds.sock'));
      expect([sock.isSocket(), sock.uid, sock.mode & 0o777]).toEqual([true, PROXY, 0o600]);
      const boot = lstatSync(path.join(run, 'envoy.json'));
      expect([boot.isFile(), boot.uid, boot.mode & 0o777]).toEqual([true, 0, 0o644]);
      const envoyDir = lstatSync(path.join(run, 'envoy'));
      expect([envoyDir.isDirectory(), envoyDir.uid, envoyDir.mode & 0o7777]).toEqual([true, PROXY, 0o700]);
      // The attacks of a compromised Envoy: plant the temp name, swap the socket, replace the bootstrap.
      const attack = asProxy(
        [
          `ln -s ${target} ${run}/envoy.json.tmp`,
          `ln -sf ${target} ${run}/xds.sock`,
          `mv -f ${run}/envoy.json ${run}/old.json`,
          `ln -s ${target} ${run}/iptables.sha256`,
          `echo x > ${run}/new`,
        ]
          .map((c) => `${c} && echo SUCCEEDED: ${c.split(' ')[0]}`)
          .join('; '),
      );
      expect(attack.out).not.toMatch(/SUCCEEDED/);
      expect(attack.out).toMatch(/Permission denied/);
      // What it is allowed: its own directory, which root never writes into.
      expect(asProxy(`touch ${run}/envoy/admin.sock.tmp && echo ok`).out).toContain('ok');
      await m.stop();
      expect(shape(target)).toBe(before);
      // A restart finds its own files and starts again.
      const again = meshlet(p);
      await serving(again);
      expect(shape(target)).toBe(before);
    });

    it('a uid-1337 loop swapping xds.sock for a symlink during startup never gets root to chown or chmod the target', async () => {
      const p = await pod();
      const target = rootFile(p);
      const before = shape(target);
      const run = path.join(p.dir, 'run');
      mkdirSync(run, { mode: 0o755 });
      // The attacker hammers the socket name while meshlet starts: until 200 tries after the socket appeared (meshlet
      // chowns and chmods it just after), at most 4000. Each try forks ln, so a count alone could outlast the timeout
      // on a loaded machine.
      const m = meshlet(p);
      const sock = `${run}/xds.sock`;
      const r = asProxy(
        `i=0; ok=0; after=0; while [ $i -lt 4000 ] && [ $after -lt 200 ]; do ln -sf ${target} ${sock} 2>/dev/null && ok=$((ok+1)); ` +
          `[ -S ${sock} ] && after=$((after+1)); i=$((i+1)); done; echo swaps=$ok tries=$i`,
      );
      expect(r.out).toContain('swaps=0');
      await serving(m);
      expect(shape(target)).toBe(before);
      expect(lstatSync(path.join(run, 'xds.sock')).isSocket()).toBe(true);
    });

    it(
      'refuses to start when the runtime dir belongs to the proxy uid (as older meshlets left it) and names the fix; the planted symlink target is ' +
        'untouched',
      async () => {
        const p = await pod();
        const target = rootFile(p);
        const before = shape(target);
        const run = path.join(p.dir, 'run');
        mkdirSync(run, { mode: 0o700 });
        chownSync(run, PROXY, PROXY);
        expect(asProxy(`ln -s ${target} ${run}/envoy.json.tmp && ln -s ${target} ${run}/envoy.json && echo planted`).out).toContain('planted');
        const m = meshlet(p);
        expect(await m.exited).toBe(1);
        expect(m.logs()).toContain(`runtime directory: ${run} is owned by uid ${PROXY}`);
        expect(m.logs()).toContain(`chown 0 ${run} && chmod 0755 ${run}`);
        expect(shape(target)).toBe(before);
        expect(readlinkSync(path.join(run, 'envoy.json'))).toBe(target);
      },
    );

    it('refuses a group/other-writable runtime dir that is not empty, and a symlink planted in it, naming the path', async () => {
      const p = await pod();
      const target = rootFile(p);
      const run = path.join(p.dir, 'run');
      mkdirSync(run);
      chmodSync(run, 0o777); // a Kubernetes emptyDir, after something wrote into it
      expect(asProxy(`ln -s ${target} ${run}/envoy.json && echo planted`).out).toContain('planted');
      const m = meshlet(p);
      expect(await m.exited).toBe(1);
      expect(m.logs()).toMatch(new RegExp(`runtime directory: ${run} has mode 0777: writable by other uids; chmod 0755 ${run}`));
      chmodSync(run, 0o755);
      expect(() => checkRuntimeDir(run, PROXY)).toThrow(`${run}/envoy.json is a symlink, which root would follow; remove it`);
      expect(shape(target)).toContain('root only');
    });

    it(
      "tightens a 0777 directory (a Kubernetes emptyDir) holding only root's files from meshlet init, and refuses an envoy/ entry that is not the proxy " +
        "uid's 0700 directory",
      () => {
        const dir = path.join(execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim(), 'run');
        cleanups.push(() => void spawnSync('rm', ['-rf', path.dirname(dir)]));
        mkdirSync(dir);
        chmodSync(dir, 0o777);
        writeFileSync(path.join(dir, 'xtables.lock'), '', { mode: 0o600 });
        writeFileSync(path.join(dir, 'iptables.sha256'), 'x\n', { mode: 0o644 });
        prepareRuntimeDir(dir, PROXY);
        expect(statSync(dir).mode & 0o7777).toBe(0o755);
        ensureProxyDir(adminDir(path.join(dir, 'xds.sock')), PROXY, PROXY);
        checkRuntimeDir(dir, PROXY);
        // A loose mode is the proxy uid's to set (ensureProxyDir tightens it again); another owner is refused.
        chmodSync(path.join(dir, 'envoy'), 0o777);
        checkRuntimeDir(dir, PROXY);
        chownSync(path.join(dir, 'envoy'), 0, 0);
        expect(() => checkRuntimeDir(dir, PROXY)).toThrow(/envoy must be a directory owned by the proxy uid 1337 with mode 0700/);
      },
    );
  },
);

describe.skipIf(cannotRun('files meshlet writes', NEEDS_ROOT))('files meshlet writes', () => {
  it('bootstrap --static --out replaces an existing 0644 file with a 0600 one and never follows a symlink there', async () => {
    const p = await pod();
    const out = path.join(p.dir, 'static.json');
    writeFileSync(out, 'old\n', { mode: 0o644 });
    chmodSync(out, 0o644);
    execFileSync(process.execPath, [...MESHLET, 'bootstrap', '--static', '--config', p.configPath, '--out', out]);
    const st = lstatSync(out);
    expect([st.isFile(), st.mode & 0o777]).toEqual([true, 0o600]);
    expect(readFileSync(out, 'utf8')).toContain('PRIVATE KEY');
    // A symlink at the output path is replaced, its target left alone.
    const target = rootFile(p);
    const before = shape(target);
    const link = path.join(p.dir, 'linked.json');
    symlinkSync(target, link);
    execFileSync(process.execPath, [...MESHLET, 'bootstrap', '--static', '--config', p.configPath, '--out', link]);
    expect(lstatSync(link).isFile()).toBe(true);
    expect(shape(target)).toBe(before);
  });

  it("the atomic writer refuses nothing planted: a symlink at the target is replaced, a file of the proxy uid gets root's mode", async () => {
    const p = await pod();
    const target = rootFile(p);
    const before = shape(target);
    const f = path.join(p.dir, 'out.json');
    symlinkSync(target, f);
    writeFileAtomic(f, 'new\n', 0o600);
    expect(shape(f)).toBe('0:0 600 new\n');
    expect(shape(target)).toBe(before);
  });
});

/** A root-owned temp dir (0755, so uid 1337 can walk into it) under the sticky /tmp, removed after the test. */
function rootTemp(): string {
  const base = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
  cleanups.push(() => void spawnSync('rm', ['-rf', base]));
  chmodSync(base, 0o755);
  return base;
}

/** A root-owned directory with mode 0700: what an attack would chmod to 0755. */
function rootDir(base: string, name = 'target'): string {
  const d = path.join(base, name);
  mkdirSync(d);
  chmodSync(d, 0o700);
  return d;
}

/** A 1777 directory of root's, like /tmp, where uid 1337 can add entries but not replace root's. */
function stickyDir(base: string): string {
  const d = path.join(base, 'sticky');
  mkdirSync(d);
  chmodSync(d, 0o1777);
  return d;
}

const modeOf = (f: string): string => {
  const st = lstatSync(f);
  return `${st.uid} ${(st.mode & 0o7777).toString(8)}`;
};

type RuntimeDirModule = typeof import('../../src/run/runtime-dir.js');

/**
 * A fresh runtime-dir module whose lstatSync runs `after` right after the first lstat of a path that `when`
 * selects (whether the lstat found it or not): the window between meshlet's lstat and its next step, which a
 * racing process hits only sometimes, opened deterministically. The module takes node:fs's functions when it
 * loads, so the wrapper is in place only while it loads and stays with that instance alone.
 */
async function withLstatWindow(when: (p: string) => boolean, after: () => void): Promise<RuntimeDirModule> {
  const fs = process.getBuiltinModule('node:fs') as { lstatSync: typeof lstatSync };
  const real = fs.lstatSync;
  let fired = false;
  const hooked = ((p: string, opts?: object) => {
    try {
      return real(p, opts);
    } finally {
      if (!fired && when(p)) {
        fired = true;
        after();
      }
    }
  }) as typeof lstatSync;
  fs.lstatSync = hooked;
  try {
    vi.resetModules();
    return await import('../../src/run/runtime-dir.js');
  } finally {
    fs.lstatSync = real;
  }
}

describe.skipIf(cannotRun('creating the runtime directory never follows a symlink of the proxy uid', NEEDS_ROOT))(
  'creating the runtime directory never follows a symlink of the proxy uid',
  () => {
    it('a symlink uid 1337 plants in a sticky parent right after the lstat found the directory missing is refused; its target keeps its mode', async () => {
      const base = rootTemp();
      const target = rootDir(base);
      const run = path.join(stickyDir(base), 'run');
      const before = modeOf(target);
      let planted = '';
      const mod = await withLstatWindow(
        (p) => p === run,
        () => (planted = asProxy(`ln -s ${target} ${run} && echo planted`).out),
      );
      expect(() => mod.prepareRuntimeDir(run, PROXY)).toThrow(`runtime directory: ${run} is a symlink; replace it with a real directory`);
      expect(planted).toContain('planted');
      expect(lstatSync(run).uid).toBe(PROXY);
      expect(modeOf(target)).toBe(before);
    });

    it('a parent that is a symlink of uid 1337 is refused even where it leads to a root-owned directory; a root-owned one is followed', () => {
      const base = rootTemp();
      const target = rootDir(base);
      chmodSync(target, 0o755);
      const sticky = stickyDir(base);
      // In a sticky directory only its owner can replace a link: uid 1337 could point its own elsewhere after the check.
      expect(asProxy(`ln -s ${target} ${sticky}/link && echo planted`).out).toContain('planted');
      expect(() => prepareRuntimeDir(path.join(sticky, 'link', 'run'), PROXY)).toThrow(
        `runtime directory: ${sticky}/link (a parent of the runtime directory) is a symlink owned by uid ${PROXY}`,
      );
      expect(readdirSync(target)).toEqual([]);
      // Also when the link of uid 1337 is reached through a root-owned one.
      symlinkSync(`${sticky}/link`, `${base}/via-root`);
      expect(() => prepareRuntimeDir(path.join(base, 'via-root', 'run'), PROXY)).toThrow(`${sticky}/link (a parent of the runtime directory) is a symlink`);
      expect(readdirSync(target)).toEqual([]);
      // A root-owned link leads the way, as /var/run -> /run does.
      symlinkSync(target, `${base}/root-link`);
      prepareRuntimeDir(path.join(base, 'root-link', 'run'), PROXY);
      expect(modeOf(path.join(target, 'run'))).toBe('0 755');
    });

    it('a symlink of uid 1337 already where the runtime directory should be is refused, naming it; its target keeps its mode', () => {
      const base = rootTemp();
      const target = rootDir(base);
      const run = path.join(stickyDir(base), 'run');
      expect(asProxy(`ln -s ${target} ${run} && echo planted`).out).toContain('planted');
      const before = modeOf(target);
      expect(() => prepareRuntimeDir(run, PROXY)).toThrow(`runtime directory: ${run} is a symlink; replace it with a real directory owned by uid 0`);
      expect(modeOf(target)).toBe(before);
    });

    it('a symlink uid 1337 plants at a missing parent level while meshlet creates it is refused; nothing is created through it', async () => {
      const base = rootTemp();
      const target = rootDir(base);
      const sticky = stickyDir(base);
      const run = path.join(sticky, 'a', 'run');
      const before = modeOf(target);
      let planted = '';
      const mod = await withLstatWindow(
        (p) => p.startsWith(`${sticky}/a`) && !existsSync(p),
        () => (planted = asProxy(`ln -s ${target} ${sticky}/a && echo planted`).out),
      );
      expect(() => mod.prepareRuntimeDir(run, PROXY)).toThrow(`runtime directory: ${sticky}/a appeared as a symlink of uid ${PROXY}`);
      expect(planted).toContain('planted');
      expect(readdirSync(target)).toEqual([]);
      expect(modeOf(target)).toBe(before);
    });

    it('a parent uid 1337 can write (its own, or 0777 without the sticky bit) is refused before anything is created in it', () => {
      const base = rootTemp();
      const owned = path.join(base, 'owned');
      mkdirSync(owned, { mode: 0o755 });
      chownSync(owned, PROXY, PROXY);
      const open = path.join(base, 'open');
      mkdirSync(open);
      chmodSync(open, 0o777);
      for (const [parent, problem] of [
        [owned, `is owned by uid ${PROXY} with mode 0755`],
        [open, 'is owned by uid 0 with mode 0777'],
      ] as const) {
        for (const dir of [path.join(parent, 'run'), path.join(parent, 'a', 'b', 'run')]) {
          const why = `${problem}, so another uid could replace the runtime directory; make it root-owned`;
          expect(() => prepareRuntimeDir(dir, PROXY)).toThrow(`runtime directory: ${parent} (a parent of the runtime directory) ${why}`);
        }
        expect(readdirSync(parent)).toEqual([]);
      }
    });

    it('chmodOwnDir opens with O_NOFOLLOW and checks the owner: a symlink, or a directory meshlet does not own, at the name is never chmodded', () => {
      const base = rootTemp();
      const target = rootDir(base);
      const before = modeOf(target);
      const link = path.join(base, 'link');
      symlinkSync(target, link);
      expect(() => chmodOwnDir(link, 0o755)).toThrow(`runtime directory: ${link} is a symlink`);
      expect(modeOf(target)).toBe(before);
      const proxyOwned = path.join(base, 'proxy-owned');
      mkdirSync(proxyOwned, { mode: 0o700 });
      chownSync(proxyOwned, PROXY, PROXY);
      expect(() => chmodOwnDir(proxyOwned, 0o755)).toThrow(`runtime directory: ${proxyOwned} was replaced while meshlet was setting its mode`);
      expect(modeOf(proxyOwned)).toBe(`${PROXY} 700`);
    });

    it('an emptyDir swapped for a symlink after the lstat saw a 0777 directory is refused, not tightened through the symlink', async () => {
      const base = rootTemp();
      const target = rootDir(base);
      const before = modeOf(target);
      const run = path.join(base, 'run');
      mkdirSync(run);
      chmodSync(run, 0o777);
      // In a parent no other uid can write, only root can stand in for the attacker here.
      const mod = await withLstatWindow(
        (p) => p === run,
        () => {
          renameSync(run, `${run}.old`);
          symlinkSync(target, run);
        },
      );
      expect(() => mod.prepareRuntimeDir(run, PROXY)).toThrow(`runtime directory: ${run} is a symlink`);
      expect(modeOf(target)).toBe(before);
    });

    it('creates each missing level of the path one at a time, root-owned 0755, whatever the umask', () => {
      const base = rootTemp();
      const run = path.join(base, 'x', 'y', 'run');
      const old = process.umask(0o077);
      try {
        prepareRuntimeDir(run, PROXY);
      } finally {
        process.umask(old);
      }
      for (const d of [path.join(base, 'x'), path.join(base, 'x', 'y'), run]) expect([d, modeOf(d)]).toEqual([d, '0 755']);
      expect(asProxy(`cd ${run} && echo reached`).out).toContain('reached');
    });
  },
);

describe.skipIf(cannotRun('chmods by the proxy uid do not stop later starts', NEEDS_ROOT))('chmods by the proxy uid do not stop later starts', () => {
  function proxyConfig(run: string): MeshConfig['proxy'] {
    return {
      uid: PROXY,
      gid: PROXY,
      inboundPort: 15006,
      outboundPort: 15001,
      portlessEgressPort: 15002,
      xdsSocket: path.join(run, 'xds.sock'),
      bootstrapPath: path.join(run, 'envoy.json'),
    };
  }

  /** A Unix socket bound at `file` (by root, kept open until the test ends), then given to the proxy uid as meshlet does. */
  async function proxySocket(file: string): Promise<void> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, resolve);
    });
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    chownSync(file, PROXY, PROXY);
  }

  it('after uid 1337 runs chmod 0755 on envoy/ (or 2700) and chmod 0666 on its xds.sock, prepareRuntimeDirs succeeds and envoy/ is 0700 again', async () => {
    const run = path.join(rootTemp(), 'run');
    const proxy = proxyConfig(run);
    prepareRuntimeDirs(proxy);
    const envoy = path.join(run, 'envoy');
    expect(modeOf(envoy)).toBe(`${PROXY} 700`);
    await proxySocket(proxy.xdsSocket);
    expect(asProxy(`chmod 0755 ${envoy} && chmod 0666 ${proxy.xdsSocket} && echo done`).out).toContain('done');
    expect([modeOf(envoy), modeOf(proxy.xdsSocket)]).toEqual([`${PROXY} 755`, `${PROXY} 666`]);
    prepareRuntimeDirs(proxy);
    expect(modeOf(envoy)).toBe(`${PROXY} 700`);
    // Bits beyond rwx too: every start leaves exactly 0700.
    expect(asProxy(`chmod 2700 ${envoy} && echo done`).out).toContain('done');
    prepareRuntimeDirs(proxy);
    expect(modeOf(envoy)).toBe(`${PROXY} 700`);
    expect(modeOf(run)).toBe('0 755');
  });

  it('still refuses an envoy/ that is not a directory or not the proxy uid’s, and a socket of any other uid', async () => {
    const run = path.join(rootTemp(), 'run');
    const proxy = proxyConfig(run);
    prepareRuntimeDirs(proxy);
    const envoy = path.join(run, 'envoy');
    chownSync(envoy, 1000, 1000);
    expect(() => prepareRuntimeDirs(proxy)).toThrow(
      `${envoy} must be a directory owned by the proxy uid ${PROXY} with mode 0700 (found a directory of uid 1000`,
    );
    spawnSync('rm', ['-rf', envoy]);
    writeFileSync(envoy, '', { mode: 0o600 });
    chownSync(envoy, PROXY, PROXY);
    expect(() => prepareRuntimeDirs(proxy)).toThrow(`${envoy} must be a directory owned by the proxy uid ${PROXY} with mode 0700 (found a non-directory`);
    spawnSync('rm', ['-f', envoy]);
    await proxySocket(proxy.xdsSocket);
    chownSync(proxy.xdsSocket, 1000, 1000);
    expect(() => prepareRuntimeDirs(proxy)).toThrow(`${proxy.xdsSocket} is owned by uid 1000, not meshlet's uid 0; remove it`);
  });
});
