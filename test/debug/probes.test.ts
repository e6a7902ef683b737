// The app-health listener against real apps on loopback: an HTTP server, a
// TCP server and a grpc-js health server, each a separate process the test
// stops and starts (src/demo/health-app.ts).
import type { Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { request } from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppProbe } from '../../src/config/model.js';
import { decodeHealthStatus, encodeHealthRequest, podAddress, probeCounter, probeHost, startProbeServer } from '../../src/debug/probes.js';
import { Proc } from '../../src/demo/proc.js';
import { freeLowPort } from '../helpers/ports.js';
import type { HealthAppConfig } from '../../src/demo/health-app.js';

const HEALTH_APP = path.resolve('dist/src/demo/health-app.js');
let server: Server | undefined;
const apps: Proc[] = [];

const freePort = (): Promise<number> => freeLowPort();

afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
  await Promise.all(apps.splice(0).map((a) => a.stop('SIGTERM', 3_000)));
});

async function startApp(cfg: HealthAppConfig): Promise<Proc> {
  const p = new Proc(`health-app ${cfg.kind}`, [process.execPath, HEALTH_APP, JSON.stringify(cfg)]);
  apps.push(p);
  await p.waitFor((l) => l.includes('"ev":"listening"'), 10_000, `the ${cfg.kind} app listening on ${cfg.port}`);
  return p;
}

async function start(checks: AppProbe[]): Promise<{ port: number; counter: ReturnType<typeof probeCounter> }> {
  const counter = probeCounter();
  server = await startProbeServer(0, { checks: () => checks, host: () => '127.0.0.1', counter });
  return { port: (server.address() as AddressInfo).port, counter };
}

function call(port: number, target: string, method = 'GET', host = '127.0.0.1'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, method, path: target, timeout: 10_000, agent: false }, (res) => {
      let body = '';
      res
        .setEncoding('utf8')
        .on('data', (c: string) => (body += c))
        .on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject).on('timeout', () => req.destroy(new Error(`timed out waiting for ${target}`)));
    req.end();
  });
}

const probe = (p: Partial<AppProbe> & Pick<AppProbe, 'name' | 'kind' | 'port'>): AppProbe => ({ timeoutSeconds: 2, ...p });

describe('app-health listener', () => {
  it.each([
    ['http', { path: '/healthz' }],
    ['tcp', {}],
    ['grpc', { service: '' }],
  ] as const)('%s: 200 while the app runs, 503 once it stops, 200 when it is back', async (kind, extra) => {
    const appPort = await freePort();
    const { port, counter } = await start([probe({ name: 'app', kind, port: appPort, ...extra })]);
    const app = await startApp({ kind, port: appPort });
    expect((await call(port, '/app-health/app')).status).toBe(200);
    await app.waitFor((l) => l.includes('"ev":"check"'), 5_000, 'the check reaching the app');
    await app.stop();
    const down = await call(port, '/app-health/app');
    expect(down.status).toBe(503);
    expect(down.body).toMatch(/^failed: /);
    await startApp({ kind, port: appPort });
    expect((await call(port, '/app-health/app')).status).toBe(200);
    expect(counter.get({ probe: 'app', result: 'pass' })).toBe(2);
    expect(counter.get({ probe: 'app', result: 'fail' })).toBe(1);
  });

  it('http: follows the kubelet: 3xx passes, 5xx fails, and the app body never comes back', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const { port } = await start([
      probe({ name: 'redirect', kind: 'http', port: a, path: '/x' }),
      probe({ name: 'broken', kind: 'http', port: b, path: '/x?y=1' }),
    ]);
    await startApp({ kind: 'http', port: a, httpStatus: 302, body: 'SECRET-A' });
    const broken = await startApp({ kind: 'http', port: b, httpStatus: 500, body: 'SECRET-B' });
    const ok = await call(port, '/app-health/redirect');
    expect(ok.status).toBe(200);
    const bad = await call(port, '/app-health/broken');
    expect(bad).toEqual({ status: 503, body: 'failed: HTTP 500\n' });
    expect(ok.body + bad.body).not.toContain('SECRET');
    const seen = await broken.waitFor((l) => l.includes('"ev":"check"'), 5_000, 'the check');
    expect(JSON.parse(seen)).toMatchObject({ path: '/x?y=1', ua: 'meshlet-probe' });
  });

  it('grpc: NOT_SERVING and an unknown service fail; a named service passes', async () => {
    const [a, b, c] = [await freePort(), await freePort(), await freePort()];
    const { port } = await start([
      probe({ name: 'down', kind: 'grpc', port: a, service: '' }),
      probe({ name: 'named', kind: 'grpc', port: b, service: 'shop.Cart' }),
      probe({ name: 'unknown', kind: 'grpc', port: b, service: 'nope' }),
      probe({ name: 'not-grpc', kind: 'grpc', port: c }),
    ]);
    await startApp({ kind: 'grpc', port: a, status: 'NOT_SERVING' });
    await startApp({ kind: 'grpc', port: b, services: ['shop.Cart'] });
    await startApp({ kind: 'http', port: c });
    expect(await call(port, '/app-health/down')).toEqual({ status: 503, body: 'failed: Health/Check: NOT_SERVING\n' });
    expect((await call(port, '/app-health/named')).status).toBe(200);
    expect(await call(port, '/app-health/unknown')).toEqual({ status: 503, body: 'failed: Health/Check: NOT_FOUND\n' });
    expect((await call(port, '/app-health/not-grpc')).status).toBe(503);
  });

  it.each([
    ['GET', '/app-health/other', 404],
    ['GET', '/app-health/', 404],
    ['GET', '/app-health/web?x=1', 404],
    ['GET', '/app-health/web/', 404],
    ['GET', '/app-health/%77eb', 404],
    ['GET', '/app-health/../stats/prometheus', 404],
    ['GET', '/stats/prometheus', 404],
    ['GET', '/ready', 404],
    ['GET', '/', 404],
    ['POST', '/app-health/web', 405],
    ['HEAD', '/app-health/web', 405],
    ['DELETE', '/app-health/web', 405],
  ])('refuses %s %s with %i without touching the app', async (method, target, status) => {
    const appPort = await freePort();
    const { port } = await start([probe({ name: 'web', kind: 'tcp', port: appPort })]);
    const app = await startApp({ kind: 'tcp', port: appPort });
    expect((await call(port, target, method)).status).toBe(status);
    // A real probe afterwards is the app's first and only connection.
    expect((await call(port, '/app-health/web')).status).toBe(200);
    await app.waitFor((l) => l.includes('"ev":"check"'), 5_000, 'the real check');
    expect(app.lines.filter((l) => l.includes('"ev":"check"'))).toHaveLength(1);
  });

  it('a flood of requests shares one check: the app sees one connection per probe at a time', async () => {
    const appPort = await freePort();
    const { port } = await start([probe({ name: 'web', kind: 'http', port: appPort, path: '/' })]);
    const slow = createServer();
    let conns = 0;
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => (release = r));
    slow.on('connection', (s) => {
      conns += 1;
      void released.then(() => s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n'));
    });
    await new Promise<void>((r) => slow.listen(appPort, '127.0.0.1', () => r()));
    try {
      // The app holds its answer until all 20 requests have reached meshlet.
      const arrived = new Promise<void>((resolve, reject) => {
        let n = 0;
        const deadline = setTimeout(() => reject(new Error(`only ${n} of 20 requests reached the probe server within 5 s`)), 5_000);
        server!.on('request', () => {
          if (++n === 20) {
            clearTimeout(deadline);
            resolve();
          }
        });
      });
      const all = Promise.all(Array.from({ length: 20 }, () => call(port, '/app-health/web')));
      await arrived;
      release();
      const results = await all;
      expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
      expect(conns).toBe(1);
    } finally {
      slow.close();
    }
  });

  it('a hostile app that accepts and never answers, or answers gRPC with garbage, fails within the probe timeout', async () => {
    const [mute, junk] = [await freePort(), await freePort()];
    const held: import('node:net').Socket[] = [];
    const muteApp = createServer((s) => void held.push(s));
    const junkApp = createServer((s) => {
      s.on('error', () => undefined);
      s.end(Buffer.alloc(64, 0xff));
    });
    await Promise.all([
      new Promise<void>((r) => muteApp.listen(mute, '127.0.0.1', () => r())),
      new Promise<void>((r) => junkApp.listen(junk, '127.0.0.1', () => r())),
    ]);
    try {
      const { port } = await start([
        probe({ name: 'mute-http', kind: 'http', port: mute, path: '/', timeoutSeconds: 1 }),
        probe({ name: 'mute-grpc', kind: 'grpc', port: mute, timeoutSeconds: 1 }),
        probe({ name: 'junk-grpc', kind: 'grpc', port: junk, timeoutSeconds: 1 }),
      ]);
      expect(await call(port, '/app-health/mute-http')).toEqual({ status: 503, body: `failed: no HTTP answer from 127.0.0.1:${mute} within 1000 ms\n` });
      expect(await call(port, '/app-health/mute-grpc')).toEqual({ status: 503, body: 'failed: Health/Check: DEADLINE_EXCEEDED\n' });
      expect((await call(port, '/app-health/junk-grpc')).status).toBe(503);
    } finally {
      for (const s of held) s.destroy();
      muteApp.close();
      junkApp.close();
    }
  });

  it('answers on IPv6 too', async () => {
    const appPort = await freePort();
    const { port } = await start([probe({ name: 'web', kind: 'tcp', port: appPort })]);
    await startApp({ kind: 'tcp', port: appPort });
    expect((await call(port, '/app-health/web', 'GET', '::1')).status).toBe(200);
  });
});

describe('probe target and wire format', () => {
  it('dials the pod address, or loopback for ports mapped mode proxies on loopback', () => {
    const p = probe({ name: 'x', kind: 'tcp', port: 8080 });
    expect(probeHost(new Set([8080]), p, () => '198.18.0.11')).toBe('127.0.0.1');
    expect(probeHost(new Set([9090]), p, () => '198.18.0.11')).toBe('198.18.0.11');
  });

  it('picks a global pod address: IPv4 first, never link-local, loopback when there is none', () => {
    const a = (address: string, family: 'IPv4' | 'IPv6', internal = false) => ({ address, family, internal, netmask: '', mac: '', cidr: null }) as never;
    expect(podAddress({ lo: [a('127.0.0.1', 'IPv4', true)], eth0: [a('fe80::1', 'IPv6'), a('2001:db8::11', 'IPv6'), a('198.18.0.11', 'IPv4')] })).toBe(
      '198.18.0.11',
    );
    expect(podAddress({ eth0: [a('169.254.1.1', 'IPv4'), a('fe80::1', 'IPv6'), a('2001:db8::11', 'IPv6')] })).toBe('2001:db8::11');
    expect(podAddress({ lo: [a('127.0.0.1', 'IPv4', true)] })).toBe('127.0.0.1');
  });

  it('encodes HealthCheckRequest and decodes HealthCheckResponse as protobuf does', () => {
    expect(encodeHealthRequest('')).toEqual(Buffer.alloc(0));
    expect(encodeHealthRequest('a.B')).toEqual(Buffer.from([0x0a, 3, 0x61, 0x2e, 0x42]));
    const long = 'x'.repeat(200);
    expect(encodeHealthRequest(long).subarray(0, 3)).toEqual(Buffer.from([0x0a, 0xc8, 0x01]));
    expect(decodeHealthStatus(Buffer.from([0x08, 0x01]))).toBe(1);
    expect(decodeHealthStatus(Buffer.alloc(0))).toBe(0);
    // Unknown fields are skipped; truncated bytes are refused.
    expect(decodeHealthStatus(Buffer.from([0x12, 0x02, 0x61, 0x62, 0x08, 0x02]))).toBe(2);
    expect(decodeHealthStatus(Buffer.from([0x08]))).toBeUndefined();
    expect(decodeHealthStatus(Buffer.from([0x12, 0x05, 0x61]))).toBeUndefined();
  });
});
