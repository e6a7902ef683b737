// A compromised Envoy runs as the proxy uid (1337). These attacks run as a
// real uid-1337 process (setpriv) against a real `meshlet run` and check
// that root's files stay untouched: the runtime directory is never the proxy
// uid's, planted symlinks make meshlet refuse to start (naming the path and
// the fix), and every file meshlet writes lands on a fresh inode.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cleanupPod, makePod, startMeshlet, until, type MeshletProcess, type Pod, MESHLET } from '../helpers/meshlet.js';
import { checkRuntimeDir, prepareRuntimeDir } from '../../src/run/runtime-dir.js';
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
      // The attacker hammers the socket name for as long as meshlet starts (bounded: 4000 tries).
      const m = meshlet(p);
      const r = asProxy(`i=0; ok=0; while [ $i -lt 4000 ]; do ln -sf ${target} ${run}/xds.sock 2>/dev/null && ok=$((ok+1)); i=$((i+1)); done; echo swaps=$ok`);
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
        chmodSync(path.join(dir, 'envoy'), 0o777);
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
