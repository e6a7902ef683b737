// Portless egress routes and SAN pinning through a real Envoy, in a network
// namespace. The app dials 127.137.0.x:<any port>; a manual iptables REDIRECT
// (what `meshlet init` will install) sends it to the portless listener, and
// Envoy must reach the remote at the very port the app dialled, over mTLS.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStaticBootstrap } from '../../src/envoy/static-bootstrap.js';
import type { JsonObject } from '../../src/xds/protos.js';
import { startEnvoy, type EnvoyHandle } from '../helpers/envoy.js';
import { tmpDir } from '../helpers/tmp.js';
import { createTmpCa } from '../helpers/tmp-pki.js';
import { meshConfig } from './configs.js';
import { NetLab, netnsUnavailable } from '../helpers/netns.js';
import { Peer } from './peer.js';
import { cannotRun } from '../helpers/gate.js';

const REMOTE_V4 = '198.18.0.10';
const REMOTE_V6 = '2001:db8::10';
const P1 = 8443;
const P2 = 9443;

const config = meshConfig({
  ingress: { mode: 'disabled' },
  egress: {
    routes: [
      { name: 'db', listen: '127.137.0.2', remote: REMOTE_V4 },
      { name: 'named', listen: '127.137.0.3', remote: 'localhost', sni: 'backend.mesh.test' },
      { name: 'v6', listen: '127.137.0.4', remote: `[${REMOTE_V6}]` },
      { name: 'pinned', listen: '127.137.0.5', remote: REMOTE_V4, expectedSans: ['backend-a.mesh.test'] },
      { name: 'pinned-ok', listen: '127.137.0.6:7001', remote: `${REMOTE_V4}:${P1}`, expectedSans: ['spiffe://mesh.test/backend-a'] },
      { name: 'pinned-bad', listen: '127.137.0.6:7002', remote: `${REMOTE_V4}:${P2}`, expectedSans: ['spiffe://mesh.test/backend-a'] },
    ],
  },
});
const PORTLESS_IPS = ['127.137.0.2', '127.137.0.3', '127.137.0.4', '127.137.0.5'];

describe.skipIf(cannotRun('portless egress routes through a real Envoy', netnsUnavailable()))('portless egress routes through a real Envoy', () => {
  const dir = tmpDir('meshlet-portless-');
  const lab = new NetLab('meshlet');
  let envoy: EnvoyHandle | undefined;
  let app: Peer;

  beforeAll(async () => {
    const ns = await lab.netns('portless');
    await lab.must(ns, ['ip', 'addr', 'add', `${REMOTE_V4}/32`, 'dev', 'lo']);
    await lab.must(ns, ['ip', 'addr', 'add', `${REMOTE_V6}/128`, 'dev', 'lo', 'nodad']);
    for (const ip of PORTLESS_IPS)
      await lab.must(ns, [
        'iptables',
        '-t',
        'nat',
        '-A',
        'OUTPUT',
        '-d',
        ip,
        '-p',
        'tcp',
        '-j',
        'REDIRECT',
        '--to-ports',
        String(config.proxy.portlessEgressPort),
      ]);

    const ca = await createTmpCa(path.join(dir, 'pki'));
    const workload = await ca.issue('workload', { sans: ['spiffe://mesh.test/workload'] });
    const backendA = await ca.issue('backend-a', { sans: ['backend-a.mesh.test', 'backend.mesh.test', 'spiffe://mesh.test/backend-a'] });
    const backendB = await ca.issue('backend-b', { sans: ['backend-b.mesh.test', 'backend.mesh.test', 'spiffe://mesh.test/backend-b'] });

    app = await Peer.start(lab, ns);
    await app.serve('backend-a', P1, { cert: backendA.certPath, key: backendA.keyPath, ca: ca.caPath });
    await app.serve('backend-b', P2, { cert: backendB.certPath, key: backendB.keyPath, ca: ca.caPath });

    // Admin on a Unix socket: a loopback port inside the namespace is unreachable from this process.
    const bootstrap: JsonObject = {
      ...buildStaticBootstrap(config, ca.certState(workload)),
      admin: { address: { pipe: { path: path.join(dir, 'admin.sock') } } },
    };
    envoy = await startEnvoy({ bootstrap, dir, netns: ns, listeners: ['meshlet-portless', 'meshlet-route-pinned-ok', 'meshlet-route-pinned-bad'] });
  });

  afterAll(async () => {
    await envoy?.stop();
    rmSync(dir, { recursive: true, force: true });
    await lab.cleanup();
  });

  it('reaches the remote at the port the app dialled, over mTLS, on the first connection', async () => {
    expect(await app.greeting('127.137.0.2', P1)).toEqual({ server: 'backend-a', port: P1, client: 'workload', sni: null });
    expect(await app.greeting('127.137.0.2', P2)).toEqual({ server: 'backend-b', port: P2, client: 'workload', sni: null });
  });

  it('resolves a DNS remote and sends the configured SNI', async () => {
    expect(await app.greeting('127.137.0.3', P2)).toEqual({ server: 'backend-b', port: P2, client: 'workload', sni: 'backend.mesh.test' });
    expect(await app.greeting('127.137.0.3', P1)).toMatchObject({ server: 'backend-a', sni: 'backend.mesh.test' });
  });

  it('dials an IPv6 remote', async () => {
    expect(await app.greeting('127.137.0.4', P1)).toMatchObject({ server: 'backend-a', port: P1, client: 'workload' });
    expect(await app.greeting('127.137.0.4', P2)).toMatchObject({ server: 'backend-b', port: P2 });
  });

  it('SAN pinning refuses a server with the wrong SAN (portless route)', async () => {
    expect(await app.greeting('127.137.0.5', P1)).toMatchObject({ server: 'backend-a' });
    expect(await app.greeting('127.137.0.5', P2)).toBeNull();
  });

  it('SAN pinning refuses a server with the wrong SAN (route with a port)', async () => {
    expect(await app.greeting('127.137.0.6', 7001)).toMatchObject({ server: 'backend-a', port: P1 });
    expect(await app.greeting('127.137.0.6', 7002)).toBeNull();
  });

  it('counts the refusals as SAN verification failures', async () => {
    const stats = (await envoy?.admin('/stats?filter=ssl.fail_verify_san'))?.body ?? '';
    expect(stats).toMatch(/cluster\.meshlet-route-pinned\.ssl\.fail_verify_san: [1-9]/);
    expect(stats).toMatch(/cluster\.meshlet-route-pinned-bad\.ssl\.fail_verify_san: [1-9]/);
    expect(stats).toMatch(/cluster\.meshlet-route-db\.ssl\.fail_verify_san: 0/);
  });
});
