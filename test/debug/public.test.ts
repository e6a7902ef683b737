// The read-only public listener, against a real socket. The admin client is
// injected by design; here it stands in for an Envoy that misbehaves.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/debug/metrics.js';
import { envoyPart, MAX_ENVOY_STATS_BYTES, startPublicServer, type AdminGet, type AdminGetLimits } from '../../src/debug/public.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function start(adminGet: AdminGet, ready = true): Promise<{ port: number; asked: string[]; limits: (AdminGetLimits | undefined)[] }> {
  const asked: string[] = [];
  const limits: (AdminGetLimits | undefined)[] = [];
  const admin: AdminGet = (p, opts) => (asked.push(p), limits.push(opts), adminGet(p, opts));
  server = await startPublicServer(0, { adminGet: admin, metrics: new Metrics(), ready: () => Promise.resolve({ ready }) });
  return { port: (server.address() as AddressInfo).port, asked, limits };
}

/** Resolves once the server has received `n` requests (its 'request' event; the route has run up to its first await by then). */
function received(n: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    server!.on('request', () => {
      if (++seen === n) resolve();
    });
  });
}

/** An admin answer the test settles itself; every call gets the same pending promise. */
function held(): { adminGet: AdminGet; resolve(r: { status: number; body: string }): void; reject(e: Error): void } {
  let resolve!: (r: { status: number; body: string }) => void;
  let reject!: (e: Error) => void;
  const answer = new Promise<{ status: number; body: string }>((res, rej) => ((resolve = res), (reject = rej)));
  return { adminGet: () => answer, resolve, reject };
}

function call(port: number, method: string, target: string, host = '127.0.0.1'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, method, path: target, timeout: 5_000 }, (res) => {
      let body = '';
      res
        .setEncoding('utf8')
        .on('data', (c: string) => (body += c))
        .on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject).on('timeout', () => req.destroy(new Error('timed out waiting for the public listener')));
    req.end();
  });
}

const ENVOY = '# TYPE envoy_server_live gauge\nenvoy_server_live{} 1\n';

describe('public listener', () => {
  it("serves Envoy's stats and meshlet's in one scrape, on IPv4 and IPv6", async () => {
    const { port, asked } = await start(() => Promise.resolve({ status: 200, body: ENVOY }));
    for (const host of ['127.0.0.1', '::1']) {
      const r = await call(port, 'GET', '/stats/prometheus', host);
      expect(r.status).toBe(200);
      expect(r.body).toMatch(/^envoy_server_live\{\} 1$/m);
      expect(r.body).toMatch(/^# TYPE meshlet_xds_acks_total counter$/m);
      expect(r.body).toMatch(/^meshlet_envoy_stats_up 1$/m);
    }
    expect(new Set(asked)).toEqual(new Set(['/stats/prometheus']));
  });

  it.each([
    ['POST', '/stats/prometheus', 405],
    ['HEAD', '/ready', 405],
    ['DELETE', '/ready', 405],
    ['POST', '/quitquitquit', 404],
    ['POST', '/logging?level=trace', 404],
    ['POST', '/drain_listeners', 404],
    ['GET', '/config_dump', 404],
    ['GET', '/stats/prometheus?filter=.', 404],
    ['GET', '/stats/prometheus/', 404],
    ['GET', '/%73tats/prometheus', 404],
    ['GET', '/./stats/prometheus', 404],
    ['GET', 'http://x/stats/prometheus', 404],
    ['GET', '/', 404],
  ])('refuses %s %s with %i and never asks Envoy', async (method, target, status) => {
    const { port, asked } = await start(() => Promise.resolve({ status: 200, body: ENVOY }));
    expect((await call(port, method, target)).status).toBe(status);
    expect(asked).toEqual([]);
  });

  it('answers /ready with the verdict only', async () => {
    expect(await call((await start(() => Promise.reject(new Error('x')), true)).port, 'GET', '/ready')).toEqual({ status: 200, body: 'ready\n' });
    await new Promise<void>((r) => server!.close(() => r()));
    expect(await call((await start(() => Promise.reject(new Error('x')), false)).port, 'GET', '/ready')).toEqual({ status: 503, body: 'not ready\n' });
  });

  it("a compromised Envoy cannot forge or collide with meshlet's metrics", async () => {
    const forged = `${ENVOY}# HELP meshlet_ready fake\n# TYPE meshlet_ready gauge\nmeshlet_ready 1\nmeshlet_envoy_stats_up{x="1"} 1\n`;
    expect(envoyPart(forged)).toBe(ENVOY);
    const { port } = await start(() => Promise.resolve({ status: 200, body: forged }));
    const r = await call(port, 'GET', '/stats/prometheus');
    expect(r.body).not.toContain('fake');
    const types = r.body
      .split('\n')
      .filter((l) => l.startsWith('# TYPE '))
      .map((l) => l.split(' ')[2]);
    expect(new Set(types).size).toBe(types.length);
  });

  it("still serves meshlet's metrics when Envoy's admin is down, and says so", async () => {
    const { port } = await start(() => Promise.reject(new Error('connect ECONNREFUSED')));
    const r = await call(port, 'GET', '/stats/prometheus');
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/^meshlet_envoy_stats_up 0$/m);
    expect(r.body).not.toContain('envoy_server_live');
  });

  it('concurrent scrapes share one admin request and get the same answer', async () => {
    const admin = held();
    const { port, asked } = await start(admin.adminGet);
    const arrived = received(20);
    const scrapes = Array.from({ length: 20 }, () => call(port, 'GET', '/stats/prometheus'));
    await arrived;
    admin.resolve({ status: 200, body: ENVOY });
    const rs = await Promise.all(scrapes);
    expect(asked).toEqual(['/stats/prometheus']);
    for (const r of rs) {
      expect(r.status).toBe(200);
      expect(r.body.startsWith(ENVOY)).toBe(true);
      expect(r.body).toMatch(/^meshlet_envoy_stats_up 1$/m);
      expect(r.body).toBe(rs[0]!.body);
    }
  });

  it('a scrape that starts after the previous one settled reads fresh stats', async () => {
    let n = 0;
    const { port, asked } = await start(() => Promise.resolve({ status: 200, body: `envoy_scrapes_total ${++n}\n` }));
    expect((await call(port, 'GET', '/stats/prometheus')).body).toMatch(/^envoy_scrapes_total 1$/m);
    expect((await call(port, 'GET', '/stats/prometheus')).body).toMatch(/^envoy_scrapes_total 2$/m);
    expect(asked).toEqual(['/stats/prometheus', '/stats/prometheus']);
  });

  it('asks the admin client to stop reading past MAX_ENVOY_STATS_BYTES', async () => {
    const { port, limits } = await start(() => Promise.resolve({ status: 200, body: ENVOY }));
    expect((await call(port, 'GET', '/stats/prometheus')).status).toBe(200);
    expect(limits).toEqual([{ maxBytes: MAX_ENVOY_STATS_BYTES }]);
  });

  it("an admin client that rejects an oversized body: every waiter gets meshlet's metrics and up 0", async () => {
    const admin = held();
    const { port, asked } = await start(admin.adminGet);
    const arrived = received(5);
    const scrapes = Array.from({ length: 5 }, () => call(port, 'GET', '/stats/prometheus'));
    await arrived;
    admin.reject(new Error(`Envoy admin /stats/prometheus: answer larger than ${MAX_ENVOY_STATS_BYTES} bytes`));
    for (const r of await Promise.all(scrapes)) {
      expect(r.status).toBe(200);
      expect(r.body).toMatch(/^meshlet_envoy_stats_up 0$/m);
      expect(r.body).toMatch(/^# TYPE meshlet_xds_acks_total counter$/m);
      expect(r.body).not.toContain('envoy_server_live');
    }
    expect(asked).toHaveLength(1);
  });

  it('a client that ignores maxBytes: a body over the limit in bytes is still refused', async () => {
    // One byte per character would pass a check on length alone; 'é' is two bytes in UTF-8.
    const body = `envoy_big 1\n# ${'é'.repeat(MAX_ENVOY_STATS_BYTES / 2)}\n`;
    const { port } = await start(() => Promise.resolve({ status: 200, body }));
    const r = await call(port, 'GET', '/stats/prometheus');
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/^meshlet_envoy_stats_up 0$/m);
    expect(r.body).not.toContain('envoy_big');
  });

  it('the up gauge follows each read: down, then up again', async () => {
    let fail = true;
    const { port } = await start(() => (fail ? Promise.reject(new Error('connect ECONNREFUSED')) : Promise.resolve({ status: 200, body: ENVOY })));
    expect((await call(port, 'GET', '/stats/prometheus')).body).toMatch(/^meshlet_envoy_stats_up 0$/m);
    fail = false;
    expect((await call(port, 'GET', '/stats/prometheus')).body).toMatch(/^meshlet_envoy_stats_up 1$/m);
  });
});
