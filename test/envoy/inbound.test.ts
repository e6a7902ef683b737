// The tproxy inbound listener through a real Envoy: a client namespace and a
// pod namespace joined by a veth pair, with Contrast-style TPROXY rules
// written by hand (the real ones come from the iptables module). Proves both
// address families, per-port policies, allowedSans, the 127.0.0.6 / ::6
// upstream source, and the blackhole for the proxy's own ports.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStaticBootstrap } from '../../src/envoy/bootstrap.js';
import type { JsonObject } from '../../src/xds/protos.js';
import { startEnvoy, type EnvoyHandle } from '../helpers/envoy.js';
import { tmpDir } from '../helpers/tmp.js';
import { createTmpCa, type Leaf } from '../helpers/tmp-pki.js';
import { meshConfig } from './configs.js';
import { canUseNetns, Netns } from './netns.js';
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

function tproxyRules(ns: Netns, tool: 'iptables' | 'ip6tables'): void {
  const rule = (...args: string[]): string => ns.exec(tool, ['-t', 'mangle', ...args]);
  rule('-N', 'MESHLET_TEST');
  rule('-A', 'PREROUTING', '-p', 'tcp', '-j', 'MESHLET_TEST');
  rule('-A', 'MESHLET_TEST', '-i', 'lo', '-j', 'RETURN');
  rule('-A', 'MESHLET_TEST', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'RETURN');
  rule('-A', 'MESHLET_TEST', '-p', 'tcp', '--dport', '7890', '-j', 'RETURN');
  rule('-A', 'MESHLET_TEST', '-p', 'tcp', '-j', 'TPROXY', '--on-port', String(config.proxy.inboundPort), '--tproxy-mark', '0x1/0x1');
}

describe.skipIf(cannotRun('tproxy ingress through a real Envoy', canUseNetns() ? undefined : 'needs root and `ip netns` (network namespaces)'))(
  'tproxy ingress through a real Envoy',
  () => {
    const dir = tmpDir('meshlet-inbound-');
    const nss: Netns[] = [];
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
      const pod = Netns.create('inbound-pod');
      nss.push(pod);
      const peerNs = Netns.create('inbound-client');
      nss.push(peerNs);
      const veth = `mlv${process.pid % 100000}`;
      execFileSync('ip', ['link', 'add', `${veth}a`, 'netns', peerNs.name, 'type', 'veth', 'peer', 'name', `${veth}b`, 'netns', pod.name]);
      for (const [ns, dev, a] of [
        [peerNs, `${veth}a`, CLIENT],
        [pod, `${veth}b`, POD],
      ] as const) {
        ns.ip(['addr', 'add', `${a.v4}/24`, 'dev', dev]);
        ns.ip(['addr', 'add', `${a.v6}/64`, 'dev', dev, 'nodad']);
        ns.ip(['link', 'set', dev, 'up']);
      }
      pod.ip(['addr', 'add', '::6/128', 'dev', 'lo', 'nodad']);
      tproxyRules(pod, 'iptables');
      tproxyRules(pod, 'ip6tables');

      ca = await createTmpCa(path.join(dir, 'pki'));
      const other = await createTmpCa(path.join(dir, 'other-pki'), 'other-ca');
      leaf = {
        client: await ca.issue('client', { sans: ['spiffe://mesh.test/client'] }),
        other: await ca.issue('other', { sans: ['spiffe://mesh.test/other'] }),
        stranger: await other.issue('stranger', { sans: ['spiffe://mesh.test/client'] }),
      };
      const app = await Peer.start(pod);
      for (const p of APP_PORTS) await app.app(p);
      client = await Peer.start(peerNs);

      const certs = ca.certState(await ca.issue('pod', { sans: ['spiffe://mesh.test/pod'] }));
      const bootstrap: JsonObject = { ...buildStaticBootstrap(config, certs), admin: { address: { pipe: { path: path.join(dir, 'admin.sock') } } } };
      envoy = await startEnvoy({ bootstrap, dir, netns: pod.name, listeners: ['meshlet-inbound'] });
    });

    afterAll(async () => {
      await envoy?.stop();
      for (const ns of nss) ns.destroy();
      rmSync(dir, { recursive: true, force: true });
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
  },
);
