// Small HTTP and TCP probes with deadlines, and a bounded poll loop.
import { randomInt } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { sleep } from './procs.js';

export async function getText(url: string, timeoutMs = 2_000): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

export async function getJson<T>(url: string, timeoutMs = 2_000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return (await res.json()) as T;
}

/** True when `url` answers 200; false on any other answer or error. */
export async function is200(url: string, timeoutMs = 1_000): Promise<boolean> {
  try {
    return (await getText(url, timeoutMs)).status === 200;
  } catch {
    return false;
  }
}

/** True when a TCP connection to host:port is accepted. */
export function tcpAccepts(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Polls `probe` every `everyMs` until it returns true; resolves with
 * performance.now() at the first success. Throws after timeoutMs.
 */
export async function pollUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await probe()) return performance.now();
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * A port nobody listens on right now (on every address), drawn at random from
 * 10000-11999: below the kernel's ephemeral range (32768-60999 here), and
 * apart from the test suite's ranges (test/helpers/ports.ts, 12000-14999; pod
 * blocks, 20000-32699). The suite runs the bench (--tiny) beside other test
 * files, and an ephemeral port freed here could be handed to one of their
 * outgoing connections or listen(0) before meshlet or Envoy binds it.
 */
const handedOut = new Set<number>();
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = randomInt(10_000, 12_000);
    if (handedOut.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ port, host: '::' }, () => srv.close(() => resolve(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found in 10000-11999 after 50 tries');
}
