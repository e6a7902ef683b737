import { execFileSync } from 'node:child_process';
import { lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, createRootLogger } from '../../src/log.js';
import { AdsServer } from '../../src/xds/server.js';
import { CDS, SDS, adsHarness, cluster, secret } from './ads-fixtures.js';
import { waitFor } from '../helpers/xds-client.js';

describe('ADS server: socket and lifecycle', () => {
  const h = adsHarness();

  it('creates the parent directory and binds a socket with mode 0600', async () => {
    await h.start();
    const st = await lstat(h.socketPath);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('replaces a stale socket left by a dead process', async () => {
    await h.start();
    await h.server.close();
    // A process that dies without cleaning up leaves a socket file nobody listens on.
    const script = `require('net').createServer().listen(${JSON.stringify(h.socketPath)}, () => process.exit(0))`;
    execFileSync(process.execPath, ['-e', script]);
    expect((await lstat(h.socketPath)).isSocket()).toBe(true);
    const again = new AdsServer({ socketPath: h.socketPath, logger: createRootLogger('silent') });
    try {
      await again.listen();
      expect((await lstat(h.socketPath)).mode & 0o777).toBe(0o600);
    } finally {
      await again.close();
    }
  });

  it('refuses a live socket and a path that is not a socket', async () => {
    await h.start();
    const second = new AdsServer({ socketPath: h.socketPath, logger: createRootLogger('silent') });
    await expect(second.listen()).rejects.toThrow(/in use/);
    const notSocket = path.join(h.dir, 'plain');
    await mkdir(notSocket);
    const third = new AdsServer({ socketPath: notSocket, logger: createRootLogger('silent') });
    await expect(third.listen()).rejects.toThrow(/not a socket/);
  });

  it('close() ends connected streams and removes the socket file', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const envoy = h.connect().sotw('envoy-1');
    envoy.request(CDS);
    await envoy.next();
    await h.server.close();
    expect((await envoy.finished).code).toBe(0);
    await expect(lstat(h.socketPath)).rejects.toThrow(/ENOENT/);
    expect(h.server.status().envoys).toEqual([]);
  });

  it('reports the node id from the first request, on events and in status()', async () => {
    await h.start({ clusters: [cluster('c1')], secrets: [secret('s1')] });
    const envoy = h.connect().sotw('node-a');
    const acked = waitFor(h.server, 'ack', (e) => e.typeUrl === CDS);
    envoy.request(CDS);
    const res = await envoy.next();
    envoy.ack(res); // sent without a node, as Envoy does after the first request
    const ack = await acked;
    expect(ack).toMatchObject({ nodeId: 'node-a', kind: 'sotw', typeUrl: CDS, version: res.version_info, nonce: res.nonce });
    const status = h.server.status();
    expect(status.types[CDS]).toEqual({ version: res.version_info, names: ['c1'] });
    expect(status.types[SDS]?.names).toEqual(['s1']);
    expect(status.envoys).toHaveLength(1);
    expect(status.envoys[0]).toMatchObject({ nodeId: 'node-a', kind: 'sotw' });
    expect(status.envoys[0]?.types[CDS]).toMatchObject({
      subscribed: { wildcard: true, names: [] },
      desiredVersion: res.version_info,
      ackedVersion: res.version_info,
      pendingNonce: null,
      nackedVersion: null,
      lastError: null,
      inSync: true,
    });
  });
});

describe('ADS server: observers', () => {
  const h = adsHarness();

  it('keeps serving when an event listener throws', async () => {
    await h.start({ clusters: [cluster('c1')] });
    h.server.onResponse(() => {
      throw new Error('observer bug');
    });
    const envoy = h.connect().sotw('envoy');
    const acked = waitFor(h.server, 'ack');
    envoy.request(CDS);
    envoy.ack(await envoy.next());
    expect((await acked).typeUrl).toBe(CDS);
  });
});

describe('ADS server: logging', () => {
  const h = adsHarness();

  it('puts type URL, version, nonce and node id on every xDS log line', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) };
    await h.start({ clusters: [cluster('c1')] }, { logger: createLogger({ level: 'debug', sink }) });
    const envoy = h.connect().sotw('node-log');
    const nacked = waitFor(h.server, 'nack');
    envoy.request(CDS);
    const res = await envoy.next();
    envoy.nack(res, '', 'bad cluster');
    await nacked;
    const xds = lines.filter((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('xDS ') && l['msg'] !== 'xDS server listening');
    expect(xds.map((l) => l['msg'])).toEqual(expect.arrayContaining(['xDS stream opened', 'xDS request', 'xDS response', expect.stringMatching(/^xDS NACK/)]));
    for (const l of xds) {
      expect(l).toHaveProperty('typeUrl');
      expect(l).toHaveProperty('version');
      expect(l).toHaveProperty('nonce');
      expect(l).toHaveProperty('nodeId', 'node-log');
    }
    const nack = xds.find((l) => String(l['msg']).startsWith('xDS NACK'));
    expect(nack).toMatchObject({ typeUrl: CDS, version: res.version_info, nonce: res.nonce, error: 'bad cluster', level: 40 });
  });
});
