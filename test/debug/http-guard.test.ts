// What every HTTP server meshlet serves does against clients it cannot
// trust (src/debug/listen.ts): one request at a time per connection, and at
// the connection cap a new client takes an idle connection's slot. Checked
// on guardedServer itself, then on the three real servers: the debug
// endpoint (the app reaches it), the public metrics and the probe listeners
// (any network peer reaches them).
import type { Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { guardedServer, MAX_HTTP_CONNECTIONS } from '../../src/debug/listen.js';
import { Metrics } from '../../src/debug/metrics.js';
import { startProbeServer } from '../../src/debug/probes.js';
import { startPublicServer } from '../../src/debug/public.js';
import { startDebugServer } from '../../src/debug/server.js';

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

const portOf = (s: Server): number => (s.address() as AddressInfo).port;

async function listening(server: Server): Promise<number> {
  servers.push(server);
  if (!server.listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return portOf(server);
}

/** A connection that has connected and sent nothing: it only holds a slot. */
async function idle(port: number): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  sockets.push(s);
  await new Promise((r) => s.once('connect', r));
  return s;
}

/** Writes raw bytes on a new connection; resolves with what came back once the server closes it (or `until` matches). */
function exchange(port: number, bytes: string, until?: RegExp): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => s.write(bytes));
    sockets.push(s);
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (until?.test(got)) resolve(got);
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
  });
}

const GET = (path: string): string => `GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`;
const responses = (raw: string): number => raw.match(/^HTTP\/1\.1 \d{3}/gm)?.length ?? 0;

/** A server whose answers the test releases, so requests stay in progress as long as it needs. */
function heldServer(max: number): { server: Server; handled: () => number; release: () => void } {
  let handled = 0;
  const waiting: (() => void)[] = [];
  const server = guardedServer({}, max, (_req, res) => {
    handled++;
    waiting.push(() => res.end('ok\n'));
  });
  return { server, handled: () => handled, release: () => waiting.splice(0).forEach((f) => f()) };
}

/** Waits, a turn of the event loop at a time, for something the servers and sockets of this file do. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

describe('guardedServer', () => {
  it('answers one request at a time: a request pipelined behind an unanswered one closes the connection', async () => {
    const h = heldServer(8);
    const port = await listening(h.server);
    expect(await exchange(port, GET('/a') + GET('/b') + GET('/c'))).toBe('');
    expect(h.handled()).toBe(1);
    // One request after the other's answer, on one keep-alive connection, is what clients do: served.
    const s = await idle(port);
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    for (const n of [1, 2]) {
      s.write(GET(`/${n}`));
      await until(() => h.handled() === 1 + n);
      h.release();
      await until(() => responses(got) === n);
    }
    expect(s.destroyed).toBe(false);
  });

  it('at the cap, a connection whose answer is all written gives way, even though its client never reads it', async () => {
    let ended = 0;
    // 32 MiB: more than the kernel's buffers take, so the answer never finishes while its client does not read.
    const body = Buffer.alloc(32 * 1024 * 1024);
    const server = guardedServer({}, 1, (_req, res) => {
      res.end(body);
      ended++;
    });
    const port = await listening(server);
    const stalled = await idle(port);
    stalled.pause();
    stalled.write(GET('/big'));
    await until(() => ended === 1);
    // (The stalled client, paused, does not read the close either; the new one is served in its slot.)
    expect(await exchange(port, GET('/next'), /\r\n\r\n/)).toMatch(/^HTTP\/1\.1 200/);
    expect(ended).toBe(2);
  });

  it('at the cap, a new client takes the slot of the oldest connection with no request in progress', async () => {
    const h = heldServer(3);
    const port = await listening(h.server);
    const oldest = await idle(port);
    const second = await idle(port);
    // The third holds a request in progress: its slot is not for the taking.
    const busy = await idle(port);
    busy.write(GET('/busy'));
    await until(() => h.handled() === 1);
    const oldestClosed = new Promise((r) => oldest.once('close', r));
    const answered = exchange(port, GET('/new'), /ok\n$/);
    await until(() => h.handled() === 2);
    h.release();
    expect(await answered).toMatch(/^HTTP\/1\.1 200/);
    await oldestClosed;
    // Every slot answering: `second` and `busy` hold requests, and a third client takes the idle `/new` connection's slot...
    second.write(GET('/hold'));
    busy.write(GET('/hold'));
    await until(() => h.handled() === 4);
    const third = await idle(port);
    third.write(GET('/hold'));
    await until(() => h.handled() === 5);
    // ...so the next client is turned away, and the three keep their requests.
    expect(await exchange(port, GET('/late'))).toBe('');
    expect([second.destroyed, busy.destroyed, third.destroyed]).toEqual([false, false, false]);
    h.release();
  });
});

describe('the servers meshlet serves', () => {
  const metrics = new Metrics();
  const ready = (): Promise<{ ready: boolean; checks: Record<string, never> }> => Promise.resolve({ ready: true, checks: {} });
  const starts: [string, string, () => Promise<Server>][] = [
    ['the debug endpoint', '/healthz', () => startDebugServer({ ip: '127.0.0.1', port: 0 }, { ready, xds: () => ({}), metrics })],
    ['the public metrics listener', '/ready', () => startPublicServer(0, { adminGet: () => Promise.resolve({ status: 200, body: '' }), metrics, ready })],
    ['the probe listener', '/app-health/none', () => startProbeServer(0, { checks: () => [], host: () => '127.0.0.1' })],
  ];

  it.each(starts)('%s closes a connection that pipelines requests', async (_what, path, start) => {
    const port = await listening(await start());
    const raw = await exchange(port, GET(path).repeat(50));
    expect(responses(raw)).toBeLessThanOrEqual(1);
  });

  it.each(starts)("%s outlives a failed accept: the error is the one client's, and the server goes on listening", async (_what, path, start) => {
    const server = await start();
    const port = await listening(server);
    // What node emits when accept() fails (descriptors or buffers running out); with no listener left, it would throw.
    for (let i = 0; i < 2; i++) expect(() => server.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' }))).not.toThrow();
    expect(await exchange(port, GET(path), /\r\n\r\n/)).toMatch(/^HTTP\/1\.1 (200|404)/);
  });

  it('the debug endpoint asks Envoy for one config dump at a time, however many clients ask', async () => {
    let asked = 0;
    let answer!: (v: unknown) => void;
    const dump = (): Promise<unknown> => (asked++, new Promise((r) => (answer = r)));
    const server = await startDebugServer({ ip: '127.0.0.1', port: 0 }, { ready, xds: () => ({}), metrics, envoyConfigDump: dump });
    let requests = 0;
    server.on('request', () => requests++);
    const port = await listening(server);
    const clients = Array.from({ length: 10 }, () => exchange(port, GET('/config_dump'), /\r\n0\r\n\r\n$/));
    // All ten are in progress before Envoy's answer comes.
    await until(() => requests === 10);
    answer({ configs: [] });
    for (const raw of await Promise.all(clients)) expect(raw).toMatch(/^HTTP\/1\.1 200[\s\S]*"configs": \[\]/);
    expect(asked).toBe(1);
  });

  it.each(starts)(`%s answers a new client while ${MAX_HTTP_CONNECTIONS} idle connections hold every slot`, async (_what, path, start) => {
    const port = await listening(await start());
    const held = await Promise.all(Array.from({ length: MAX_HTTP_CONNECTIONS }, () => idle(port)));
    expect(held).toHaveLength(MAX_HTTP_CONNECTIONS);
    expect(await exchange(port, GET(path), /\r\n\r\n/)).toMatch(/^HTTP\/1\.1 (200|404)/);
  });
});
