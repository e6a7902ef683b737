// The ADS server listening before it has a snapshot, as `meshlet run` does
// while it builds the snapshot and Envoy boots: a stream that opens first
// gets nothing (an empty answer would be ACKed, leaving Envoy with no
// clusters or listeners) until the first snapshot is installed, and then its
// held requests are answered at once. A real gRPC client on the real socket;
// and the real Envoy, started before the socket is bound.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger, createRootLogger } from '../../src/log.js';
import { buildBootstrap } from '../../src/envoy/bootstrap.js';
import { afterEach, describe, expect, it } from 'vitest';
import { AdsServer, MAX_HELD_BYTES, MAX_HELD_REQUESTS } from '../../src/xds/server.js';
import { CDS, LDS, cluster, listener, snap } from './ads-fixtures.js';
import { AdsTestClient, names } from '../helpers/xds-client.js';
import { until } from '../helpers/meshlet.js';
import { adminEndpoint, adminGet, envoyBinary, writeBootstrap } from '../helpers/envoy.js';
import { meshConfig } from '../envoy/configs.js';

interface LogLine {
  msg?: string;
  typeUrl?: string;
  streamId?: number;
}

/** A server with no snapshot on a fresh socket, whose log lines a test can wait for. */
class EarlyServer {
  readonly lines: LogLine[] = [];
  server!: AdsServer;
  client!: AdsTestClient;
  dir = '';

  async start(): Promise<void> {
    this.dir = await mkdtemp(path.join(os.tmpdir(), 'meshlet-ads-early-'));
    const sink = {
      write: (line: string): void => {
        for (const l of line.split('\n')) if (l) this.lines.push(JSON.parse(l) as LogLine);
      },
    };
    this.server = new AdsServer({ socketPath: path.join(this.dir, 'run', 'xds.sock'), logger: createLogger({ level: 'debug', sink }) });
    await this.server.listen();
    this.client = new AdsTestClient(path.join(this.dir, 'run', 'xds.sock'));
  }

  held(): number {
    return this.lines.filter((l) => l.msg === HELD).length;
  }

  async close(): Promise<void> {
    this.client?.close();
    await this.server?.close();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

const HELD = 'xDS request held until the first snapshot';

/** Until the server holds `count` requests, or the client got any response (which the test then reports). */
async function heldOrAnswered(h: EarlyServer, received: () => number, count: number): Promise<void> {
  await until(`${count} requests held by the server, or a response`, () => (h.held() >= count || received() > 0 ? true : undefined), 5_000, 5);
}

describe('ADS server before its first snapshot', () => {
  let h: EarlyServer;
  afterEach(async () => h.close());

  it('SotW: a stream that opens first gets no response until the snapshot is installed, then its resources at once, never an empty one', async () => {
    h = new EarlyServer();
    await h.start();
    const envoy = h.client.sotw('early-envoy');
    envoy.request(CDS);
    envoy.request(LDS);
    await heldOrAnswered(h, () => envoy.received.length, 2);
    // Both requests are in the server and nothing was written back: the stream is held, and not ready.
    expect(envoy.received).toEqual([]);
    expect(h.server.hasSnapshot()).toBe(false);
    const before = h.server.status();
    expect(before.types).toEqual({});
    expect(before.envoys).toHaveLength(1);
    expect(before.envoys[0]?.types).toEqual({});

    h.server.setSnapshot(snap({ clusters: [cluster('c1'), cluster('c2')], listeners: [listener('l1', 15001)] }));
    const cds = await envoy.next();
    expect(cds.type_url).toBe(CDS);
    expect(names(cds).sort()).toEqual(['c1', 'c2']);
    // Listeners follow once clusters are ACKed (the push order holds them meanwhile).
    envoy.ack(cds);
    const lds = await envoy.next();
    expect(lds.type_url).toBe(LDS);
    expect(names(lds)).toEqual(['l1']);
    expect(envoy.received.every((r) => r.resources.length > 0)).toBe(true);
    expect(h.lines.some((l) => l.msg === 'xDS stream opened')).toBe(true);
  });

  it('Delta: held requests are answered in order once the snapshot is installed, with every resource and no empty response', async () => {
    h = new EarlyServer();
    await h.start();
    const envoy = h.client.delta('early-delta');
    envoy.request(CDS);
    envoy.request(LDS);
    await heldOrAnswered(h, () => envoy.received.length, 2);
    expect(envoy.received).toEqual([]);

    h.server.setSnapshot(snap({ clusters: [cluster('c1')], listeners: [listener('l1', 15001), listener('l2', 15002)] }));
    const cds = await envoy.next();
    expect(cds.type_url).toBe(CDS);
    expect(names(cds)).toEqual(['c1']);
    envoy.ack(cds);
    const lds = await envoy.next();
    expect(lds.type_url).toBe(LDS);
    expect(names(lds).sort()).toEqual(['l1', 'l2']);
    expect(envoy.received.every((r) => r.resources.length > 0 && r.removed_resources.length === 0)).toBe(true);
  });

  it('a stream that floods requests before the snapshot is ended (RESOURCE_EXHAUSTED), and other streams are still answered', async () => {
    h = new EarlyServer();
    await h.start();
    const flood = h.client.sotw('flooder');
    for (let i = 0; i <= MAX_HELD_REQUESTS; i++) flood.request(CDS, { names: [`c${i}`] });
    const status = await Promise.race([
      flood.finished,
      until(
        'the flooding stream ended, or answered',
        () => (flood.received.length > 0 ? { code: -1, details: 'answered before any snapshot' } : undefined),
        5_000,
        5,
      ),
    ]);
    expect(status.code).toBe(8);
    expect(status.details).toMatch(/requests before the first snapshot/);
    expect(flood.received).toEqual([]);

    const envoy = h.client.sotw('patient');
    envoy.request(CDS);
    await heldOrAnswered(h, () => envoy.received.length, MAX_HELD_REQUESTS + 1);
    h.server.setSnapshot(snap({ clusters: [cluster('c1')] }));
    expect(names(await envoy.next())).toEqual(['c1']);
    expect(h.server.status().envoys.map((e) => e.nodeId)).toEqual(['patient']);
  });

  it('a stream that sends too many request bytes before the snapshot is ended (RESOURCE_EXHAUSTED), under the count limit', async () => {
    h = new EarlyServer();
    await h.start();
    const big = h.client.sotw('big-requests');
    // Requests of about 100 KiB each (many long resource names): few by count, too many by bytes.
    const names = Array.from({ length: 1000 }, (_, i) => `cluster-${i}-${'x'.repeat(90)}`);
    const count = Math.ceil(MAX_HELD_BYTES / (100 * 1024)) + 1;
    expect(count).toBeLessThan(MAX_HELD_REQUESTS);
    for (let i = 0; i < count; i++) big.request(CDS, { names });
    const status = await Promise.race([
      big.finished,
      until('the stream ended, or answered', () => (big.received.length > 0 ? { code: -1, details: 'answered before any snapshot' } : undefined), 5_000, 5),
    ]);
    expect(status.code).toBe(8);
    expect(status.details).toMatch(/request bytes before the first snapshot/);

    const heldBefore = h.held();
    const envoy = h.client.sotw('patient');
    envoy.request(CDS);
    await heldOrAnswered(h, () => envoy.received.length, heldBefore + 1);
    h.server.setSnapshot(snap({ clusters: [cluster('c1')] }));
    expect((await envoy.next()).resources).toHaveLength(1);
  });
});

// `meshlet run` binds the xDS socket just after it spawns Envoy (ARCHITECTURE.md, Startup order), and the bootstrap
// tells Envoy to retry a failed connect within 10 ms (ADS_RETRY_BACK_OFF) instead of its default half second. With the
// real Envoy on the bootstrap meshlet writes: Envoy up before the socket exists keeps trying, and its stream opens on
// the server bound afterwards.
describe('an Envoy that starts before the xDS socket is bound', () => {
  let envoy: ChildProcess | undefined;
  let server: AdsServer | undefined;
  let dir = '';
  afterEach(async () => {
    if (envoy && envoy.exitCode === null && envoy.signalCode === null) {
      const gone = new Promise((resolve) => envoy?.once('exit', resolve));
      envoy.kill('SIGKILL');
      await gone;
    }
    envoy = undefined;
    await server?.close(0);
    server = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('retries on the bootstrap back-off, several times, and opens its ADS stream once the socket is bound', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'meshlet-ads-retry-'));
    const socketPath = path.join(dir, 'run', 'xds.sock');
    mkdirSync(path.join(dir, 'run', 'envoy'), { recursive: true });
    const bootstrap = buildBootstrap(meshConfig({ proxy: { xdsSocket: socketPath } }), { nodeId: 'early-envoy', cluster: 'test' });
    const file = writeBootstrap(bootstrap, dir);
    envoy = spawn(envoyBinary(), ['-c', file, '--disable-hot-restart', '-l', 'error'], { stdio: 'ignore' });
    const admin = adminEndpoint(bootstrap);
    const failures = async (): Promise<number> => {
      const r = await adminGet(admin, '/stats?format=json&filter=^cluster\\.meshlet-xds\\.upstream_cx_connect_fail$');
      return Number((JSON.parse(r.body) as { stats: { value: number }[] }).stats[0]?.value ?? 0);
    };
    // Envoy's own count: six attempts on a missing socket, the sixth at most 0.6 s after the first on this back-off.
    await until('six failed connects to the missing socket', async () => ((await failures()) >= 6 ? true : undefined), 10_000, 10);
    expect(existsSync(socketPath)).toBe(false);
    server = new AdsServer({ socketPath, logger: createRootLogger('silent') });
    await server.listen();
    // The next try comes within the back-off's current step, at most 0.63 s after six failures (Envoy's default: a
    // random wait of up to 30 s, so this deadline fails it five times in six). Its requests wait for a snapshot (none
    // here), so the stream is known by its kind, not yet by Envoy's node id.
    const opened = await until('the ADS stream, within 5 s of the bind', () => server?.status().envoys[0], 5_000, 5);
    expect(opened.kind).toBe('delta');
    expect(await failures()).toBeGreaterThanOrEqual(6);
  });
});
