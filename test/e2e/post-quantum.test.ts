// Post-quantum key exchange between sidecars, on the wire: three meshlet pods
// in namespaces (web with capture on and egress routes; emoji with the
// default pq-preferred; vault with tls.keyExchange pq-required) and an outside
// host with OpenSSL 3.0, which has no ML-KEM. tshark reads the group each
// ServerHello's key share chose; 4588 (0x11ec) is X25519MLKEM768.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailable, MeshLab, type Host, type Pod, type WireReport } from '../../src/demo/lab.js';
import { tsharkFields } from '../../src/demo/capture.js';
import { makeClients, marker, outsideServerTls, type Clients, startOrClose } from './support.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('post-quantum key exchange between meshlet pods', labUnavailable());
const PORTS = { mtls: 8080, tls: 8443 } as const;
/** The outside host's address (the lab numbers hosts from .100) and its classic-only TLS server. */
const OUTSIDE_V4 = '198.18.0.100';
const CLASSIC_SERVER = 9443;
const ROUTE = { emoji: '127.137.0.1:8081', vault: '127.137.0.2:8081', classicStrict: '127.137.0.3:8081', classic: '127.137.0.4:8081' } as const;
const HYBRID = 'X25519MLKEM768';

describe.skipIf(skip)('post-quantum key exchange between meshlet pods', () => {
  let lab: MeshLab;
  let web: Pod;
  let emoji: Pod;
  let vault: Pod;
  let outside: Host;
  let clients: Clients;
  let serverTls: string[];

  beforeAll(async () => {
    const tlsPort = { ingress: { ports: [{ name: 'https', port: PORTS.tls, policy: 'tls' }] } };
    lab = await MeshLab.create({
      pods: [
        {
          name: 'web',
          app: { ports: [8080] },
          config: {
            egress: {
              capture: true,
              routes: [
                { name: 'emoji', listen: ROUTE.emoji, remote: 'emoji-svc:8080' },
                { name: 'vault', listen: ROUTE.vault, remote: 'vault-svc:8080', keyExchange: 'pq-required' },
                { name: 'classic-strict', listen: ROUTE.classicStrict, remote: `${OUTSIDE_V4}:${CLASSIC_SERVER}`, keyExchange: 'pq-required' },
                { name: 'classic', listen: ROUTE.classic, remote: `${OUTSIDE_V4}:${CLASSIC_SERVER}` },
              ],
            },
          },
        },
        { name: 'emoji', app: { ports: Object.values(PORTS) }, config: tlsPort },
        { name: 'vault', app: { ports: Object.values(PORTS) }, config: { ...tlsPort, tls: { keyExchange: 'pq-required' } } },
      ],
      hosts: [{ name: 'outside' }],
    });
    await startOrClose(lab, async () => {
      web = lab.pod('web');
      emoji = lab.pod('emoji');
      vault = lab.pod('vault');
      outside = lab.host('outside');
      clients = await makeClients(lab);
      serverTls = await outsideServerTls(lab);
    });
  }, 120_000);

  afterAll(async () => {
    expect((await lab?.close()) ?? []).toEqual([]);
  }, 60_000);

  /** The key share groups of every ServerHello in the capture, as tshark prints them (no name mapping of ours). */
  async function serverHelloGroups(file: string, port: number): Promise<string[]> {
    const out = await lab.ns.must(undefined, tsharkFields(file, ['tls.handshake.extensions_key_share_group'], [port], 'tls.handshake.type == 2'), {
      timeoutMs: 30_000,
    });
    return out.split('\n').filter(Boolean);
  }

  /** Captures `pod`'s link while the app in `from` fetches `url`; the fetch must succeed. */
  async function fetchCaptured(from: Pod, on: Pod, url: string, mark: string): Promise<{ wire: WireReport; groups: string[] }> {
    const cap = await lab.capture(on);
    const r = await lab.appFetch(from, url);
    await cap.stop();
    expect(r.status, JSON.stringify(r)).toBe(200);
    expect(r.body).toContain(mark);
    const wire = await cap.analyze(lab.ns, { tlsPorts: [PORTS.mtls], markers: [mark] });
    return { wire, groups: await serverHelloGroups(cap.file, PORTS.mtls) };
  }

  function expectHybridHop(wire: WireReport, groups: string[], server: Pod): void {
    const hop = wire.sessions.filter((s) => s.client.startsWith(`${web.v4}:`) && s.server === `${server.v4}:${PORTS.mtls}`);
    expect(hop.length, JSON.stringify(wire)).toBeGreaterThanOrEqual(1);
    for (const s of hop) expect(s).toMatchObject({ version: 'TLS 1.3', group: HYBRID });
    expect(groups.length).toBeGreaterThanOrEqual(1);
    expect(
      groups.every((g) => g === '4588' || g === '0x11ec'),
      groups.join(','),
    ).toBe(true);
    // The request itself never crossed in clear.
    expect(wire.cleartext).toEqual([]);
  }

  it('an egress route: the ServerHello key share is 0x11ec (X25519MLKEM768)', async () => {
    const mark = marker('route');
    const { wire, groups } = await fetchCaptured(web, emoji, `http://${ROUTE.emoji}/${mark}`, mark);
    expectHybridHop(wire, groups, emoji);
  });

  it('captured traffic (egress.capture, the app dials the pod address): the ServerHello key share is 0x11ec', async () => {
    const mark = marker('capture');
    const { wire, groups } = await fetchCaptured(web, emoji, `http://${emoji.v4}:${PORTS.mtls}/${mark}`, mark);
    expectHybridHop(wire, groups, emoji);
  });

  it('strict on both sides (a pq-required route to a pq-required pod) still works, and so does capture into the strict pod', async () => {
    const viaRoute = marker('strict-route');
    const a = await fetchCaptured(web, vault, `http://${ROUTE.vault}/${viaRoute}`, viaRoute);
    expectHybridHop(a.wire, a.groups, vault);
    const viaCapture = marker('strict-capture');
    const b = await fetchCaptured(web, vault, `http://${vault.v4}:${PORTS.mtls}/${viaCapture}`, viaCapture);
    expectHybridHop(b.wire, b.groups, vault);
  });

  /** One handshake with the system openssl (3.0, no ML-KEM) from the outside host, offering X25519 only. */
  async function classicHandshake(pod: Pod, port: number, withCert: boolean): Promise<{ ok: boolean; protocol?: string; tempKey?: string; out: string }> {
    const cert = withCert ? ['-cert', clients.mesh.cert ?? '', '-key', clients.mesh.key ?? ''] : [];
    const argv = [
      'openssl',
      's_client',
      '-brief',
      '-groups',
      'X25519',
      '-connect',
      `${pod.v4}:${port}`,
      '-servername',
      `${pod.name}-svc`,
      '-CAfile',
      clients.mesh.ca,
      ...cert,
    ];
    const r = await lab.ns.exec(outside.ns, argv, { timeoutMs: 15_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    const protocol = /Protocol version: (\S+)/.exec(out)?.[1];
    const tempKey = /Server Temp Key: ([^,\n]+)/.exec(out)?.[1];
    return { ok: r.code === 0 && protocol !== undefined, ...(protocol ? { protocol } : {}), ...(tempKey ? { tempKey } : {}), out };
  }

  /** Envoy's failed TLS handshakes on every listener of a pod (ssl.connection_error, whatever the stat prefix). */
  async function sslErrors(pod: Pod): Promise<{ total: number; lines: string[] }> {
    const body = await lab.envoyAdmin(pod, '/stats?filter=ssl%5C.connection_error');
    const lines = body.split('\n').filter((l) => l.includes('ssl.connection_error'));
    return { total: lines.reduce((n, l) => n + Number(l.split(':').at(-1)), 0), lines };
  }

  it('an OpenSSL 3.0 client offering only X25519 gets TLS 1.3 with X25519 on a tls port, and is refused in strict mode', async () => {
    const ok = await classicHandshake(emoji, PORTS.tls, false);
    expect(ok, ok.out).toMatchObject({ ok: true, protocol: 'TLSv1.3', tempKey: 'X25519' });
    const before = await sslErrors(vault);
    for (const [port, cert] of [
      [PORTS.tls, false],
      [PORTS.mtls, true],
    ] as const) {
      const refused = await classicHandshake(vault, port, cert);
      expect(refused.ok, `port ${port}: ${refused.out}`).toBe(false);
      // No shared group: the server answers with a handshake_failure alert (40).
      expect(refused.out, `port ${port}`).toMatch(/alert handshake failure|alert number 40/);
    }
    // Envoy counted the failed handshakes (so the refusal came from the TLS layer, not from a missing listener).
    const after = await sslErrors(vault);
    expect(after.total - before.total, JSON.stringify(after.lines)).toBeGreaterThanOrEqual(2);
  });

  it('a pq-required route refuses a server that only has a classic group; a pq-preferred route to it gets X25519', async () => {
    const server = lab.ns.spawn(
      outside.ns,
      's_server X25519 only',
      ['openssl', 's_server', '-www', '-groups', 'X25519', ...serverTls, '-accept', `${OUTSIDE_V4}:${CLASSIC_SERVER}`],
      { stderrLines: true },
    );
    try {
      await server.waitFor((l) => l.includes('ACCEPT'), 10_000, 's_server accepting');
      const refused = await lab.appFetch(web, `http://${ROUTE.classicStrict}/`);
      expect(refused.status, JSON.stringify(refused)).not.toBe(200);
      // The server saw the strict ClientHello and found no group it could share.
      await server.waitFor((l) => /no suitable key share|no shared group/i.test(l), 10_000, "s_server's key share error");
      const ok = await lab.appFetch(web, `http://${ROUTE.classic}/`);
      expect(ok.status, `${JSON.stringify(ok)}\n${server.output()}`).toBe(200);
    } finally {
      await server.stop('SIGTERM', 5_000);
    }
  });
});
