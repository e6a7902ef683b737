// The HTTP servers meshlet serves (the debug endpoint on loopback, the public
// metrics and the probe listeners on the pod's addresses) and how each is
// bound. Their clients cannot be trusted: the app reaches the debug endpoint,
// any network peer reaches the other two.
import type { IncomingMessage, RequestListener, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
// Not `import … from 'node:http'`: the ESM wrapper of node:http reads every
// export, and its lazy ones load undici, http2, zlib, worker_threads and more,
// about 10 MiB that stays resident in every pod.
const { createServer } = process.getBuiltinModule('node:http');

/** Connections each server keeps at once (guardedServer). */
export const MAX_HTTP_CONNECTIONS = 64;

/** A request's headers must arrive whole within this long, checked every second (node's default is every 30 s). */
export const HEADERS_TIMEOUT_MS = 2_000;

/**
 * An HTTP server that holds its clients to:
 * - One request at a time per connection. A request that comes before the
 *   answer to the one before it (HTTP/1.1 pipelining, which no kubelet,
 *   scraper or curl sends) closes the connection: node's HTTP server reads
 *   pipelined requests as long as no answer is written, so a client that
 *   never reads could queue a request, a response and a pending check each,
 *   without bound, behind a slow one.
 * - At most `maxConnections` connections. At the cap, a new client takes the
 *   slot of the oldest connection with no request in progress, or whose
 *   answer is all written (a client that does not read it would otherwise
 *   hold its slot for good), so clients that only hold connections (idle,
 *   sending headers a byte at a time, or not reading) cannot lock the kubelet
 *   out; only when every slot is still answering is the new one turned away.
 * - Headers within HEADERS_TIMEOUT_MS.
 */
export function guardedServer(opts: ServerOptions, maxConnections: number, handler: RequestListener): Server {
  /** Open connections, oldest first (a Map keeps insertion order): whether each has a request in progress, and its answer. */
  const open = new Map<Socket, { busy: boolean; res?: ServerResponse }>();
  const server = createServer(
    { ...opts, headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: 1_000 },
    (req: IncomingMessage, res: ServerResponse) => {
      const state = open.get(req.socket);
      if (!state || state.busy) {
        req.socket.destroy();
        return;
      }
      state.busy = true;
      state.res = res;
      const done = (): void => void (state.busy = false);
      res.once('finish', done);
      res.once('close', done);
      handler(req, res);
    },
  );
  // A failed accept (descriptors or buffers running out) is the one client's loss; the server keeps listening. Without
  // a listener, node would throw it and end meshlet.
  server.on('error', () => undefined);
  server.on('connection', (sock: Socket) => {
    if (open.size >= maxConnections) {
      let victim: Socket | undefined;
      for (const [s, state] of open) {
        // An answer all written is as good as done: a client that never reads it must not keep its slot.
        if (!state.busy || state.res?.writableEnded) {
          victim = s;
          break;
        }
      }
      if (!victim) {
        sock.destroy();
        return;
      }
      open.delete(victim);
      victim.destroy();
    }
    open.set(sock, { busy: false });
    sock.once('close', () => open.delete(sock));
  });
  return server;
}

/** Listens on `port` on both families, or on IPv4 alone without IPv6; errors name `what`. */
export async function listenDualStack(server: Server, port: number, what: string): Promise<void> {
  const listen = (host: string, ipv6Only?: boolean): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, ...(ipv6Only === undefined ? {} : { ipv6Only }) }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  try {
    await listen('::', false);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw new Error(`${what} ${port}: ${(err as Error).message}`);
    await listen('0.0.0.0');
  }
}
