// Envoy's admin API, reached only through a Unix socket in a directory that
// belongs to the proxy uid (0700). Admin has no authentication and can stop
// or drain Envoy, so no TCP port exists for it: the app (any other uid) and
// peers cannot reach it, only root (meshlet) and the proxy uid (Envoy).
const { closeSync, constants, fstatSync, fchmodSync, fchownSync, lstatSync, mkdirSync, openSync, readFileSync } = process.getBuiltinModule('node:fs');

/**
 * Makes `dir` a real directory owned by uid:gid with mode 0700, or refuses.
 * Everything goes through one descriptor opened without following symlinks,
 * so a proxy-uid process that swaps the entry cannot redirect the chown or
 * chmod to another file. Root never creates or writes anything inside.
 */
export function ensureProxyDir(dir: string, uid: number, gid: number): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR')
      throw new Error(
        `${dir}: must be a directory owned by the proxy uid ${uid}, found a ${lstatSync(dir).isSymbolicLink() ? 'symlink' : 'non-directory'}; remove it`,
      );
    throw err;
  }
  try {
    const st = fstatSync(fd);
    const me = process.getuid?.() ?? 0;
    const loose = (st.mode & 0o777) !== 0o700;
    // Root-owned means meshlet (root) made it, just now or on an earlier start.
    // chmod first, while root still owns it (root may lack CAP_FOWNER).
    if (st.uid === 0 && me === 0 && uid !== 0) {
      if (loose) fchmodSync(fd, 0o700);
      fchownSync(fd, uid, gid);
    } else if (st.uid !== uid) {
      throw new Error(`${dir}: owned by uid ${st.uid}, must be the proxy uid ${uid}; remove it or fix its owner`);
    } else if (loose) {
      try {
        fchmodSync(fd, 0o700);
      } catch {
        throw new Error(
          `${dir}: mode ${(st.mode & 0o777).toString(8)}, must be 700 so that only the proxy uid reaches Envoy's admin; remove it or chmod 700 it`,
        );
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** CAP_DAC_OVERRIDE in this process's effective set (bit 1 of CapEff). */
export function hasDacOverride(status = readFileSync('/proc/self/status', 'utf8')): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex !== undefined && (BigInt(`0x${hex}`) & 2n) !== 0n;
}

/**
 * Root reaches the admin socket (the proxy uid's, 0600, in its 0700
 * directory) only with CAP_DAC_OVERRIDE; a container that drops ALL must add
 * it back. Returns the problem, or undefined when meshlet can reach it.
 */
export function adminReachProblem(proxyUid: number): string | undefined {
  const me = process.getuid?.() ?? 0;
  if (me === proxyUid || me !== 0 || hasDacOverride()) return undefined;
  return (
    `meshlet runs as root without CAP_DAC_OVERRIDE, so it cannot open Envoy's admin socket (owned by the proxy uid ${proxyUid}, mode 0600, in a 0700 ` +
    `directory) for readiness and draining; add DAC_OVERRIDE to the container's capabilities`
  );
}

export interface AdminResponse {
  status: number;
  body: string;
}

export interface AdminGetOptions {
  method?: 'GET' | 'POST';
  /** Bounds the whole exchange, connect to last byte. */
  timeoutMs?: number;
  /** When set, the socket must belong to this uid (the proxy uid), or nothing is sent. */
  ownerUid?: number;
  /** Largest body accepted (default 64 MiB): a compromised Envoy cannot make meshlet buffer without end. */
  maxBytes?: number;
}

// Linux: a descriptor that names a file without opening it. Not in fs.constants.
const O_PATH = 0o10000000;

/**
 * One admin request over the Unix socket. The socket is pinned first with
 * O_PATH|O_NOFOLLOW and checked (a socket, owned by the proxy uid when
 * ownerUid is given), then reached through /proc/self/fd, so a symlink put in
 * the proxy uid's directory cannot send root's request to another socket.
 */
export function adminGet(socketPath: string, urlPath: string, opts: AdminGetOptions = {}): Promise<AdminResponse> {
  const timeoutMs = opts.timeoutMs ?? 2_000;
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    let fd: number;
    try {
      fd = openSync(socketPath, O_PATH | constants.O_NOFOLLOW);
    } catch (err) {
      reject(new Error(`Envoy admin ${socketPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`));
      return;
    }
    const close = (): void => {
      if (fd < 0) return;
      closeSync(fd);
      fd = -1;
    };
    const st = fstatSync(fd);
    const problem = !st.isSocket()
      ? 'not a socket'
      : opts.ownerUid !== undefined && st.uid !== opts.ownerUid
        ? `owned by uid ${st.uid}, not the proxy uid ${opts.ownerUid}`
        : undefined;
    if (problem) {
      close();
      reject(new Error(`Envoy admin ${socketPath}: ${problem}; refusing to use it`));
      return;
    }
    const timer = setTimeout(() => req.destroy(new Error(`Envoy admin ${urlPath}: no answer within ${timeoutMs} ms`)), timeoutMs);
    // node:http through getBuiltinModule (its ESM wrapper keeps undici, http2 and zlib resident: src/debug/server.ts),
    // and here, not at the top: `meshlet run` imports this module before Envoy starts, and loading node:http there
    // (compiled from source, as meshlet's V8 flags rule out node's built-in code cache) would delay the spawn.
    const { request } = process.getBuiltinModule('node:http');
    const req = request(
      { socketPath: `/proc/self/fd/${fd}`, path: urlPath, method: opts.method ?? 'GET', headers: { host: 'envoy-admin' }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size <= maxBytes) {
            chunks.push(d);
            return;
          }
          clearTimeout(timer);
          reject(new Error(`Envoy admin ${urlPath}: answer larger than ${maxBytes} bytes`));
          req.destroy();
        });
        res.on('end', () => {
          clearTimeout(timer);
          if (size > maxBytes) return;
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      },
    );
    // Connected (or failed): the pinned descriptor is no longer needed. No
    // agent, so no pooled connection ever skips the check above.
    req.on('socket', (s) => s.once('connect', close));
    req.on('error', (err) => {
      clearTimeout(timer);
      close();
      reject(err);
    });
    req.on('close', close);
    req.end();
  });
}

/** GET `urlPath` and parse JSON; a non-200 answer is an error that carries the status. */
export async function adminJson<T>(socketPath: string, urlPath: string, opts: AdminGetOptions = {}): Promise<T> {
  const r = await adminGet(socketPath, urlPath, opts);
  if (r.status !== 200) throw new Error(`Envoy admin ${urlPath}: HTTP ${r.status}`);
  return JSON.parse(r.body) as T;
}
