// The tproxy inbound listener through a real Envoy: a client namespace and a
// pod namespace joined by a veth pair, with Contrast-style TPROXY rules
// written by hand (the real ones come from the iptables module). Proves both
// address families, per-port policies, allowedSans, the 127.0.0.6 / ::6
// upstream source, and the blackhole for the proxy's own ports.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStaticBootstrap } from '../../src/envoy/static-bootstrap.js';
import type { JsonObject } from '../../src/xds/protos.js';
import { startEnvoy, type EnvoyHandle } from '../helpers/envoy.js';
import { tmpDir } from '../helpers/tmp.js';
import { createTmpCa, type Leaf } from '../helpers/tmp-pki.js';
import { meshConfig } from './configs.js';
import { NetLab, netnsUnavailable } from '../helpers/netns.js';
import { Peer, type TlsDial } from './peer.js';
import { cannotRun } from '../helpers/gate.js';

const POD = { v4: '198.18.1.2', v6: '2001:db8:1::2' };
const CLIENT = { v4: '198.18.1.1', v6: '2001:db8:1::1' };
const config = meshConfig({
  ingress: {
    mode: 'tproxy',
    default: 'mtls',
    ports: [
      { name: 'web', port: 8080, policy: 'tls' },
      { name: 'db', port: 5432, policy: 'mtls', allowedSans: ['spiffe://mesh.test/client'] },
      { name: 'metrics', port: 7890, policy: 'plaintext' },
    ],
  },
});
const APP_PORTS = [8080, 5432, 6000, 7890];

async function tproxyRules(lab: NetLab, ns: string, tool: 'iptables' | 'ip6tables'): Promise<void> {
  const rule = (...args: string[]): Promise<string> => lab.must(ns, [tool, '-t', 'mangle', ...args]);
  await rule('-N', 'MESHLET_TEST');
  await rule('-A', 'PREROUTING', '-p', 'tcp', '-j', 'MESHLET_TEST');
  await rule('-A', 'MESHLET_TEST', '-i', 'lo', '-j', 'RETURN');
  await rule('-A', 'MESHLET_TEST', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'RETURN');
  await rule('-A', 'MESHLET_TEST', '-p', 'tcp', '--dport', '7890', '-j', 'RETURN');
  await rule('-A', 'MESHLET_TEST', '-p', 'tcp', '-j', 'TPROXY', '--on-port', String(config.proxy.inboundPort), '--tproxy-mark', '0x1/0x1');
}

describe.skipIf(cannotRun('tproxy ingress through a real Envoy', netnsUnavailable()))('tproxy ingress through a real Envoy', () => {
  const dir = tmpDir('meshlet-inbound-');
  const lab = new NetLab('meshlet');
  let envoy: EnvoyHandle | undefined;
  let client: Peer;
  let ca: Awaited<ReturnType<typeof createTmpCa>>;
  let leaf: Record<'client' | 'other' | 'stranger', Leaf>;
  const as = (who: keyof typeof leaf | 'none'): TlsDial =>
    who === 'none' ? { ca: ca.caPath } : { ca: ca.caPath, cert: leaf[who].certPath, key: leaf[who].keyPath };
  const stat = async (name: string): Promise<number> => {
    const body = (await envoy?.admin(`/stats?filter=^${name.replace(/\./g, '\\.')}$`))?.body ?? '';
    return Number(/: (\d+)/.exec(body)?.[1] ?? NaN);
  };

  beforeAll(async () => {
    const pod = await lab.netns('inbound-pod');
    const peerNs = await lab.netns('inbound-client');
    await lab.veth({ ns: peerNs, addrs: [`${CLIENT.v4}/24`, `${CLIENT.v6}/64`] }, { ns: pod, addrs: [`${POD.v4}/24`, `${POD.v6}/64`] });
    await lab.must(pod, ['ip', 'addr', 'add', '::6/128', 'dev', 'lo', 'nodad']);
    await tproxyRules(lab, pod, 'iptables');
    await tproxyRules(lab, pod, 'ip6tables');

    ca = await createTmpCa(path.join(dir, 'pki'));
    const other = await createTmpCa(path.join(dir, 'other-pki'), 'other-ca');
    leaf = {
      client: await ca.issue('client', { sans: ['spiffe://mesh.test/client'] }),
      other: await ca.issue('other', { sans: ['spiffe://mesh.test/other'] }),
      stranger: await other.issue('stranger', { sans: ['spiffe://mesh.test/client'] }),
    };
    const app = await Peer.start(lab, pod);
    for (const p of APP_PORTS) await app.app(p);
    client = await Peer.start(lab, peerNs);

    const certs = ca.certState(await ca.issue('pod', { sans: ['spiffe://mesh.test/pod'] }));
    const bootstrap: JsonObject = { ...buildStaticBootstrap(config, certs), admin: { address: { pipe: { path: path.join(dir, 'admin.sock') } } } };
    envoy = await startEnvoy({ bootstrap, dir, netns: pod, listeners: ['meshlet-inbound'] });
  });

  afterAll(async () => {
    await envoy?.stop();
    rmSync(dir, { recursive: true, force: true });
    await lab.cleanup();
  });

  it.each([
    ['IPv4', POD.v4, '127.0.0.6'],
    ['IPv6', POD.v6, '::6'],
  ])('a tls port accepts TLS without a client cert over %s (%s); the app sees %s', async (_family, ip, source) => {
    expect(await client.said(ip, 8080, as('none'))).toEqual({ server: 'app', port: 8080, peer: source });
  });

  it.each([
    ['IPv4', POD.v4, '127.0.0.6'],
    ['IPv6', POD.v6, '::6'],
  ])('an unlisted port gets the default (mtls) over %s (%s, from %s)', async (_family, ip, source) => {
    expect(await client.said(ip, 6000, as('client'))).toEqual({ server: 'app', port: 6000, peer: source });
    expect(await client.said(ip, 6000, as('other'))).toMatchObject({ port: 6000 });
    expect(await client.said(ip, 6000, as('none'))).toBeNull();
    expect(await client.said(ip, 6000, as('stranger'))).toBeNull();
    // Plaintext gets a TLS alert back, never the app.
    expect((await client.dial(ip, 6000, { send: 'plaintext\n' })).data).not.toContain('"server":"app"');
  });

  it('allowedSans admits only the listed client SAN', async () => {
    expect(await client.said(POD.v4, 5432, as('client'))).toMatchObject({ port: 5432, peer: '127.0.0.6' });
    expect(await client.said(POD.v6, 5432, as('client'))).toMatchObject({ port: 5432, peer: '::6' });
    expect(await client.said(POD.v4, 5432, as('other'))).toBeNull();
    expect(await client.said(POD.v6, 5432, as('stranger'))).toBeNull();
  });

  it('a plaintext port is not redirected: the app sees the client itself', async () => {
    expect(await client.said(POD.v4, 7890)).toEqual({ server: 'app', port: 7890, peer: CLIENT.v4 });
    expect(await client.said(POD.v6, 7890)).toEqual({ server: 'app', port: 7890, peer: CLIENT.v6 });
  });

  it('a connection aimed at the inbound port itself is dropped, not looped (Contrast #1142)', async () => {
    const before = await stat('listener.meshlet-inbound.downstream_cx_total');
    const holesBefore = await stat('cluster.meshlet-blackhole.upstream_cx_none_healthy');
    expect((await client.dial(POD.v4, config.proxy.inboundPort)).data).toBe('');
    expect((await client.dial(POD.v6, config.proxy.inboundPort)).data).toBe('');
    expect(await stat('cluster.meshlet-blackhole.upstream_cx_none_healthy')).toBe(holesBefore + 2);
    // A loop would show as Envoy accepting its own connections over and over.
    expect(await stat('listener.meshlet-inbound.downstream_cx_total')).toBe(before + 2);
    expect(await client.said(POD.v4, 8080, as('none'))).toMatchObject({ port: 8080 });
  });
});
