// Real traffic for integration tests: an echo app, TLS clients that report
// what the server presented, and a bounded steady load loop.
import net from 'node:net';
import tls from 'node:tls';

export interface EchoApp {
  port: number;
  /** Every chunk of bytes the app received, in order. */
  received: string[];
  close(): Promise<void>;
}

/** A plain TCP app that echoes "echo:<line>" back. */
export async function startEchoApp(port: number, host = '127.0.0.1'): Promise<EchoApp> {
  const received: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.on('data', (d) => {
      received.push(d.toString());
      s.write(`echo:${d.toString()}`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface TlsExchange {
  /** The echo the app sent back through the proxy. */
  reply: string;
  /** Serial number of the certificate the server presented. */
  serverSerial: string;
  serverSans: string;
}

/** Connects with TLS, sends `msg`, and resolves with the echo and the server's certificate. */
export function tlsExchange(port: number, msg: string, opts: tls.ConnectionOptions = {}, timeoutMs = 3_000): Promise<TlsExchange> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no echo within ${timeoutMs} ms (got "${data}")`));
    }, timeoutMs);
    socket.once('secureConnect', () => socket.write(msg));
    socket.on('data', (d: Buffer) => {
      data += d.toString();
      if (data.length >= `echo:${msg}`.length) {
        clearTimeout(timer);
        const cert = socket.getPeerCertificate();
        resolve({ reply: data, serverSerial: cert.serialNumber, serverSans: cert.subjectaltname ?? '' });
        socket.end();
      }
    });
    socket.once('error', (err: Error) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (data.length < `echo:${msg}`.length) reject(new Error(`closed before the echo (got "${data}")`));
    });
  });
}

export interface LoadResult {
  ok: number;
  failed: number;
  errors: string[];
}

/**
 * Sequential connections until stop() or the bounds (count, time) are hit.
 * Each connection is a full TLS handshake plus an echo round trip.
 */
export function steadyLoad(exchange: (i: number) => Promise<unknown>, maxCount = 20_000, maxMs = 120_000): { stop: () => Promise<LoadResult> } {
  const result: LoadResult = { ok: 0, failed: 0, errors: [] };
  let stopped = false;
  const started = Date.now();
  const loop = (async () => {
    for (let i = 0; i < maxCount && !stopped && Date.now() - started < maxMs; i++) {
      try {
        await exchange(i);
        result.ok++;
      } catch (err) {
        result.failed++;
        if (result.errors.length < 10) result.errors.push((err as Error).message);
      }
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return result;
    },
  };
}
