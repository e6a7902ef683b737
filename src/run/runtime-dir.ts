// The runtime directory (the xDS socket's directory) is where root-run meshlet
// creates the socket, writes the bootstrap and init's rules fingerprint, and
// later changes the socket's owner. Path-based operations there are safe only
// while no other uid can add, rename or remove entries: a proxy uid that could
// would swap a name for a symlink and have root write or chown whatever it
// points at. So the directory must belong to meshlet's uid and be writable by
// it alone. The one entry another uid may own is `envoy/`, the proxy uid's
// private directory (0700) for Envoy's admin socket; root never writes there.
import type { Stats } from 'node:fs';
import { adminDir, PROXY_SUBDIR } from '../config/constants.js';
import type { MeshConfig } from '../config/model.js';
import { ensureProxyDir } from '../envoy/admin.js';
import { buildBootstrap, renderBootstrap } from '../envoy/bootstrap.js';
import { PUBLIC_MODE, writeFileAtomic } from '../fs/safe-write.js';
const { closeSync, constants, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, realpathSync } =
  process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');

export const RUNTIME_DIR_MODE = 0o755;
export const PROXY_DIR_MODE = 0o700;

export class RuntimeDirError extends Error {
  constructor(
    readonly file: string,
    problem: string,
    readonly fix: string,
  ) {
    super(`runtime directory: ${file} ${problem}; ${fix}`);
    this.name = 'RuntimeDirError';
  }
}

const S_ISVTX = 0o1000;
const myUid = (): number => process.geteuid?.() ?? 0;
const groupOrOtherWritable = (st: Stats): boolean => (st.mode & 0o022) !== 0;

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Every ancestor must be a directory that only root or meshlet's uid can
 * change, or one with the sticky bit (like /tmp), where others cannot rename
 * or remove entries they do not own.
 */
function checkAncestors(dir: string): void {
  const me = myUid();
  checkLinks(path.dirname(dir), me, 0);
  // Symlinked ancestors (/var/run -> /run) are resolved once; the real path is what the kernel walks.
  let cur = realpathSync(path.dirname(dir));
  for (;;) {
    const st = lstatSync(cur);
    const trusted = st.uid === 0 || st.uid === me;
    const sticky = (st.mode & S_ISVTX) !== 0;
    if (!trusted || (groupOrOtherWritable(st) && !sticky)) {
      throw new RuntimeDirError(
        cur,
        `(a parent of the runtime directory) is owned by uid ${st.uid} with mode ${octal(st.mode)}, so another uid could replace the runtime directory`,
        'make it root-owned and not group/other-writable, or point proxy.xdsSocket elsewhere',
      );
    }
    const up = path.dirname(cur);
    if (up === cur) return;
    cur = up;
  }
}

/** Symlinks followed on the way to the runtime directory at most, as the kernel's own limit. */
const MAX_LINKS = 40;

/**
 * Every symlink on the way to `p` (in `p`'s own path, then in each link's
 * target, and so on) must belong to root or to meshlet's uid: the real path
 * checked after this is only where the links lead now, and the owner of a
 * link can point it elsewhere at any time (in a sticky directory like /tmp,
 * only its owner can).
 */
function checkLinks(p: string, me: number, depth: number): void {
  for (let cur = p; ; cur = path.dirname(cur)) {
    const st = lstatOrUndefined(cur);
    if (st?.isSymbolicLink()) {
      if (st.uid !== 0 && st.uid !== me) {
        throw new RuntimeDirError(
          cur,
          `(a parent of the runtime directory) is a symlink owned by uid ${st.uid}, who can point it elsewhere at any time`,
          'use the real path, or a symlink owned by root, or point proxy.xdsSocket elsewhere',
        );
      }
      if (depth >= MAX_LINKS) throw new RuntimeDirError(cur, `leads through more than ${MAX_LINKS} symlinks`, 'use the real path');
      checkLinks(path.resolve(path.dirname(cur), readlinkSync(cur)), me, depth + 1);
    }
    if (path.dirname(cur) === cur) return;
  }
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8)}`;
}

/**
 * Refuses (throws, naming the path and the fix) unless the runtime directory
 * and every entry in it are safe for root to use by path.
 */
export function checkRuntimeDir(dir: string, proxyUid: number): void {
  const me = myUid();
  const st = lstatOrUndefined(dir);
  if (!st) throw new RuntimeDirError(dir, 'does not exist', 'create it (meshlet run and meshlet init create it when its parent is writable)');
  if (st.isSymbolicLink())
    throw new RuntimeDirError(dir, 'is a symlink', `replace it with a real directory owned by uid ${me}, mode 0755, or point proxy.xdsSocket elsewhere`);
  if (!st.isDirectory()) throw new RuntimeDirError(dir, 'is not a directory', 'remove it, or point proxy.xdsSocket elsewhere');
  // Non-root shape: meshlet runs as the proxy uid itself, so Envoy already
  // holds every privilege meshlet has and there is no boundary to keep; the
  // directory is a shared emptyDir that only this pod's meshlet containers mount.
  if (nonRootShape(me, proxyUid)) return;
  if (st.uid !== me) throw new RuntimeDirError(dir, `is owned by uid ${st.uid}, not meshlet's uid ${me}`, `chown ${me} ${dir} && chmod 0755 ${dir}`);
  if (groupOrOtherWritable(st))
    throw new RuntimeDirError(
      dir,
      `has mode ${octal(st.mode)}: writable by other uids`,
      `chmod 0755 ${dir} (meshlet run tightens one it owns itself when nothing in it belongs to another uid)`,
    );
  checkAncestors(dir);
  for (const name of readdirSync(dir)) checkEntry(dir, name, proxyUid, me);
}

function checkEntry(dir: string, name: string, proxyUid: number, me: number): void {
  const p = path.join(dir, name);
  const st = lstatOrUndefined(p);
  if (!st) return; // removed meanwhile
  if (st.isSymbolicLink())
    throw new RuntimeDirError(p, 'is a symlink, which root would follow', `remove it (rm ${p}); nothing but meshlet should create entries here`);
  // The proxy uid owns `envoy/` and may chmod it at will, so its mode proves nothing here (root never
  // writes inside); ensureProxyDir sets 0700 again through a descriptor. Refusing a loose mode would
  // let the proxy uid fail every later start of the pod with one chmod.
  if (name === PROXY_SUBDIR) {
    if (!st.isDirectory() || st.uid !== proxyUid) {
      throw new RuntimeDirError(
        p,
        `must be a directory owned by the proxy uid ${proxyUid} with mode 0700 (found ${st.isDirectory() ? 'a directory' : 'a non-directory'} of uid ` +
          `${st.uid}, mode ${octal(st.mode)})`,
        `remove it (rm -r ${p}); meshlet recreates it`,
      );
    }
    return;
  }
  // The xDS socket belongs to the proxy uid by design; a socket cannot be written through. Its mode is the
  // proxy uid's to change and does not matter: the xDS server removes a stale socket and binds a new 0600 one.
  const socketOfProxy = st.isSocket() && st.uid === proxyUid;
  if (!socketOfProxy && st.uid !== me)
    throw new RuntimeDirError(p, `is owned by uid ${st.uid}, not meshlet's uid ${me}`, `remove it (rm -r ${p}); only meshlet should create entries here`);
  if (!st.isSocket() && groupOrOtherWritable(st)) {
    throw new RuntimeDirError(p, `has mode ${octal(st.mode)}: writable by other uids`, `remove it (rm -r ${p})`);
  }
}

/**
 * Creates the runtime directory when missing (meshlet's uid, 0755). A
 * directory meshlet's uid owns that is group/other-writable (a Kubernetes
 * emptyDir is created 0777) is tightened to 0755 when every entry in it is
 * meshlet's uid's own and none is a symlink: then nothing was planted, and
 * the check that follows catches anything added while we looked. In the pod,
 * only `meshlet init` (root) has written there before `meshlet run` starts.
 *
 * The parents are checked before anything is created or chmodded, and no
 * step follows a symlink at the runtime directory's name: another uid that
 * can add entries to a parent (a sticky one, like /tmp) could put a symlink
 * there between the lstat and the mkdir, and a recursive mkdir accepts it
 * and a chmod by path follows it.
 */
export function prepareRuntimeDir(dir: string, proxyUid: number): void {
  const me = myUid();
  const guarded = !nonRootShape(me, proxyUid);
  if (lstatOrUndefined(path.dirname(dir)) === undefined) {
    createMissingParents(path.dirname(dir), guarded);
  } else if (guarded) {
    checkAncestors(dir);
  }
  const st = lstatOrUndefined(dir);
  if (!st) {
    createDir(dir);
  } else if (st.isDirectory() && st.uid === me && groupOrOtherWritable(st) && onlyOwnEntries(dir, me)) {
    chmodOwnDir(dir, RUNTIME_DIR_MODE, st);
  }
  checkRuntimeDir(dir, proxyUid);
}

/** meshlet runs as the proxy uid itself: there is no boundary to keep (see checkRuntimeDir). */
function nonRootShape(me: number, proxyUid: number): boolean {
  return me === proxyUid && me !== 0;
}

/**
 * Creates the missing directories above the runtime directory, top down, one
 * component at a time, each 0755 and checked like the runtime directory's
 * own parents before anything is created in it.
 */
function createMissingParents(dir: string, guarded: boolean): void {
  const parent = path.dirname(dir);
  if (parent !== dir && lstatOrUndefined(parent) === undefined) createMissingParents(parent, guarded);
  if (guarded) checkAncestors(dir);
  createDir(dir);
  const st = lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory())
    throw new RuntimeDirError(
      dir,
      `appeared as a ${st.isSymbolicLink() ? 'symlink' : 'non-directory'} of uid ${st.uid} while meshlet created it (a parent of the runtime directory)`,
      `remove it (rm ${dir}), or point proxy.xdsSocket elsewhere`,
    );
}

/**
 * mkdir of one component, which never follows a symlink: when anything is
 * already at `dir` (EEXIST) it is left alone for the lstat checks that follow.
 */
function createDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: RUNTIME_DIR_MODE });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  // The umask may have narrowed the mode; the proxy uid must reach the socket and read the bootstrap.
  chmodOwnDir(dir, RUNTIME_DIR_MODE);
}

/**
 * chmod through a descriptor opened without following symlinks, after
 * checking through it that `dir` is a directory owned by meshlet's uid (and,
 * given `expected`, the very one lstat saw): a symlink swapped in at `dir`
 * cannot redirect the chmod to another directory.
 */
export function chmodOwnDir(dir: string, mode: number, expected?: Stats): void {
  const me = myUid();
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ELOOP' && code !== 'ENOTDIR') throw err;
    const symlink = lstatOrUndefined(dir)?.isSymbolicLink() === true;
    throw new RuntimeDirError(
      dir,
      symlink ? 'is a symlink' : 'is not a directory',
      `replace it with a real directory owned by uid ${me}, mode 0755, or point proxy.xdsSocket elsewhere`,
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isDirectory() || st.uid !== me || (expected !== undefined && (st.ino !== expected.ino || st.dev !== expected.dev))) {
      throw new RuntimeDirError(
        dir,
        `was replaced while meshlet was setting its mode (found a ${st.isDirectory() ? 'directory' : 'non-directory'} of uid ${st.uid})`,
        `make it a real directory owned by uid ${me}, mode 0755, that no other uid can replace, or point proxy.xdsSocket elsewhere`,
      );
    }
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}

function onlyOwnEntries(dir: string, me: number): boolean {
  return readdirSync(dir).every((name) => {
    const e = lstatOrUndefined(path.join(dir, name));
    return e === undefined || (!e.isSymbolicLink() && e.uid === me);
  });
}

/**
 * The runtime directory (and the bootstrap's, when elsewhere) must be
 * meshlet's alone before anything is created in it by path; the proxy uid
 * gets only its own `envoy/` subdirectory, where Envoy creates its admin socket.
 */
export function prepareRuntimeDirs(proxy: MeshConfig['proxy']): void {
  const { uid, gid, xdsSocket, bootstrapPath } = proxy;
  const runtimeDir = path.dirname(xdsSocket);
  prepareRuntimeDir(runtimeDir, uid);
  if (path.dirname(bootstrapPath) !== runtimeDir) prepareRuntimeDir(path.dirname(bootstrapPath), uid);
  ensureProxyDir(adminDir(xdsSocket), uid, gid);
}

/** Envoy (another uid) must read the bootstrap; it holds the socket path and ports, no secret. Returns the text written. */
export function writeBootstrapFile(config: MeshConfig, opts: { nodeId: string; delta: boolean }): string {
  const text = renderBootstrap(buildBootstrap(config, { nodeId: opts.nodeId, cluster: 'meshlet', delta: opts.delta }));
  // Rewritten at every start, before Envoy is spawned to read it: no fsync on the way to the spawn.
  writeFileAtomic(config.proxy.bootstrapPath, text, PUBLIC_MODE, { sync: false });
  return text;
}
