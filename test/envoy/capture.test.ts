// Egress capture through a real Envoy: the app's outbound TCP is REDIRECTed
// (by hand here, by `meshlet init` for real) to the outbound listener, which
// must wrap it in mTLS to the original destination, pass exclusions through in
// plaintext, and drop connections aimed at its own port instead of looping.
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

const APP_UID = 1000;
const REMOTE = { v4: '198.18.0.10', v6: '2001:db8::10', excluded: '198.18.0.20' };
const config = meshConfig({
  ingress: { mode: 'disabled' },
  egress: { capture: true, exclude: { ports: [9000], cidrs: [`${REMOTE.excluded}/32`] } },
});

describe.skipIf(cannotRun('egress capture through a real Envoy', netnsUnavailable()))('egress capture through a real Envoy', () => {
  const dir = tmpDir('meshlet-capture-');
  const lab = new NetLab('meshlet');
  let envoy: EnvoyHandle | undefined;
  let app: Peer;
  const stat = async (name: string): Promise<number> => {
    const body = (await envoy?.admin(`/stats?filter=^${name.replace(/\./g, '\\.')}$`))?.body ?? '';
    return Number(/: (\d+)/.exec(body)?.[1] ?? NaN);
  };

  beforeAll(async () => {
    const ns = await lab.netns('capture');
    for (const ip of [`${REMOTE.v4}/32`, `${REMOTE.excluded}/32`]) await lab.must(ns, ['ip', 'addr', 'add', ip, 'dev', 'lo']);
    await lab.must(ns, ['ip', 'addr', 'add', `${REMOTE.v6}/128`, 'dev', 'lo', 'nodad']);
    // Only the app's connections are captured, as the real rules exempt Envoy's uid.
    for (const tool of ['iptables', 'ip6tables']) {
      await lab.must(ns, [
        tool,
        '-t',
        'nat',
        '-A',
        'OUTPUT',
        '-p',
        'tcp',
        '-m',
        'owner',
        '--uid-owner',
        String(APP_UID),
        '-j',
        'REDIRECT',
        '--to-ports',
        String(config.proxy.outboundPort),
      ]);
    }

    const ca = await createTmpCa(path.join(dir, 'pki'));
    const backend = await ca.issue('backend', { sans: ['spiffe://mesh.test/backend'] });
    const servers = await Peer.start(lab, ns);
    await servers.serve('backend', 8443, { cert: backend.certPath, key: backend.keyPath, ca: ca.caPath });
    await servers.app(9000);
    await servers.app(9001);
    app = await Peer.start(lab, ns, { uid: APP_UID });

    const bootstrap: JsonObject = {
      ...buildStaticBootstrap(config, ca.certState(await ca.issue('workload'))),
      admin: { address: { pipe: { path: path.join(dir, 'admin.sock') } } },
    };
    envoy = await startEnvoy({ bootstrap, dir, netns: ns, listeners: ['meshlet-outbound'] });
  });

  afterAll(async () => {
    await envoy?.stop();
    rmSync(dir, { recursive: true, force: true });
    await lab.cleanup();
  });

  it.each([REMOTE.v4, REMOTE.v6])('wraps a plain connection to %s in mTLS to the original destination', async (ip) => {
    expect(await app.greeting(ip, 8443)).toEqual({ server: 'backend', port: 8443, client: 'workload', sni: null });
  });

  it('never sends the app bytes in plaintext to a destination that is not excluded', async () => {
    // The plain server answers in clear; Envoy expects a TLS handshake and drops the connection.
    expect((await app.dial(REMOTE.v4, 9001)).data).not.toContain('"server":"app"');
  });

  it('passes an excluded port and an excluded CIDR through in plaintext', async () => {
    expect(await app.said(REMOTE.v4, 9000)).toMatchObject({ server: 'app', port: 9000 });
    expect(await app.said(REMOTE.excluded, 9001)).toMatchObject({ server: 'app', port: 9001 });
  });

  it('drops a connection to its own port instead of looping', async () => {
    const before = await stat('cluster.meshlet-blackhole.upstream_cx_none_healthy');
    expect((await app.dial('127.0.0.1', config.proxy.outboundPort)).data).toBe('');
    expect(await stat('cluster.meshlet-blackhole.upstream_cx_none_healthy')).toBe(before + 1);
  });
});
