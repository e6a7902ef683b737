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
    // All twelve bits: the proxy uid may have set setgid or sticky on its directory too (checkRuntimeDir accepts
    // any mode on it, as the proxy uid can chmod it at will), and every start sets exactly 0700 again.
    const loose = (st.mode & 0o7777) !== 0o700;
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
          `${dir}: mode ${(st.mode & 0o7777).toString(8)}, must be 700 so that only the proxy uid reaches Envoy's admin; remove it or chmod 700 it`,
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
  // The path goes into the request line as it is: no space or control character may split it.
  if (!/^\/[\x21-\x7e]*$/.test(urlPath)) return Promise.reject(new Error(`Envoy admin: ${JSON.stringify(urlPath)} is not a request path`));
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
    // Our own HTTP/1.1 exchange on node:net, not node:http's client: node:net is loaded and warm (the xDS server
    // runs on it), while node:http's client code runs for the first time at the first /ready after Envoy's ACKs
    // (that check took 6-7 ms that way, 4-5 ms this way). One request per connection (Connection: close), no
    // pooling, so no connection ever skips the check above.
    const net = process.getBuiltinModule('node:net');
    const conn = net.connect({ path: `/proc/self/fd/${fd}` });
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err: Error | undefined, res?: AdminResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      close();
      conn.destroy();
      if (err) reject(err);
      else if (res) resolve(res);
    };
    const timer = setTimeout(() => finish(new Error(`Envoy admin ${urlPath}: no answer within ${timeoutMs} ms`)), timeoutMs);
    // Connected (or failed): the pinned descriptor is no longer needed.
    conn.once('connect', close);
    conn.on('data', (d: Buffer) => {
      size += d.length;
      if (size <= maxBytes + MAX_HEAD_BYTES) chunks.push(d);
      else finish(new Error(`Envoy admin ${urlPath}: answer larger than ${maxBytes} bytes`));
    });
    conn.on('end', () => {
      try {
        const res = parseResponse(Buffer.concat(chunks), maxBytes);
        finish(undefined, res);
      } catch (err) {
        finish(new Error(`Envoy admin ${urlPath}: ${(err as Error).message}`));
      }
    });
    conn.on('error', (err) => finish(err));
    conn.on('close', () => finish(new Error(`Envoy admin ${urlPath}: connection closed before the answer`)));
    const method = opts.method ?? 'GET';
    // write, not end: Envoy closes an HTTP connection whose client half-closes, dropping the request. It closes
    // this one after the answer (Connection: close), which ends ours.
    conn.write(`${method} ${urlPath} HTTP/1.1\r\nHost: envoy-admin\r\nConnection: close\r\n${method === 'POST' ? 'Content-Length: 0\r\n' : ''}\r\n`);
  });
}

/** The status line and headers of an admin answer are small; this bounds them. */
const MAX_HEAD_BYTES = 64 * 1024;

/**
 * An HTTP/1.1 answer read to the end of the connection: the status line, the
 * headers, and a body that is chunked, sized by Content-Length, or runs to
 * the end. Anything else is an error; the body is bounded by maxBytes.
 */
function parseResponse(raw: Buffer, maxBytes: number): AdminResponse {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd < 0 || headEnd > MAX_HEAD_BYTES) throw new Error('no complete HTTP header in the answer');
  const [statusLine = '', ...lines] = raw.subarray(0, headEnd).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (!m?.[1]) throw new Error(`not an HTTP answer (${JSON.stringify(statusLine.slice(0, 40))})`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`bad header line (${JSON.stringify(line.slice(0, 40))})`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = raw.subarray(headEnd + 4);
  if (headers.get('transfer-encoding')?.toLowerCase() === 'chunked') body = dechunk(body);
  else if (headers.has('content-length')) {
    const len = Number(headers.get('content-length'));
    if (!Number.isSafeInteger(len) || len < 0 || len > body.length) throw new Error('the body is shorter than its Content-Length');
    body = body.subarray(0, len);
  }
  if (body.length > maxBytes) throw new Error(`answer larger than ${maxBytes} bytes`);
  return { status: Number(m[1]), body: body.toString('utf8') };
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) throw new Error('the chunked body ends early');
    const sizeText = data.subarray(at, eol).toString('latin1').split(';', 1)[0]?.trim() ?? '';
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) throw new Error(`bad chunk size (${JSON.stringify(sizeText.slice(0, 20))})`);
    const n = parseInt(sizeText, 16);
    if (n === 0) return Buffer.concat(parts);
    const from = eol + 2;
    if (from + n + 2 > data.length || data[from + n] !== 0x0d || data[from + n + 1] !== 0x0a) throw new Error('the chunked body ends early');
    parts.push(data.subarray(from, from + n));
    at = from + n + 2;
  }
}

/** GET `urlPath` and parse JSON; a non-200 answer is an error that carries the status. */
export async function adminJson<T>(socketPath: string, urlPath: string, opts: AdminGetOptions = {}): Promise<T> {
  const r = await adminGet(socketPath, urlPath, opts);
  if (r.status !== 200) throw new Error(`Envoy admin ${urlPath}: HTTP ${r.status}`);
  return JSON.parse(r.body) as T;
}
