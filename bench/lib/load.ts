// Steady load for the rotation row: sequential TLS connections, each a full
// handshake (verified against the mesh CA) plus an echo round trip, until
// stopped or the bounds are hit. Every connection is recorded.
import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';

export interface Conn {
  start: number;
  handshakeMs: number;
  totalMs: number;
  ok: boolean;
  serial?: string;
  error?: string;
}

export interface TlsTarget {
  port: number;
  ca: string;
  servername: string;
}

function exchange(t: TlsTarget, timeoutMs: number): Promise<Conn> {
  return new Promise((resolve) => {
    const start = performance.now();
    let handshakeMs = Number.NaN;
    let data = '';
    let serial: string | undefined;
    const socket = tls.connect({ host: '127.0.0.1', port: t.port, ca: t.ca, servername: t.servername });
    let done = false;
    const finish = (ok: boolean, error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ start, handshakeMs, totalMs: performance.now() - start, ok, ...(serial ? { serial } : {}), ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => finish(false, `no echo within ${timeoutMs} ms`), timeoutMs);
    socket.once('secureConnect', () => {
      handshakeMs = performance.now() - start;
      serial = socket.getPeerCertificate().serialNumber;
      socket.write('ping');
    });
    socket.on('data', (d: Buffer) => {
      data += d.toString();
      if (data.length >= 'echo:ping'.length) finish(data === 'echo:ping', data === 'echo:ping' ? undefined : `bad echo "${data}"`);
    });
    socket.once('error', (err: Error) => finish(false, err.message));
    socket.once('close', () => finish(false, `closed before the echo (got "${data}")`));
  });
}

export function steadyTlsLoad(t: TlsTarget, maxCount: number, maxMs: number): { conns: Conn[]; stop: () => Promise<Conn[]> } {
  const conns: Conn[] = [];
  let stopped = false;
  const begun = performance.now();
  const loop = (async () => {
    for (let i = 0; i < maxCount && !stopped && performance.now() - begun < maxMs; i++) conns.push(await exchange(t, 3_000));
  })();
  return {
    conns,
    stop: async () => {
      stopped = true;
      await loop;
      return conns;
    },
  };
}

/** A plain TCP app that answers "echo:<data>". */
export async function echoApp(port: number): Promise<{ close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.on('data', (d) => s.write(`echo:${d.toString()}`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
