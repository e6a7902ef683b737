// File-system side of the xDS Unix socket: the parent directory, a stale
// socket from a previous run, the 0600 mode, and removal on close. Through
// node:fs, not node:fs/promises: the stale socket is removed before Envoy
// starts and the socket bound just after, and loading node:fs/promises then
// (compiled from source under meshlet's V8 flags) would take CPU from the
// spawn and from Envoy's start; each call is one quick system call.
const { chmodSync, lstatSync, mkdirSync, unlinkSync } = process.getBuiltinModule('node:fs');
const net = process.getBuiltinModule('node:net');
const path = process.getBuiltinModule('node:path');

export const SOCKET_MODE = 0o600;

/** Creates the parent directory (0700 if we create it) and removes a stale socket left by a dead process. */
export async function prepareSocketPath(socketPath: string): Promise<void> {
  mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  const st = lstatSync(socketPath, { throwIfNoEntry: false });
  if (!st) return;
  if (!st.isSocket()) throw new Error(`xDS socket path ${socketPath} exists and is not a socket; refusing to remove it`);
  if (await isLive(socketPath)) throw new Error(`xDS socket ${socketPath} is in use by another process`);
  unlinkSync(socketPath);
}

/**
 * Binds with a umask that leaves only the owner's bits, so the socket is
 * 0600 from the moment it exists and no chmod by path (which a swapped name
 * could redirect) is needed. The umask is process-wide; it is narrowed only
 * for the bind. Worker threads cannot set it: there restrictSocket's chmod
 * is the fallback.
 */
export async function withSocketUmask<T>(bind: () => Promise<T>): Promise<T> {
  let old: number | undefined;
  try {
    old = process.umask(0o177);
  } catch {
    old = undefined;
  }
  try {
    return await bind();
  } finally {
    if (old !== undefined) process.umask(old);
  }
}

/**
 * Owner-only access: anyone who can connect can reconfigure Envoy. Checks,
 * without following links, that the name is the socket just bound; the
 * chmod runs only when the umask could not be set, and is then as safe as
 * the directory (the runtime directory check makes it unwritable by others).
 */
export function restrictSocket(socketPath: string): void {
  const st = lstatSync(socketPath);
  if (!st.isSocket()) throw new Error(`xDS socket ${socketPath} was replaced by something else right after the bind; refusing to continue`);
  if ((st.mode & 0o777) !== SOCKET_MODE) chmodSync(socketPath, SOCKET_MODE);
}

export function removeSocket(socketPath: string): void {
  try {
    unlinkSync(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function isLive(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect(socketPath);
    conn.once('connect', () => {
      conn.destroy();
      resolve(true);
    });
    conn.once('error', () => resolve(false));
  });
}
