// Ends an Envoy left over from an earlier meshlet (one that was killed before
// its Envoy got the parent-death signal, or whose Envoy lost it): two Envoys
// on the same ports would share connections, one of them with stale config.
//
// Which processes qualify, and why a hostile proxy-uid process cannot use this
// to make root kill something else:
// - every uid of the process (real, effective, saved, filesystem) is the proxy
//   uid, its argv has `-c <our bootstrap path>` (or the FIFO of an Envoy the
//   launcher started for a meshlet that is gone), and it lives in our network
//   namespace (an Envoy anywhere else cannot hold our ports, and may be
//   another pod's when pods share a pid namespace). Anything running as the
//   proxy uid can fake that argv, so this only narrows the search to "ours";
// - the signal is sent with the proxy uid's credentials (setpriv drops to that
//   uid and to no capabilities before `kill` runs), so the kernel refuses any
//   process the proxy uid could not kill itself, whatever /proc said a moment
//   earlier (a pid that exits and is reused by a root process is refused).
//   Root lends no privilege: the worst a faked argv achieves is a proxy-uid
//   process killing another proxy-uid process, which it can do directly.
import type { Logger } from '../log.js';
import { idsOf, statFields } from './proc.js';
import { launcherPidOf } from './early.js';
const { execFile } = process.getBuiltinModule('node:child_process');
const { readdirSync, readFileSync, statSync } = process.getBuiltinModule('node:fs');

const { promisify } = process.getBuiltinModule('node:util');

export interface ProcInfo {
  pid: number;
  /** Start time in clock ticks since boot: tells a reused pid apart. */
  start: string;
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/PID/stat, and whether the process is a zombie (already dead). */
function statOf(procRoot: string, pid: number): { start: string; zombie: boolean } | undefined {
  const rest = statFields(pid, procRoot);
  return rest && { start: rest[19] ?? '', zombie: rest[0] === 'Z' || rest[0] === 'X' };
}

/** True when real, effective, saved and filesystem uid are all `uid`. */
export function allUids(status: string, uid: number): boolean {
  const ids = idsOf(status, 'Uid');
  return ids.length === 4 && ids.every((v) => v === uid);
}

/** argv has `-c PATH` (or `--config-path PATH`) with exactly this path. */
export function runsBootstrap(cmdline: string, bootstrapPath: string): boolean {
  const argv = cmdline.split('\0');
  return argv.some((a, i) => (a === '-c' || a === '--config-path') && argv[i + 1] === bootstrapPath);
}

/**
 * argv has `-c /dev/shm/meshlet-envoy.N.json`, the FIFO of an Envoy the
 * `meshlet` launcher started (early.ts), and its parent is not process N: N
 * is the launcher's pid, which its meshlet keeps (the launcher execs node), so
 * such an Envoy whose parent is not N has outlived that meshlet. A live
 * meshlet's own early Envoy (this one's included) has N as its parent.
 */
export function orphanedEarlyEnvoy(cmdline: string, parent: number | undefined): boolean {
  const argv = cmdline.split('\0');
  const i = argv.indexOf('-c');
  const launcher = i >= 0 ? launcherPidOf(argv[i + 1] ?? '') : undefined;
  return launcher !== undefined && launcher !== parent;
}

/** The inode of a network namespace (a /proc/PID/ns/net or /run/netns/NAME path), or undefined. */
export function netnsId(nsPath: string): number | undefined {
  try {
    return statSync(nsPath).ino;
  } catch {
    return undefined;
  }
}

/**
 * Live processes that look like an Envoy of ours: proxy uid throughout, our
 * bootstrap (or the launcher's FIFO, with the meshlet that made it gone),
 * our network namespace.
 */
export function findStaleEnvoys(bootstrapPath: string, uid: number, procRoot = '/proc', netns = netnsId('/proc/self/ns/net')): ProcInfo[] {
  const found: ProcInfo[] = [];
  for (const name of readdirSync(procRoot)) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    // The command line first: a short read, empty for kernel threads, and it rules out nearly every process; the
    // status file (a long text the kernel formats) only for those that run our bootstrap. Runs before Envoy starts.
    const cmdline = read(`${procRoot}/${pid}/cmdline`);
    if (cmdline === undefined || !(runsBootstrap(cmdline, bootstrapPath) || orphanedEarlyEnvoy(cmdline, Number(statFields(pid, procRoot)?.[1])))) continue;
    const status = read(`${procRoot}/${pid}/status`);
    if (status === undefined || !allUids(status, uid)) continue;
    if (netns !== undefined && netnsId(`${procRoot}/${pid}/ns/net`) !== netns) continue;
    const st = statOf(procRoot, pid);
    if (st && !st.zombie) found.push({ pid, start: st.start });
  }
  return found;
}

/** SIGKILL with the proxy uid's own credentials (see the top of this file). */
async function killAsProxy(pid: number, uid: number, gid: number): Promise<void> {
  const me = process.getuid?.() ?? 0;
  if (me === uid) {
    process.kill(pid, 'SIGKILL');
    return;
  }
  if (me !== 0) throw new Error(`cannot end the stale Envoy ${pid}: meshlet runs as uid ${me}, neither root nor the proxy uid ${uid}`);
  await promisify(execFile)(
    'setpriv',
    [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--', 'kill', '-s', 'KILL', String(pid)],
    { timeout: 5_000 },
  );
}

function gone(p: ProcInfo): boolean {
  const st = statOf('/proc', p.pid);
  return st === undefined || st.zombie || st.start !== p.start;
}

/**
 * Finds and ends every stale Envoy of ours before a new one starts; waits,
 * bounded, until each is gone. Fails (meshlet does not start) when one
 * survives: a second Envoy beside it would split the traffic.
 */
export async function endStaleEnvoys(opts: { bootstrapPath: string; uid: number; gid: number; logger: Logger; timeoutMs?: number }): Promise<number[]> {
  const stale = findStaleEnvoys(opts.bootstrapPath, opts.uid);
  if (stale.length === 0) return [];
  opts.logger.warn({ pids: stale.map((p) => p.pid), bootstrap: opts.bootstrapPath }, 'ending a stale Envoy left by an earlier meshlet');
  for (const p of stale) {
    try {
      await killAsProxy(p.pid, opts.uid, opts.gid);
    } catch (err) {
      // Already gone is fine; anything else shows up as "still running" below.
      if (!gone(p)) opts.logger.warn({ pid: p.pid, err: (err as Error).message }, 'kill of a stale Envoy failed');
    }
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 5_000);
  for (;;) {
    const alive = stale.filter((p) => !gone(p));
    if (alive.length === 0) return stale.map((p) => p.pid);
    if (Date.now() > deadline)
      throw new Error(
        `stale Envoy ${alive.map((p) => p.pid).join(', ')} (uid ${opts.uid}, -c ${opts.bootstrapPath}) still running ${opts.timeoutMs ?? 5_000} ms after ` +
          `SIGKILL; end it, then start meshlet again`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}
